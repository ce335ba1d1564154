"""Plain helpers that build an open-coding project and fill it with open codes."""

from __future__ import annotations

from coding.models import Assignment, Project, Round, Unit
from coding.open_coding import parse_open_input, save_open_coding
from tests.factories import make_project, make_source, make_thread


def make_open_project(users: dict, *, slug: str = "open", units: int = 3) -> Project:
    """An open-coding project without a codebook: alice and bob assigned every unit."""
    project = make_project(slug, admin=users["admin"], annotators=[users["alice"], users["bob"]])
    project.coding_mode = Project.CodingMode.OPEN
    project.save(update_fields=["coding_mode"])
    round_ = Round.objects.create(project=project, name="Main")
    source = make_source(f"{slug} forum", f"https://{slug}.forum.test")
    for n in range(units):
        thread = make_thread(
            f"Topic {n + 1}",
            source=source,
            external_id=100 + n,
            posts=[f"<p>Question {n + 1}: the docs are missing a tokenizer example.</p>"],
        )
        unit = Unit.objects.create(project=project, round=round_, thread=thread, position=n)
        for coder in (users["alice"], users["bob"]):
            Assignment.objects.create(unit=unit, coder=coder)
    return project


def open_code(project: Project, unit: Unit, coder, *texts: str, submit: bool = True):
    """Save ``texts`` as the coder's open codes for the unit (from their current revision)."""
    coding = unit.codings.filter(coder=coder).first()
    body = {
        "base_revision": coding.revision if coding else 0,
        "open_codes": [{"text": t} for t in texts],
        "submit": submit,
    }
    return save_open_coding(project, unit, coder, parse_open_input(body))
