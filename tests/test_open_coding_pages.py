"""Open coding and the affinity board in the browser's terms: pages, roles, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from coding import open_coding as oc
from coding.models import BoardCard, OpenCode
from tests.factories_open_coding import make_open_project, open_code

pytestmark = pytest.mark.django_db


def coded(users, units=3, slug="open"):
    project = make_open_project(users, units=units, slug=slug)
    for n, unit in enumerate(project.units.all()):
        open_code(project, unit, users["alice"], f"Missing docs {n % 2}", "GPU out of memory")
        open_code(project, unit, users["bob"], "missing docs 0")
    return project


def test_a_coder_saves_open_codes_one_per_line_and_goes_to_the_next_unit(client, users):
    project = make_open_project(users, units=2)
    first, second = project.units.all()
    client.force_login(users["alice"])
    url = reverse("open_code_unit", args=[project.slug, first.pk])
    response = client.post(
        url,
        {"base_revision": "0", "open_codes": "Missing docs\n\n  slow   tokenizer ", "submit": "1"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse(
        "open_code_unit", args=[project.slug, second.pk]
    )
    assert list(OpenCode.objects.order_by("order").values_list("text", flat=True)) == [
        "Missing docs",
        "slow tokenizer",
    ]


def test_a_stale_form_shows_a_conflict_and_keeps_what_was_typed(client, users):
    project = make_open_project(users, units=1)
    unit = project.units.get()
    open_code(project, unit, users["alice"], "first", submit=False)
    client.force_login(users["alice"])
    url = reverse("open_code_unit", args=[project.slug, unit.pk])
    response = client.post(url, {"base_revision": "0", "open_codes": "second"})
    assert response.status_code == 200
    assert "Someone saved this coding (revision 1)" in response.content.decode()
    assert list(OpenCode.objects.values_list("text", flat=True)) == ["first"]


def test_a_closed_project_shows_open_codes_read_only_and_saves_nothing(client, users):
    project = make_open_project(users, units=1)
    unit = project.units.get()
    open_code(project, unit, users["alice"], "first", submit=False)
    project.status = project.Status.CLOSED
    project.save()
    client.force_login(users["alice"])
    url = reverse("open_code_unit", args=[project.slug, unit.pk])
    page = client.get(url).content.decode()
    assert "this project is closed for coding. Your codes: first." in page
    response = client.post(url, {"base_revision": "1", "open_codes": "second"}, follow=True)
    assert "This project is closed for coding; nothing was saved." in response.content.decode()
    assert list(OpenCode.objects.values_list("text", flat=True)) == ["first"]
    following = client.get(reverse("open_code_next", args=[project.slug]), follow=True)
    assert "This project is closed for coding." in following.content.decode()


def test_an_annotator_sees_only_their_own_open_codes_and_suggestions(client, users):
    project = coded(users, units=1)
    unit = project.units.get()
    client.force_login(users["bob"])
    page = client.get(reverse("open_code_unit", args=[project.slug, unit.pk])).content.decode()
    assert "missing docs 0" in page
    assert "GPU out of memory" not in page


def test_annotators_get_403_and_outsiders_404_on_the_board_and_its_exports(client, users):
    project = coded(users, units=1)
    for name, args in [
        ("affinity_board", []),
        ("open_codes_csv", []),
        ("open_mapping_csv", []),
        ("board_image", ["png"]),
        ("open_provisional", []),
    ]:
        url = reverse(name, args=[project.slug, *args])
        client.force_login(users["alice"])
        assert client.get(url).status_code == 403, name
        client.force_login(users["outsider"])
        assert client.get(url).status_code == 404, name
    client.force_login(users["alice"])
    assert client.post(reverse("board_action", args=[project.slug]), {}).status_code == 403


def _board_queries(client, users, django_assert_num_queries, units, slug):
    project = coded(users, units=units, slug=slug)
    oc.create_group(project, users["admin"], "Docs")
    client.force_login(users["admin"])
    client.get(reverse("affinity_board", args=[project.slug]))
    # Session with user, project, role; cards sync (2); groups, cards, open codes, quotes;
    # history, versions.
    with django_assert_num_queries(11):
        response = client.get(reverse("affinity_board", args=[project.slug]))
    assert response.status_code == 200


def test_the_board_page_uses_the_same_queries_for_few_and_many_open_codes(
    client, users, django_assert_num_queries
):
    _board_queries(client, users, django_assert_num_queries, 2, "few")
    _board_queries(client, users, django_assert_num_queries, 12, "many")


def test_the_open_coding_page_uses_a_fixed_number_of_queries(
    client, users, django_assert_num_queries
):
    project = coded(users, units=1)
    unit = project.units.get()
    client.force_login(users["alice"])
    url = reverse("open_code_unit", args=[project.slug, unit.pk])
    # Session with user, project, role, unit, assignment, coding; posts; open codes and
    # quotes; suggestions.
    with django_assert_num_queries(10):
        assert client.get(url).status_code == 200


def test_a_move_from_an_old_page_is_refused_with_a_409_and_a_message(client, users):
    project = coded(users, units=1)
    group = oc.create_group(project, users["admin"], "Docs")
    oc.sync_cards(project)
    card = BoardCard.objects.get(project=project, normalized="missing docs 0")
    client.force_login(users["admin"])
    url = reverse("board_action", args=[project.slug])
    move = {"action": "move", "card": card.pk, "revision": 0, "group": group.pk}
    assert client.post(url, move, headers={"HX-Request": "true"}).status_code == 200
    response = client.post(url, {**move, "group": ""}, headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "changed since you loaded the board" in response.content.decode()
    assert "moved &#x27;Missing docs 0&#x27; to &#x27;Docs&#x27;" in response.content.decode()


def test_the_exports_give_the_open_codes_the_mapping_and_an_image(client, users):
    project = coded(users, units=2)
    group = oc.create_group(project, users["admin"], "Docs")
    sub = oc.create_group(project, users["admin"], "Missing", parent_id=group.pk)
    oc.sync_cards(project)
    card = BoardCard.objects.get(project=project, normalized="missing docs 0")
    oc.move_card(project, users["admin"], card.pk, 0, sub.pk)
    client.force_login(users["admin"])
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(reverse("open_codes_csv", args=[project.slug])).content.decode())
        )
    )
    assert len(rows) == 6
    assert {r["group_path"] for r in rows if r["normalized"] == "missing docs 0"} == {
        "Docs > Missing"
    }
    mapping = client.get(reverse("open_mapping_csv", args=[project.slug])).content.decode()
    assert mapping.splitlines()[1].lower() == "missing docs 0,missing docs 0,docs > missing,"
    png = client.get(reverse("board_image", args=[project.slug, "png"]))
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    svg = client.get(reverse("board_image", args=[project.slug, "svg"]))
    assert b"<svg" in svg.content
    assert client.get(reverse("board_image", args=[project.slug, "gif"])).status_code == 404


def test_quotes_sent_with_the_form_are_kept_with_their_code_and_checked(client, users):
    project = make_open_project(users, units=1)
    unit = project.units.get()
    post = unit.thread.posts.get()
    start = post.plain_text.index("tokenizer")
    client.force_login(users["alice"])
    url = reverse("open_code_unit", args=[project.slug, unit.pk])
    good = [
        {
            "code": "missing  Example",
            "post": post.pk,
            "start": start,
            "end": start + 9,
            "text": "tokenizer",
        }
    ]
    client.post(
        url, {"base_revision": "0", "open_codes": "Missing example", "quotes": json.dumps(good)}
    )
    assert list(OpenCode.objects.get().quotes.values_list("start", "text")) == [
        (start, "tokenizer")
    ]
    bad = [{**good[0], "start": start + 1, "end": start + 10}]
    response = client.post(
        url, {"base_revision": "1", "open_codes": "Missing example", "quotes": json.dumps(bad)}
    )
    assert "does not match post" in response.content.decode()
    assert list(OpenCode.objects.get().quotes.values_list("start", flat=True)) == [start]


def test_malformed_board_requests_get_a_message_not_an_error_page(client, users):
    project = coded(users, units=1)
    oc.sync_cards(project)
    card = BoardCard.objects.get(project=project, normalized="missing docs 0")
    client.force_login(users["admin"])
    url = reverse("board_action", args=[project.slug])
    htmx = {"HX-Request": "true"}
    for data, message in [
        ({"action": "move", "card": card.pk, "revision": 0, "group": "x"}, "by its number"),
        ({"action": "move", "card": "x", "revision": 0}, "must be numbers"),
        ({"action": "group", "name": "A", "parent": "x"}, "by its number"),
        ({"action": "group", "name": " "}, "A group needs a name"),
        ({"action": "drop-table"}, "Unknown board action"),
    ]:
        response = client.post(url, data, headers=htmx)
        assert response.status_code == 409
        assert message in response.content.decode()
    review = reverse("open_provisional", args=[project.slug])
    assert client.post(review, {"unit": "x"}).status_code == 404


def test_an_annotator_starts_an_open_coding_project_on_the_open_coding_form(client, users):
    project = make_open_project(users, units=1)
    client.force_login(users["alice"])
    page = client.get(reverse("project_detail", args=[project.slug])).content.decode()
    assert reverse("open_code_next", args=[project.slug]) in page
    response = client.get(reverse("open_code_next", args=[project.slug]))
    assert response["Location"] == reverse(
        "open_code_unit", args=[project.slug, project.units.get().pk]
    )


def test_an_admin_lets_suggestions_come_from_the_whole_project_and_it_is_recorded(client, users):
    project = coded(users, units=1)
    client.force_login(users["admin"])
    url = reverse("board_action", args=[project.slug])
    client.post(url, {"action": "settings", "coding_mode": "both", "open_autocomplete": "project"})
    project.refresh_from_db()
    assert (project.coding_mode, project.open_autocomplete) == ("both", "project")
    assert "suggestions from" in project.board_events.get().summary
    response = client.post(
        url,
        {"action": "settings", "coding_mode": "x", "open_autocomplete": "own"},
        headers={"HX-Request": "true"},
    )
    assert "Unknown kind of coding" in response.content.decode()
    client.force_login(users["bob"])
    unit = project.units.get()
    page = client.get(reverse("open_code_unit", args=[project.slug, unit.pk])).content.decode()
    assert "GPU out of memory" in page
