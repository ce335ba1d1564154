"""Loading and exporting codebooks: the default taxonomy, CSV, JSON and REFI-QDA .qdc."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import xmlschema
from django.core.management import call_command
from django.core.management.base import CommandError

from coding.codebook import apply_edit, nodes_of
from coding.codebook_io import DEFAULT_CODEBOOK, code_guid, export_version, load_file
from coding.models import Code, Codebook, CodebookVersion

XSD = Path(__file__).resolve().parent / "data" / "refi-qda" / "Codebook.xsd"
DEFAULT_NAME = json.loads(DEFAULT_CODEBOOK.read_text())["name"]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def default_version() -> CodebookVersion:
    return Codebook.objects.get(name=DEFAULT_NAME).latest_version()


def depth_of(code: Code) -> int:
    depth = 0
    while code.parent_id:
        code, depth = code.parent, depth + 1
    return depth


def tree_fields(version: CodebookVersion) -> list[tuple]:
    return [(n.key, n.parent, n.name, n.definition, n.color, n.codable) for n in nodes_of(version)]


@pytest.mark.django_db
def test_load_default_creates_the_studys_groups_categories_and_subcategories():
    out = run("load_codebook", "--default")

    assert "loaded as version 1; 86 codes" in out
    codes = list(default_version().codes.select_related("parent__parent"))
    by_depth: dict[int, list[Code]] = {}
    for code in codes:
        by_depth.setdefault(depth_of(code), []).append(code)
    assert [c.name for c in by_depth[0]] == ["Challenges", "Benefits"]
    challenges = [c for c in by_depth[1] if c.parent.name == "Challenges"]
    benefits = [c for c in by_depth[1] if c.parent.name == "Benefits"]
    assert (len(challenges), len(benefits)) == (17, 6)
    assert len([c for c in by_depth[2] if c.parent.parent.name == "Challenges"]) == 40
    assert len([c for c in by_depth[2] if c.parent.parent.name == "Benefits"]) == 21
    names = {c.name for c in codes}
    for published in (
        "Loading/Saving Models",
        "Implementation of HF Source code/Existing Feature",
        "Shared Link to Resources/Guidelines",
        "HF Libraries' Features",
        "Model Converting (ONNX Library)",
        "on Models, their Functionality and Output",
    ):
        assert published in names


@pytest.mark.django_db
def test_loading_the_default_again_changes_nothing():
    run("load_codebook", "--default")
    first = list(Code.objects.values_list("pk", "key", "name"))

    out = run("load_codebook", "--default")

    assert "unchanged at version 1" in out
    assert CodebookVersion.objects.count() == 1
    assert list(Code.objects.values_list("pk", "key", "name")) == first


@pytest.mark.django_db
def test_default_keys_are_unique_even_where_a_subcategory_shares_its_categorys_name():
    run("load_codebook", "--default")
    version = default_version()
    api = version.codes.get(key="challenges.api-usage")
    child = version.codes.get(parent=api, name="API usage")

    assert child.key == "challenges.api-usage.api-usage"
    assert version.codes.get(name="Loading/Saving Models").key == (
        "challenges.model-usage-and-understanding.loading-saving-models"
    )


@pytest.mark.django_db
def test_default_leaves_are_codable_and_parents_are_not():
    run("load_codebook", "--default")
    codes = list(default_version().codes.all())
    parents = {c.parent_id for c in codes if c.parent_id}

    for code in codes:
        assert code.codable == (code.pk not in parents), code.name
    # A category without subcategories is itself a leaf.
    assert default_version().codes.get(name="Spaces").codable


@pytest.mark.django_db
def test_default_codebook_cites_the_paper_and_has_a_definition_for_every_code():
    run("load_codebook", "--default")
    codebook = Codebook.objects.get(name=DEFAULT_NAME)

    assert "Taraghi" in codebook.description
    assert "Deep Learning Model Reuse in the HuggingFace Community" in codebook.description
    assert "SANER 2024" in codebook.description
    assert not default_version().codes.filter(definition="").exists()


@pytest.mark.django_db
def test_csv_round_trip_preserves_tree_keys_names_definitions_colors_and_codable(tmp_path):
    run("load_codebook", "--default")
    source = default_version()
    apply_edit(source.codebook, "edit", base=1, key="benefits", codable=True, shortcut="b")
    source = default_version()
    first = tmp_path / "first.csv"
    run("export_codebook", str(first), "--codebook", DEFAULT_NAME)

    run("load_codebook", str(first), "--name", "copy")
    second = tmp_path / "second.csv"
    run("export_codebook", str(second), "--codebook", "copy")

    copy = Codebook.objects.get(name="copy").latest_version()
    assert tree_fields(copy) == tree_fields(source)
    assert copy.codes.get(key="benefits").shortcut == "b"
    assert first.read_text() == second.read_text()
    rows = list(csv.DictReader(first.open()))
    assert (
        rows[2]["path"]
        == "Challenges > Model Usage and Understanding > Understanding Model Function"
    )


@pytest.mark.django_db
def test_qdc_export_validates_against_the_refi_qda_schema_and_round_trips(tmp_path):
    run("load_codebook", "--default")
    first = tmp_path / "first.qdc"
    run("export_codebook", str(first))
    xmlschema.XMLSchema(str(XSD)).validate(str(first))

    run("load_codebook", str(first), "--name", "copy")
    second = tmp_path / "second.qdc"
    run("export_codebook", str(second), "--codebook", "copy")

    xmlschema.XMLSchema(str(XSD)).validate(str(second))
    assert tree_fields(Codebook.objects.get(name="copy").latest_version()) == tree_fields(
        default_version()
    )


@pytest.mark.django_db
def test_qdc_guids_are_stable_across_exports_and_keep_keys_after_a_rename(tmp_path):
    run("load_codebook", "--default")
    first = export_version(default_version(), "qdc")
    again = export_version(default_version(), "qdc")
    assert first == again
    assert code_guid(DEFAULT_NAME, "challenges.spaces").encode() in first
    codebook = Codebook.objects.get(name=DEFAULT_NAME)
    apply_edit(codebook, "rename", base=1, key="challenges.spaces", name="HF Spaces")
    path = tmp_path / "renamed.qdc"
    path.write_bytes(export_version(default_version(), "qdc"))

    _, version, changed = load_file(path, DEFAULT_NAME)

    assert not changed  # same keys, same tree: recognised as the current version
    assert version.codes.get(key="challenges.spaces").name == "HF Spaces"


FOREIGN_QDC = """<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="Another QDA tool 9">
  <Codes>
    <Code guid="{1B5B1A52-3C2E-4C53-9B1C-2B0F1E0C0A01}" name="Problems" isCodable="false"
          color="#999">
      <Description>Folder</Description>
      <Code guid="1b5b1a52-3c2e-4c53-9b1c-2b0f1e0c0a02" name="Install / setup" isCodable="true"
            color="#E53935"><Description>Environment trouble</Description></Code>
      <Code guid="1B5B1A52-3C2E-4C53-9B1C-2B0F1E0C0A03" name="Install / setup" isCodable="1"/>
    </Code>
  </Codes>
  <Sets>
    <Set guid="1B5B1A52-3C2E-4C53-9B1C-2B0F1E0C0A04" name="All">
      <MemberCode guid="1B5B1A52-3C2E-4C53-9B1C-2B0F1E0C0A02"/>
    </Set>
  </Sets>
</CodeBook>
"""


@pytest.mark.django_db
def test_a_qdc_made_by_another_tool_imports(tmp_path):
    path = tmp_path / "other-tool.qdc"
    path.write_text(FOREIGN_QDC)

    out = run("load_codebook", str(path))

    assert "codebook 'other-tool': loaded as version 1; 3 codes" in out
    nodes = nodes_of(Codebook.objects.get(name="other-tool").latest_version())
    assert [(n.key, n.name, n.codable, n.color) for n in nodes] == [
        ("problems", "Problems", False, "#999999"),
        ("problems.install-setup", "Install / setup", True, "#e53935"),
        ("problems.install-setup-2", "Install / setup", True, ""),
    ]
    assert nodes[1].definition == "Environment trouble"


@pytest.mark.django_db
def test_the_studys_csv_layout_imports(tmp_path):
    path = tmp_path / "Challenges.csv"
    path.write_text(
        "#,Category,Subcategory,Definition,Example\n"
        "1,Setup,Install/Upgrade,Installing things.,T1: an example\n"
        ",,Setup,Setting things up.,\n"
        "2,Other,,Anything else.,\n",
        encoding="utf-8-sig",
    )

    run("load_codebook", str(path), "--name", "study")

    nodes = nodes_of(Codebook.objects.get(name="study").latest_version())
    assert [(n.key, n.name, n.codable) for n in nodes] == [
        ("challenges", "Challenges", False),
        ("challenges.setup", "Setup", False),
        ("challenges.setup.install-upgrade", "Install/Upgrade", True),
        ("challenges.setup.setup", "Setup", True),
        ("challenges.other", "Other", True),
    ]
    assert nodes[2].examples == [{"text": "T1: an example"}]
    assert nodes[4].definition == "Anything else."


@pytest.mark.django_db
def test_json_round_trip_keeps_every_field(tmp_path):
    run("load_codebook", "--default")
    codebook = Codebook.objects.get(name=DEFAULT_NAME)
    apply_edit(
        codebook,
        "edit",
        base=1,
        key="challenges.spaces",
        when_to_use="A Space is named.",
        examples=[{"text": "My Space will not build", "post_id": 7}],
    )
    path = tmp_path / "book.json"
    run("export_codebook", str(path), "--version", "2")

    run("load_codebook", str(path), "--name", "copy")

    copy = Codebook.objects.get(name="copy").latest_version()
    assert [n.content() for n in nodes_of(copy)] == [
        n.content() for n in nodes_of(default_version())
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("book.csv", "key,name,parent_key\na,A,\nb,B,missing\n", "book.csv, row 3: parent key"),
        ("book.csv", "key,name\na,A\na,Again\n", "book.csv, row 3: key 'a' is already used"),
        ("book.csv", "key,name,color\na,A,red\n", "book.csv, row 2: code 'a': the colour"),
        ("book.csv", "key,name,shortcut\na,A,k\n", "reserved by the coding screen"),
        ("book.csv", "key,name,codable\na,A,maybe\n", "row 2: codable must be true or false"),
        ("book.csv", "title,text\nx,y\n", "book.csv, row 1: expected the columns"),
        ("book.json", '{"codes": [{"name": "A"}, {"key": 3}]}', "codes[1] has no name"),
        ("book.json", '{"codes": [', "book.json, line 1: not valid JSON"),
        ("book.qdc", "<CodeBook><Codes><Code", "book.qdc: not well-formed XML"),
        ("book.qdc", '<CodeBook><Codes><Code guid="x" name="A"/></Codes></CodeBook>', "isCodable"),
        ("book.xlsx", "x", "unknown format 'xlsx'"),
    ],
)
@pytest.mark.django_db
def test_a_bad_file_is_refused_with_a_message_naming_the_place_and_loads_nothing(
    tmp_path, name, content, message
):
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run("load_codebook", str(path))

    assert not Codebook.objects.exists()
    assert not Code.objects.exists()


@pytest.mark.django_db
def test_a_changed_file_becomes_a_new_version_recording_removed_codes(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text("key,parent_key,name\ntop,,Top\na,top,A\nb,top,B\n")
    run("load_codebook", str(path))
    path.write_text("key,parent_key,name\ntop,,Top\na,top,A renamed\n")

    out = run("load_codebook", str(path))

    assert "loaded as version 2; 2 codes" in out
    version = Codebook.objects.get(name="book").latest_version()
    assert version.mappings_in.get().old_key == "b"
    summaries = [c["summary"] for c in version.changes]
    assert "Renamed 'A' to 'A renamed'" in summaries
    assert "Removed Top > B" in summaries


@pytest.mark.django_db
def test_export_codebook_refuses_unknown_codebook_and_version(tmp_path):
    run("load_codebook", "--default")

    with pytest.raises(CommandError, match="no codebook named 'nope'"):
        run("export_codebook", str(tmp_path / "x.csv"), "--codebook", "nope")
    with pytest.raises(CommandError, match="has no version 9"):
        run("export_codebook", str(tmp_path / "x.csv"), "--version", "9")
    with pytest.raises(CommandError, match="unknown format"):
        run("export_codebook", str(tmp_path / "x.txt"))
    with pytest.raises(CommandError, match="either a PATH or --default"):
        run("load_codebook")


@pytest.mark.django_db
def test_load_default_pins_the_demo_project_only_when_it_has_no_codebook():
    from tests.factories import make_project

    demo = make_project("demo")

    out = run("load_codebook", "--default")
    demo.refresh_from_db()
    assert "demo project pinned to version 1" in out
    assert demo.codebook_version == default_version()

    other = Codebook.objects.create(name="Other")
    version = CodebookVersion.objects.create(codebook=other, number=1)
    demo.codebook_version = version
    demo.save()
    out = run("load_codebook", "--default")
    demo.refresh_from_db()
    assert "pinned" not in out
    assert demo.codebook_version == version


@pytest.mark.django_db
def test_csv_round_trip_keeps_examples_with_line_breaks_brackets_and_post_links(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text("key,name\na,A\nb,B\nc,C\n")
    run("load_codebook", str(path))
    codebook = Codebook.objects.get(name="book")
    tricky = {
        "a": [{"text": "two\nlines"}, {"text": "plain"}],
        "b": [{"text": "[not json] but looks like it"}],
        "c": [{"text": "linked", "post_id": 42}, {"text": "plain one"}],
    }
    for number, (key, examples) in enumerate(tricky.items(), start=1):
        apply_edit(codebook, "edit", base=number, key=key, examples=examples)
    out = tmp_path / "out.csv"
    run("export_codebook", str(out), "--codebook", "book")

    run("load_codebook", str(out), "--name", "copy")

    copy = Codebook.objects.get(name="copy").latest_version()
    assert {n.key: n.examples for n in nodes_of(copy)} == tricky


@pytest.mark.django_db
def test_a_qdc_round_trip_keeps_what_the_format_cannot_carry_and_leaves_retired_codes_out(
    tmp_path,
):
    from coding.codebook import Node, load_nodes

    example = {"text": "pip install fails on Windows", "post_id": None}
    codebook, _, _ = load_nodes(
        "Reuse",
        "",
        [
            Node(key="problems", name="Problems", codable=False),
            Node(key="problems.install", name="Install", parent="problems", shortcut="i",
                 when_to_use="Setting up fails", when_not_to_use="Runtime errors",
                 examples=[example], definition="Trouble installing"),
            Node(key="problems.old", name="Old", parent="problems"),
            Node(key="problems.old.older", name="Older", parent="problems.old"),
            Node(key="problems.speed", name="Speed", parent="problems", shortcut="s"),
        ],
    )  # fmt: skip
    apply_edit(codebook, "deactivate", base=1, key="problems.old")
    apply_edit(codebook, "rename", base=2, key="problems.speed", name="Slow inference")
    latest = codebook.latest_version()
    path = tmp_path / "reuse.qdc"
    path.write_bytes(export_version(latest, "qdc"))
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    text = path.read_text()
    assert 'name="Old"' not in text and 'name="Older"' not in text

    # Loaded back unchanged: nothing is lost and no version is made.
    _, version, changed = load_file(path, "Reuse")
    assert not changed and version == latest

    # Edited in another tool (a description changed): only that changes.
    path.write_text(text.replace("Trouble installing", "Cannot install"))
    _, version, changed = load_file(path, "Reuse")
    assert changed and version.number == latest.number + 1
    before, after = nodes_of(latest), nodes_of(version)
    assert [n.key for n in after] == [n.key for n in before]
    assert [n for n in after if n.key != "problems.install"] == [
        n for n in before if n.key != "problems.install"
    ]
    install = next(n for n in after if n.key == "problems.install")
    assert (install.definition, install.shortcut, install.when_to_use) == (
        "Cannot install", "i", "Setting up fails"
    )  # fmt: skip
    assert install.when_not_to_use == "Runtime errors" and install.examples == [example]
    assert [n.active for n in after if n.key.startswith("problems.old")] == [False, False]

    # Loaded as a new codebook: the same keys (a renamed code's too) and fields; the
    # retired codes were never in the file.
    _, copy, _ = load_file(path, "Reuse copy")
    copied = nodes_of(copy)
    assert [n.key for n in copied] == [
        "problems", "problems.install", "problems.speed"
    ]  # fmt: skip
    assert copied[2].name == "Slow inference" and copied[2].shortcut == "s"
    assert copied[1].examples == [example]


@pytest.mark.django_db
def test_exporting_a_qdc_says_how_many_retired_codes_it_left_out_and_refuses_an_empty_one(
    tmp_path, client
):
    from coding.codebook import Node, load_nodes
    from tests.factories import make_user

    codebook, _, _ = load_nodes(
        "Tiny", "", [Node(key="a", name="A"), Node(key="a.b", name="B", parent="a")]
    )
    apply_edit(codebook, "deactivate", base=1, key="a.b")
    out = run("export_codebook", str(tmp_path / "tiny.qdc"), "--codebook", "Tiny")
    assert "version 2: 1 codes written to" in out and "(left out, retired: 1)" in out
    assert "version 2: 2 codes written to" in run(
        "export_codebook", str(tmp_path / "tiny.csv"), "--codebook", "Tiny"
    )
    apply_edit(codebook, "deactivate", base=2, key="a")
    with pytest.raises(CommandError, match="every code of this version is retired"):
        run("export_codebook", str(tmp_path / "none.qdc"), "--codebook", "Tiny")
    assert not (tmp_path / "none.qdc").exists()
    client.force_login(make_user("reader"))
    response = client.get(f"/codebooks/{codebook.pk}/export/qdc/")
    assert response.status_code == 302
    shown = client.get(response["Location"]).content.decode()
    assert "Not exported: every code of this version is retired" in shown
