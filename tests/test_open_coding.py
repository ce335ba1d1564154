"""Open coding: saving free-text codes with quotes, conflicts, autocomplete blindness."""

from __future__ import annotations

import pytest

from coding.codings import CodingInputError, Conflict, NotAssigned
from coding.models import CodingEvent, OpenCode, Project
from coding.open_coding import normalize, parse_open_input, save_open_coding, suggestions
from tests.factories_open_coding import make_open_project, open_code

pytestmark = pytest.mark.django_db


def body(revision=0, **fields):
    return {"base_revision": revision, "open_codes": [], **fields}


def test_open_codes_are_saved_with_quotes_and_a_history(users):
    project = make_open_project(users, units=1)
    unit = project.units.get()
    post = unit.thread.posts.get()
    start = post.plain_text.index("docs")
    payload = body(
        open_codes=[
            {
                "text": "  Missing   docs ",
                "quotes": [{"post": post.pk, "start": start, "end": start + 4, "text": "docs"}],
            },
            {"text": "tokenizer example"},
        ],
        memo="clear case",
        submit=True,
    )
    result = save_open_coding(project, unit, users["alice"], parse_open_input(payload))
    assert result.saved and result.coding.revision == 1
    assert result.coding.codebook_version is None
    codes = list(OpenCode.objects.filter(coding=result.coding).order_by("order"))
    assert [(c.text, c.normalized) for c in codes] == [
        ("Missing docs", "missing docs"),
        ("tokenizer example", "tokenizer example"),
    ]
    assert list(codes[0].quotes.values_list("text", flat=True)) == ["docs"]
    assert unit.assignments.get(coder=users["alice"]).status == "done"
    assert CodingEvent.objects.get(coding=result.coding).action == "open submit"


def test_a_quote_that_does_not_match_the_post_is_refused_and_nothing_is_written(users):
    project = make_open_project(users, units=1)
    unit = project.units.get()
    post = unit.thread.posts.get()
    payload = body(
        open_codes=[
            {"text": "x", "quotes": [{"post": post.pk, "start": 0, "end": 4, "text": "nope"}]}
        ]
    )
    with pytest.raises(CodingInputError, match="does not match post"):
        save_open_coding(project, unit, users["alice"], parse_open_input(payload))
    assert not OpenCode.objects.exists()


def test_a_save_from_an_older_revision_is_a_conflict_carrying_the_stored_codes(users):
    project = make_open_project(users, units=1)
    unit = project.units.get()
    open_code(project, unit, users["alice"], "first idea", submit=False)
    stale = parse_open_input(body(0, open_codes=[{"text": "other idea"}]))
    with pytest.raises(Conflict) as caught:
        save_open_coding(project, unit, users["alice"], stale)
    assert caught.value.revision == 1
    assert [c["text"] for c in caught.value.stored["open_codes"]] == ["first idea"]


def test_a_coder_without_an_assignment_cannot_save(users):
    project = make_open_project(users, units=1)
    with pytest.raises(NotAssigned):
        open_code(project, project.units.get(), users["outsider"], "anything")


def test_submitting_needs_an_open_code_or_not_relevant():
    with pytest.raises(CodingInputError, match="at least one open code"):
        parse_open_input(body(submit=True))


def test_normalizing_folds_case_width_and_whitespace():
    assert normalize("  Missing\tDOCS ") == normalize("missing docs") == "missing docs"


def test_autocomplete_shows_only_the_coders_own_codes_unless_the_admin_opens_it(users):
    project = make_open_project(users, units=2)
    first, second = project.units.all()
    open_code(project, first, users["alice"], "Missing docs")
    open_code(project, second, users["bob"], "Missing tutorial")
    assert suggestions(project, users["alice"], "miss") == ["Missing docs"]
    project.open_autocomplete = Project.OpenAutocomplete.PROJECT
    assert suggestions(project, users["alice"], "miss") == ["Missing docs", "Missing tutorial"]
