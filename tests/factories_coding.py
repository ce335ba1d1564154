"""Plain helpers that build a small coding project: a codebook, units and assignments."""

from __future__ import annotations

from coding.models import Assignment, Code, Codebook, CodebookVersion, Project, Round, Unit
from tests.factories import make_project, make_source, make_thread

EMOJI_POST = "<p>Loading fails 😭 with OOM. Ich bin müde. Try 🤗 accelerate!</p>"


def make_codebook_version(name: str = "Taxonomy", *, extra_codes: int = 0) -> CodebookVersion:
    """A version with a header, three codable codes (two with shortcuts) and optional extras."""
    codebook = Codebook.objects.create(name=name)
    version = CodebookVersion.objects.create(codebook=codebook, number=1)
    group = Code.objects.create(
        version=version, key="problems", name="Problems", codable=False, order=0
    )
    Code.objects.create(
        version=version,
        key="install",
        name="Installation",
        parent=group,
        definition="Trouble installing a library.",
        when_to_use="pip or conda errors.",
        when_not_to_use="Runtime errors.",
        shortcut="i",
        order=1,
    )
    Code.objects.create(
        version=version, key="memory", name="Out of memory", parent=group, shortcut="m", order=2
    )
    Code.objects.create(version=version, key="docs", name="Documentation gap", order=3)
    Code.objects.create(version=version, key="old", name="Retired code", order=4, active=False)
    Code.objects.bulk_create(
        Code(version=version, key=f"extra{n}", name=f"Extra code {n}", order=10 + n)
        for n in range(extra_codes)
    )
    return version


def make_coding_project(
    users: dict,
    *,
    slug: str = "study",
    units: int = 2,
    posts_per_thread: int = 3,
    extra_codes: int = 0,
    unit_type: str = Project.UnitType.THREAD,
) -> Project:
    """A project coded by alice and bob (both assigned every unit), run by padmin."""
    project = make_project(slug, admin=users["admin"], annotators=[users["alice"], users["bob"]])
    project.codebook_version = make_codebook_version(f"{slug} codebook", extra_codes=extra_codes)
    project.unit_type = unit_type
    project.save()
    round_ = Round.objects.create(project=project, name="Main")
    source = make_source(f"{slug} forum", f"https://{slug}.forum.test")
    for n in range(units):
        bodies = [EMOJI_POST] + [
            f"<p>Reply {k} says hello. Second sentence here.</p>"
            for k in range(2, posts_per_thread + 1)
        ]
        thread = make_thread(f"Thread {n + 1}", source=source, external_id=n + 1, posts=bodies)
        post = thread.posts.get(post_number=2) if unit_type == Project.UnitType.POST else None
        unit = Unit.objects.create(
            project=project, round=round_, thread=thread, post=post, position=n
        )
        for coder in (users["alice"], users["bob"]):
            Assignment.objects.create(unit=unit, coder=coder)
    return project


def payload(revision: int = 0, **fields) -> dict:
    """A save request body with sensible defaults."""
    body = {
        "base_revision": revision,
        "codes": [],
        "quotes": [],
        "not_relevant": False,
        "unsure": False,
        "memo": "",
        "submit": False,
    }
    body.update(fields)
    return body
