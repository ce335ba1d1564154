"""Editing a codebook makes versions with recorded mappings; projects upgrade explicitly."""

from __future__ import annotations

import pytest

from coding.codebook import (
    CodebookError,
    Node,
    VersionConflict,
    apply_edit,
    codes_in_version,
    diff_versions,
    load_nodes,
    map_keys,
    nodes_of,
    upgrade_preview,
    upgrade_project,
)
from coding.models import CodeApplication, Codebook, CodebookVersion, Coding, Round, Unit
from tests.factories import make_project, make_thread, make_user


def make_codebook(name: str = "Study") -> Codebook:
    nodes = [
        Node(key="problems", name="Problems", codable=False),
        Node(key="problems.install", name="Install", parent="problems"),
        Node(key="problems.setup", name="Setup", parent="problems"),
        Node(key="problems.speed", name="Speed", parent="problems", shortcut="s"),
        Node(key="help", name="Help", codable=False),
        Node(key="help.docs", name="Docs", parent="help"),
    ]
    codebook, _, _ = load_nodes(name, "", nodes)
    return codebook


def code_with_codes(project, version: CodebookVersion, coder, keys: list[str], n: int = 1):
    """A submitted coding by ``coder`` on a new unit of ``project`` applying ``keys``."""
    round_, _ = Round.objects.get_or_create(project=project, name="main")
    thread = make_thread(external_id=Unit.objects.count() + 100 + n)
    unit = Unit.objects.create(project=project, round=round_, thread=thread)
    coding = Coding.objects.create(unit=unit, coder=coder, codebook_version=version)
    for key in keys:
        CodeApplication.objects.create(coding=coding, code=version.codes.get(key=key))
    return coding


@pytest.mark.django_db
def test_renaming_keeps_the_key_and_makes_a_new_version_with_who_and_what():
    codebook = make_codebook()
    editor = make_user("editor", is_staff=True)

    version = apply_edit(
        codebook, "rename", base=1, user=editor, key="problems.install", name="Installation"
    )

    assert version.number == 2
    assert version.parent.number == 1
    assert version.created_by == editor
    assert version.note == "Renamed 'Install' to 'Installation'"
    assert version.codes.get(key="problems.install").name == "Installation"
    assert CodebookVersion.objects.get(number=1).codes.get(key="problems.install").name == "Install"
    assert map_keys(version.parent, version)["problems.install"] == {"problems.install"}


@pytest.mark.django_db
def test_merging_maps_the_old_codes_to_the_surviving_one():
    codebook = make_codebook()

    version = apply_edit(
        codebook, "merge", base=1, keys=["problems.setup"], into="problems.install"
    )

    assert not version.codes.filter(key="problems.setup").exists()
    mapping = map_keys(version.parent, version)
    assert mapping["problems.setup"] == {"problems.install"}
    assert mapping["problems.speed"] == {"problems.speed"}
    assert version.mappings_in.get().kind == "merge"


@pytest.mark.django_db
def test_splitting_maps_one_code_to_each_part_and_moving_keeps_identity():
    codebook = make_codebook()
    apply_edit(codebook, "split", base=1, key="problems.install", names=["Pip", "Conda"])
    version = apply_edit(codebook, "move", base=2, key="help.docs", parent="problems")

    first = codebook.versions.get(number=1)
    mapping = map_keys(first, version)
    assert mapping["problems.install"] == {"problems.pip", "problems.conda"}
    assert mapping["help.docs"] == {"help.docs"}
    assert version.codes.get(key="help.docs").parent.key == "problems"


@pytest.mark.django_db
def test_mappings_compose_across_several_versions():
    codebook = make_codebook()
    apply_edit(codebook, "merge", base=1, keys=["problems.setup"], into="problems.install")
    apply_edit(codebook, "split", base=2, key="problems.install", names=["Pip", "Conda"])
    last = apply_edit(codebook, "deactivate", base=3, key="problems.speed")

    mapping = map_keys(codebook.versions.get(number=1), last)

    assert mapping["problems.setup"] == {"problems.pip", "problems.conda"}
    assert mapping["problems.speed"] == {"problems.speed"}
    assert not last.codes.get(key="problems.speed").active


@pytest.mark.django_db
def test_an_edit_based_on_an_old_version_is_refused_not_merged_silently():
    codebook = make_codebook()
    apply_edit(codebook, "rename", base=1, key="help", name="Answers")

    with pytest.raises(VersionConflict, match="changed since you opened it"):
        apply_edit(codebook, "rename", base=1, key="help.docs", name="Documentation")

    assert codebook.versions.count() == 2


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        ("move", {"key": "problems", "parent": "problems.install"}, "under itself"),
        ("merge", {"keys": ["problems"], "into": "problems.install"}, "its own subcode"),
        ("split", {"key": "help.docs", "names": ["Only one"]}, "at least two"),
        ("rename", {"key": "nope", "name": "X"}, "no code with key 'nope'"),
        ("edit", {"key": "help.docs", "shortcut": "j"}, "reserved by the coding screen"),
        ("edit", {"key": "help.docs", "shortcut": "{"}, "reserved by the coding screen"),
        ("edit", {"key": "help.docs", "shortcut": "?"}, "reserved by the coding screen"),
        ("edit", {"key": "help.docs", "shortcut": "s"}, "already used by 'problems.speed'"),
        ("edit", {"key": "help.docs", "color": "blue"}, "not #rrggbb"),
        ("add", {"parent": "help", "name": " "}, "the name is empty"),
    ],
)
@pytest.mark.django_db
def test_bad_edits_are_refused_with_a_reason_and_write_nothing(operation, params, message):
    codebook = make_codebook()

    with pytest.raises(CodebookError, match=message):
        apply_edit(codebook, operation, base=1, **params)

    assert codebook.versions.count() == 1


@pytest.mark.django_db
def test_a_version_with_a_shortcut_reserved_since_can_still_be_edited_and_reloaded():
    codebook = make_codebook()
    # A shortcut given before the coding screen reserved the key (the screen drops it).
    codebook.latest_version().codes.filter(key="help.docs").update(shortcut="?")

    edited = apply_edit(codebook, "rename", base=1, key="problems.setup", name="Set-up")
    assert {c.key: c.shortcut for c in edited.codes.all()}["help.docs"] == "?"
    _, same, changed = load_nodes(codebook.name, "", nodes_of(edited))
    assert same == edited and not changed
    # Giving the key to another code is refused.
    with pytest.raises(CodebookError, match="reserved by the coding screen"):
        apply_edit(codebook, "edit", base=2, key="problems.install", shortcut="?")


@pytest.mark.django_db
def test_diff_between_two_versions_shows_renames_merges_and_the_mapping():
    codebook = make_codebook()
    apply_edit(codebook, "rename", base=1, key="help.docs", name="Documentation")
    last = apply_edit(codebook, "merge", base=2, keys=["problems.setup"], into="problems.install")

    diff = diff_versions(codebook.versions.get(number=1), last)

    summaries = [row["summary"] for row in diff["rows"]]
    assert "Renamed 'Docs' to 'Documentation'" in summaries
    assert "Removed Problems > Setup" in summaries
    assert {"key": "problems.setup", "name": "Setup", "to": ["Install"]} in diff["mapping"]


@pytest.mark.django_db
def test_codings_are_never_rewritten_and_read_through_the_mapping_after_an_upgrade(users):
    codebook = make_codebook()
    v1 = codebook.versions.get(number=1)
    project = make_project("study", admin=users["admin"], annotators=[users["alice"]])
    project.codebook_version = v1
    project.save()
    coding = code_with_codes(project, v1, users["alice"], ["problems.setup", "help.docs"])
    apply_edit(codebook, "rename", base=1, key="help.docs", name="Documentation")
    v3 = apply_edit(codebook, "merge", base=2, keys=["problems.setup"], into="problems.install")

    rows = upgrade_preview(project, v3)
    assert {(r.name, tuple(r.before), tuple(r.after), r.codings) for r in rows} == {
        ("Setup", ("Setup",), ("Install",), 1),
        ("Docs", ("Docs",), ("Documentation",), 1),
    }
    assert all(r.units == [[coding.unit_id, "alice"]] for r in rows)
    project.refresh_from_db()
    assert project.codebook_version == v1  # a preview changes nothing

    record = upgrade_project(project, v3, user=users["admin"], expected_from=v1.pk)

    project.refresh_from_db()
    assert project.codebook_version == v3
    assert (record.from_version, record.to_version, record.upgraded_by) == (v1, v3, users["admin"])
    assert len(record.summary) == 2
    applied = [a.code for a in coding.applications.select_related("code")]
    assert {c.version_id for c in applied} == {v1.pk}  # still the codes they chose
    read = codes_in_version(applied, v3)
    assert sorted(c.name for codes in read.values() for c in codes) == [
        "Documentation",
        "Install",
    ]


@pytest.mark.django_db
def test_an_upgrade_from_a_stale_preview_or_to_an_older_version_is_refused(users):
    codebook = make_codebook()
    v1 = codebook.versions.get(number=1)
    v2 = apply_edit(codebook, "rename", base=1, key="help", name="Answers")
    project = make_project("study", admin=users["admin"])
    project.codebook_version = v2
    project.save()

    with pytest.raises(VersionConflict):
        upgrade_project(project, v2, user=users["admin"], expected_from=v1.pk)
    with pytest.raises(CodebookError, match="not newer"):
        upgrade_preview(project, v1)
    other = make_codebook("Other").versions.get()
    with pytest.raises(CodebookError, match="its own codebook"):
        upgrade_preview(project, other)


@pytest.mark.django_db
def test_adding_a_code_derives_a_stable_unique_key_from_its_path():
    codebook = make_codebook()

    # A retired code keeps its key, so a new code of the same name takes the next one.
    apply_edit(codebook, "deactivate", base=1, key="problems.install")
    v3 = apply_edit(codebook, "add", base=2, parent="problems", name="Install")
    v4 = apply_edit(codebook, "add", base=3, parent=None, name="Memory / GPU")

    assert v3.codes.get(key="problems.install-2").name == "Install"
    assert v4.codes.get(key="memory-gpu").parent is None
    assert [n.key for n in nodes_of(v4)][-1] == "memory-gpu"


@pytest.mark.django_db
def test_no_edit_gives_two_codes_in_use_under_one_parent_the_same_name():
    codebook = make_codebook()
    refused = "the name 'install' is already used under 'problems' by code 'problems.install'"
    with pytest.raises(CodebookError, match=refused):
        apply_edit(codebook, "add", base=1, parent="problems", name="install ")
    with pytest.raises(CodebookError, match="already used under 'problems'"):
        apply_edit(codebook, "rename", base=1, key="problems.setup", name="INSTALL")
    # The same name under another parent is another code.
    v2 = apply_edit(codebook, "add", base=1, parent="help", name="Install")
    # Retired, its name is free; brought back while another holds it, it is refused.
    apply_edit(codebook, "deactivate", base=2, key="problems.install")
    apply_edit(codebook, "add", base=3, parent="problems", name="Install")
    with pytest.raises(CodebookError, match="already used under 'problems'"):
        apply_edit(codebook, "deactivate", base=4, key="problems.install", active=True)
    assert codebook.latest_version().number == 4 and v2.number == 2


@pytest.mark.django_db
def test_a_leaf_that_gets_its_first_subcode_stops_being_codable_until_an_admin_allows_it():
    codebook = make_codebook()

    v2 = apply_edit(codebook, "add", base=1, parent="help.docs", name="Official docs")
    v3 = apply_edit(codebook, "edit", base=2, key="help.docs", codable=True)
    v4 = apply_edit(codebook, "add", base=3, parent="help.docs", name="Blog posts")

    assert v2.note == "Added 'Official docs'; 'Docs' is no longer codable itself"
    assert not v2.codes.get(key="help.docs").codable
    assert v3.codes.get(key="help.docs").codable
    assert v4.codes.get(key="help.docs").codable  # the admin's choice stays
