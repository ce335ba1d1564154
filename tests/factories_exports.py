"""A small coded project for export and import tests: two coders, quotes, a gold label."""

from __future__ import annotations

from django.utils import timezone

from coding.models import Code, CodeApplication, Coding, GoldLabel, Project, Quote, Unit
from tests.factories_coding import make_coding_project


def code_unit(
    unit: Unit,
    coder,
    keys: list[str],
    *,
    memo: str = "",
    not_relevant: bool = False,
    quote: tuple[int, int] | None = None,
) -> Coding:
    version = unit.project.codebook_version
    coding = Coding.objects.create(
        unit=unit,
        coder=coder,
        codebook_version=version,
        status=Coding.Status.SUBMITTED,
        memo=memo,
        not_relevant=not_relevant,
        submitted_at=timezone.now(),
        revision=1,
    )
    for key in keys:
        app = CodeApplication.objects.create(coding=coding, code=version.codes.get(key=key))
        if quote:
            post = unit.post or unit.thread.posts.get(post_number=1)
            start, end = quote
            Quote.objects.create(
                application=app,
                post=post,
                start=start,
                end=end,
                text=post.plain_text[start:end],
            )
    return coding


def make_coded_project(users: dict, *, slug: str = "exported") -> Project:
    """Three units: both coders agree on one, disagree on one, and one is 'not relevant'
    for alice; memos that look like spreadsheet formulas; a quote with emoji; a gold label."""
    project = make_coding_project(users, slug=slug, units=3)
    u1, u2, u3 = project.units.order_by("position")
    alice, bob = users["alice"], users["bob"]
    code_unit(u1, alice, ["install", "memory"], memo="=cmd|' /C calc'!A0", quote=(0, 19))
    code_unit(u1, bob, ["install", "memory"], memo="+1+1")
    code_unit(u2, alice, ["docs"], memo="@SUM(A1:A9)")
    code_unit(u2, bob, [], memo="-2+3")
    code_unit(u3, alice, [], not_relevant=True, memo="\tindented")
    code_unit(u3, bob, ["memory"], memo="\rreturn")
    gold = GoldLabel.objects.create(
        unit=u1,
        codebook_version=project.codebook_version,
        rule=GoldLabel.Rule.UNANIMOUS,
        rationale="Both agreed.",
        decided_by=users["admin"],
    )
    gold.codes.set(
        Code.objects.filter(version=project.codebook_version, key__in=["install", "memory"])
    )
    return project
