"""A project with a small codebook, units and submitted codings, built with the models."""

from __future__ import annotations

from django.utils import timezone

from coding.models import (
    Code,
    CodeApplication,
    Codebook,
    CodebookVersion,
    Coding,
    Project,
    Round,
    Unit,
)
from tests.factories import make_thread

# group → category → leaf codes: a tree three levels deep, as in the published taxonomy.
TREE = {
    "models": {"loading": ["load-error", "load-slow"], "training": ["fine-tune", "lr"]},
    "data": {"datasets": ["split", "stream"]},
}


def make_codebook(name: str = "Taxonomy", number: int = 1) -> CodebookVersion:
    codebook = Codebook.objects.get_or_create(name=name)[0]
    version = CodebookVersion.objects.create(codebook=codebook, number=number)
    order = 0
    for group, categories in TREE.items():
        top = Code.objects.create(version=version, key=group, name=group.title(), order=order)
        for category, leaves in categories.items():
            order += 1
            middle = Code.objects.create(
                version=version, key=category, name=category.title(), parent=top, order=order
            )
            for leaf in leaves:
                order += 1
                Code.objects.create(
                    version=version, key=leaf, name=leaf.replace("-", " "), parent=middle,
                    order=order,
                )  # fmt: skip
    return version


def add_round(project: Project, name: str, order: int = 0) -> Round:
    return Round.objects.create(project=project, name=name, order=order)


def add_units(project: Project, round: Round, count: int, *, first_id: int = 1) -> list[Unit]:
    units = []
    for n in range(count):
        thread = make_thread(f"Thread {first_id + n}", external_id=first_id + n)
        units.append(Unit.objects.create(project=project, round=round, thread=thread, position=n))
    return units


def code(
    unit: Unit,
    coder,
    keys: list[str],
    *,
    version: CodebookVersion | None = None,
    not_relevant: bool = False,
    unsure: bool = False,
    submitted: bool = True,
) -> Coding:
    """One coder's coding of a unit with the codes of these keys."""  # fmt: skip
    version = version or unit.project.codebook_version
    coding = Coding.objects.create(
        unit=unit,
        coder=coder,
        codebook_version=version,
        status=Coding.Status.SUBMITTED if submitted else Coding.Status.DRAFT,
        not_relevant=not_relevant,
        unsure=unsure,
        submitted_at=timezone.now() if submitted else None,
    )
    for key in keys:
        applied = Code.objects.get(version=version, key=key)
        CodeApplication.objects.create(coding=coding, code=applied)
    return coding


def make_coded_project(users: dict, slug: str = "study") -> Project:
    """Two annotators and the admin coded six units of a main round; two units of a pilot.

    Codes are leaves of TREE; one coding is "not relevant", one unsure, one has no code,
    one is still a draft (and does not count).
    """
    from tests.factories import make_project

    project = make_project(slug, admin=users["admin"], annotators=[users["alice"], users["bob"]])
    project.codebook_version = make_codebook()
    project.save(update_fields=["codebook_version"])
    main = add_round(project, "main", 1)
    pilot = add_round(project, "pilot", 0)
    units = add_units(project, main, 6)
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    plan = [
        (["load-error"], ["load-error"], ["load-error", "lr"]),
        (["fine-tune", "lr"], ["fine-tune"], ["fine-tune", "lr"]),
        (["split"], ["stream"], ["split"]),
        ([], ["load-slow"], None),
        (["stream"], ["stream"], ["stream"]),
        (["load-slow"], "not relevant", ["load-slow"]),
    ]
    for unit, (a, b, c) in zip(units, plan, strict=True):
        code(unit, alice, a, unsure=unit is units[2])
        if b == "not relevant":
            code(unit, bob, [], not_relevant=True)
        else:
            code(unit, bob, b)
        if c is not None:
            code(unit, admin, c)
    draft_unit = add_units(project, main, 1, first_id=50)[0]
    code(draft_unit, alice, ["lr"], submitted=False)
    code(draft_unit, bob, ["split"])
    for unit in add_units(project, pilot, 2, first_id=100):
        code(unit, alice, ["split"])
        code(unit, bob, ["split", "stream"])
    return project
