"""The affinity board: grouping open codes, conflicts between admins, the board's history,
and the way from the board to a codebook and provisional closed codes."""

from __future__ import annotations

import pytest

from coding import adjudication as adj
from coding import open_coding as oc
from coding.models import BoardCard, BoardEvent, GoldLabel, OpenCodeMapping, ProvisionalCode
from tests.factories_open_coding import make_open_project, open_code

pytestmark = pytest.mark.django_db


def coded_project(users):
    project = make_open_project(users, units=3)
    first, second, third = project.units.all()
    open_code(project, first, users["alice"], "Missing docs", "GPU out of memory")
    open_code(project, first, users["bob"], "missing  DOCS")
    open_code(project, second, users["alice"], "Docs missing.", "Slow tokenizer")
    open_code(project, third, users["bob"], "CUDA OOM")
    oc.sync_cards(project)
    return project


def card(project, label):
    return BoardCard.objects.get(project=project, label=label)


def test_each_distinct_open_code_is_one_card_with_its_count_and_coders(users):
    project = coded_project(users)
    rows = {r.card.label: r for r in oc.board(project)["cards"]}
    assert sorted(rows) == [
        "CUDA OOM",
        "Docs missing.",
        "GPU out of memory",
        "Missing docs",
        "Slow tokenizer",
    ]
    assert rows["Missing docs"].count == 2
    assert rows["Missing docs"].coders == ["alice", "bob"]


def test_near_duplicates_are_suggested_for_merging(users):
    project = coded_project(users)
    pairs = [sorted(r.card.label for r in group) for group in oc.board(project)["duplicates"]]
    assert pairs == [["Docs missing.", "Missing docs"]]


def test_a_move_based_on_an_old_revision_is_refused_with_a_message(users):
    project = coded_project(users)
    group = oc.create_group(project, users["admin"], "Documentation")
    docs = card(project, "Missing docs")
    oc.move_card(project, users["admin"], docs.pk, 0, group.pk)
    with pytest.raises(oc.BoardConflict, match="'Missing docs' changed since you loaded the board"):
        oc.move_card(project, users["staff"], docs.pk, 0, None)
    assert card(project, "Missing docs").group == group
    assert list(BoardEvent.objects.values_list("summary", flat=True)) == [
        "moved 'Missing docs' to 'Documentation'",
        "created group 'Documentation'",
    ]


def test_merged_codes_count_on_the_code_they_were_merged_into(users):
    project = coded_project(users)
    docs, other = card(project, "Missing docs"), card(project, "Docs missing.")
    oc.merge_cards(project, users["admin"], other.pk, 0, docs.pk, 0)
    rows = {r.card.label: r for r in oc.board(project)["cards"]}
    assert "Docs missing." not in rows
    assert rows["Missing docs"].count == 3


def test_the_board_becomes_a_codebook_and_every_open_coded_unit_gets_provisional_codes(users):
    project = coded_project(users)
    admin = users["admin"]
    problems = oc.create_group(project, admin, "Problems", definition="Something fails.")
    memory = oc.create_group(project, admin, "Memory", parent_id=problems.pk)
    docs = oc.create_group(project, admin, "Documentation")
    for label, group in [
        ("Missing docs", docs),
        ("Docs missing.", docs),
        ("GPU out of memory", memory),
        ("CUDA OOM", memory),
        ("Slow tokenizer", problems),
    ]:
        oc.move_card(project, admin, card(project, label).pk, 0, group.pk)

    version = oc.board_to_codebook(project, admin, "Reuse challenges")
    paths = dict(OpenCodeMapping.objects.values_list("normalized", "path"))
    assert paths["cuda oom"] == "Problems > Memory"
    assert paths["missing docs"] == "Documentation"
    assert version.codes.get(name="Problems").definition == "Something fails."

    result = oc.apply_codebook(project, admin, version)
    project.refresh_from_db()
    assert project.codebook_version == version
    assert result == {"units": 3, "provisional": 5}
    first, second, third = project.units.all()
    by_unit = oc.provisional_by_unit(project)
    assert [p.code.name for p in by_unit[first.pk]] == ["Documentation", "Memory"]
    assert [p.code.name for p in by_unit[second.pk]] == ["Documentation", "Problems"]
    assert [p.code.name for p in by_unit[third.pk]] == ["Memory"]
    assert by_unit[first.pk][0].sources == ["Missing docs", "missing DOCS"]


def test_accepting_provisional_codes_writes_a_gold_label_and_leaves_codings_alone(users):
    project = coded_project(users)
    admin = users["admin"]
    docs = oc.create_group(project, admin, "Documentation")
    memory = oc.create_group(project, admin, "Memory")
    oc.move_card(project, admin, card(project, "Missing docs").pk, 0, docs.pk)
    oc.move_card(project, admin, card(project, "GPU out of memory").pk, 0, memory.pk)
    version = oc.board_to_codebook(project, admin, "Reuse challenges")
    oc.apply_codebook(project, admin, version)
    project.refresh_from_db()
    unit = project.units.first()
    rows = oc.provisional_by_unit(project)[unit.pk]
    keep = {p.pk for p in rows if p.code.name == "Documentation"}
    oc.review_unit(project, unit, admin, keep, base_revision=None)
    gold = GoldLabel.objects.get(unit=unit)
    assert [c.name for c in gold.codes.all()] == ["Documentation"]
    assert set(ProvisionalCode.objects.filter(unit=unit).values_list("status", flat=True)) == {
        "accepted",
        "rejected",
    }
    assert not unit.codings.filter(applications__isnull=False).exists()


def provisional_project(client, users):
    """A project coding with a codebook made from its board, its first unit with
    provisional codes to review, and the admin signed in."""
    project = coded_project(users)
    admin = users["admin"]
    docs = oc.create_group(project, admin, "Documentation")
    oc.move_card(project, admin, card(project, "Missing docs").pk, 0, docs.pk)
    oc.apply_codebook(project, admin, oc.board_to_codebook(project, admin, "Reuse challenges"))
    project.refresh_from_db()
    client.force_login(admin)
    return project, project.units.first()


def test_rejecting_every_provisional_code_is_refused_and_changes_nothing(client, users):
    project, unit = provisional_project(client, users)
    response = client.post(f"/projects/{project.slug}/board/provisional/", {"unit": unit.pk})
    assert response.status_code == 302
    shown = client.get(response["Location"]).content.decode()
    assert f"Unit {unit.pk}: accept at least one provisional code" in shown
    assert not GoldLabel.objects.filter(unit=unit).exists()
    assert set(ProvisionalCode.objects.filter(unit=unit).values_list("status", flat=True)) == {
        "pending"
    }


def test_a_stale_provisional_codes_page_does_not_overwrite_another_decision(client, users):
    project, unit = provisional_project(client, users)
    url = f"/projects/{project.slug}/board/provisional/"
    page = client.get(url).content.decode()
    assert (
        f'name="unit" value="{unit.pk}"><input type="hidden" name="base_revision" value="">' in page
    )
    accept = [p.pk for p in ProvisionalCode.objects.filter(unit=unit)]
    # Meanwhile another admin decides the unit "not relevant" on the adjudication page.
    adj.decide(project, unit, users["admin"], codes={adj.NOT_RELEVANT}, rule="manual")
    response = client.post(url, {"unit": unit.pk, "accept": accept, "base_revision": ""})
    shown = client.get(response["Location"]).content.decode()
    assert f"Unit {unit.pk}: unit {unit.pk} was decided by someone else meanwhile" in shown
    gold = GoldLabel.objects.get(unit=unit)
    assert gold.not_relevant and not gold.codes.exists() and gold.revision == 1
    assert set(ProvisionalCode.objects.filter(unit=unit).values_list("status", flat=True)) == {
        "pending"
    }
    # Reloaded, the page carries the new revision and the review goes through.
    assert 'name="base_revision" value="1"' in client.get(url).content.decode()
    client.post(url, {"unit": unit.pk, "accept": accept, "base_revision": "1"})
    gold.refresh_from_db()
    assert gold.revision == 2 and gold.codes.exists() and not gold.not_relevant


def test_two_groups_of_one_parent_cannot_share_a_name(users):
    project = coded_project(users)
    oc.create_group(project, users["admin"], "Docs")
    other = oc.create_group(project, users["admin"], "Memory")
    with pytest.raises(oc.BoardError, match="already a group named 'docs'"):
        oc.edit_group(project, users["admin"], other.pk, 0, name="docs", definition="")
    with pytest.raises(oc.BoardError, match="already a group named 'DOCS'"):
        oc.create_group(project, users["admin"], "DOCS")
