import zipfile
from io import StringIO
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from django.core.management import call_command

from coding.models import Quote
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "data" / "refi-qda" / "Project.xsd")
NS = {"q": "urn:QDA-XML:project:1.0"}


def _export(project, tmp_path, *extra):
    out = tmp_path / "project.qdpx"
    call_command(
        "export_codings",
        project.slug,
        "--format",
        "qdpx",
        "--output",
        str(out),
        *extra,
        stdout=StringIO(),
    )
    archive = zipfile.ZipFile(out)
    qde = archive.read("project.qde")
    sources = {
        name.split("/", 1)[1]: archive.read(name).decode("utf-8")
        for name in archive.namelist()
        if name.startswith("sources/")
    }
    return qde, sources


def test_qdpx_validates_and_every_selection_matches_its_source_text(users, tmp_path):
    project = make_coded_project(users)
    qde, sources = _export(project, tmp_path)

    SCHEMA.validate(qde.decode("utf-8"))
    root = ET.fromstring(qde)
    quote = Quote.objects.order_by("pk").first()
    found_quote = False
    for source in root.iterfind(".//q:TextSource", NS):
        text = sources[source.get("plainTextPath").removeprefix("internal://")]
        for selection in source.iterfind("q:PlainTextSelection", NS):
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            assert 0 <= start < end <= len(text)
            assert selection.get("name") == text[start:end][:60]
            if text[start:end] == quote.text:
                found_quote = True
    assert found_quote
    assert "😭" in quote.text


def test_qdpx_names_coders_as_users_and_memos_as_notes(users, tmp_path):
    project = make_coded_project(users)
    qde, _ = _export(project, tmp_path)
    root = ET.fromstring(qde)
    assert {u.get("name") for u in root.iterfind(".//q:User", NS)} == {"alice", "bob"}
    memos = {
        n.findtext("q:PlainTextContent", namespaces=NS) for n in root.iterfind(".//q:Note", NS)
    }
    assert "@SUM(A1:A9)" in memos


def test_guids_are_stable_across_exports(users, tmp_path):
    project = make_coded_project(users)
    first, _ = _export(project, tmp_path)
    second, _ = _export(project, tmp_path)
    guids = lambda doc: sorted(e.get("guid") for e in ET.fromstring(doc).iter() if e.get("guid"))  # noqa: E731
    assert guids(first) == guids(second)


def test_non_latin_and_emoji_text_keeps_code_point_offsets(users, tmp_path):
    project = make_coded_project(users)
    unit = project.units.order_by("position").first()
    post = unit.thread.posts.get(post_number=2)
    post.plain_text = "日本語のテキスト 🤗 and ελληνικά"
    post.save()
    app = unit.codings.get(coder=users["bob"]).applications.first()
    Quote.objects.create(application=app, post=post, start=9, end=10, text="🤗")
    qde, sources = _export(project, tmp_path)
    SCHEMA.validate(qde.decode("utf-8"))
    texts = [
        sources[s.get("plainTextPath").removeprefix("internal://")][
            int(sel.get("startPosition")) : int(sel.get("endPosition"))
        ]
        for s in ET.fromstring(qde).iterfind(".//q:TextSource", NS)
        for sel in s.iterfind("q:PlainTextSelection", NS)
    ]
    assert "🤗" in texts


def test_the_codebook_exports_as_qdc_with_the_same_code_guids_as_the_qdpx(users, tmp_path):
    project = make_coded_project(users)
    qdc_path = tmp_path / "codebook.qdc"
    call_command(
        "export_codings",
        project.slug,
        "--format",
        "qdc",
        "--output",
        str(qdc_path),
        stdout=StringIO(),
    )
    qdpx, _ = _export(project, tmp_path)
    qdc_guids = {e.get("name"): e.get("guid") for e in ET.parse(qdc_path).iter() if e.get("guid")}
    qdpx_guids = {
        e.get("name"): e.get("guid") for e in ET.fromstring(qdpx).iterfind(".//q:Code", NS)
    }
    assert qdc_guids["Installation"] == qdpx_guids["Installation"]


def test_codings_on_two_codebook_versions_export_one_code_tree(users, tmp_path):
    from coding.codebook import apply_edit
    from coding.models import CodeApplication, Coding

    project = make_coded_project(users)
    codebook = project.codebook_version.codebook
    apply_edit(codebook, "rename", base=1, key="install", name="Installing")
    newest = apply_edit(codebook, "add", base=2, parent="problems", name="Drivers")
    project.codebook_version = newest
    project.save()
    # Bob recodes one unit on the newest version, with the code added there.
    coding = Coding.objects.get(unit__position=1, coder=users["bob"])
    coding.codebook_version = newest
    coding.save()
    drivers = newest.codes.get(name="Drivers")
    CodeApplication.objects.create(coding=coding, code=drivers)

    qde, _ = _export(project, tmp_path)
    SCHEMA.validate(qde.decode("utf-8"))
    root = ET.fromstring(qde)
    codes = {c.get("guid"): c for c in root.iterfind(".//q:Code", NS)}
    names = [c.get("name") for c in root.iterfind(".//q:Code", NS)]
    assert sorted(names) == sorted(
        ["Problems", "Installing", "Out of memory", "Drivers", "Documentation gap",
         "Retired code", "Not relevant"]
    )  # fmt: skip
    refs = {r.get("targetGUID") for r in root.iterfind(".//q:CodeRef", NS)}
    assert refs <= set(codes)
    problems = next(c for c in codes.values() if c.get("name") == "Problems")
    assert "Drivers" in {c.get("name") for c in problems.iterfind("q:Code", NS)}


def test_a_qdpx_cannot_leave_out_the_text_it_is_made_of(users, client, tmp_path):
    from django.core.management import CommandError

    project = make_coded_project(users)
    with pytest.raises(CommandError, match=r"a \.qdpx holds the posts' text"):
        _export(project, tmp_path, "--no-text")
    client.force_login(users["admin"])
    response = client.get(f"/projects/{project.slug}/exports/qdpx/?no_text=1", follow=True)
    assert "Not downloaded: a .qdpx holds the posts&#x27; text" in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/projects/{project.slug}/exports/"


def test_a_pseudonymized_qdpx_writes_its_key_beside_it(users, tmp_path):
    project = make_coded_project(users)
    qde, _ = _export(project, tmp_path, "--pseudonymize")
    names = {u.get("name") for u in ET.fromstring(qde).iterfind(".//q:User", NS)}
    assert names.isdisjoint({"alice", "bob"})
    key = (tmp_path / "project.qdpx.key.csv").read_text()
    assert "alice" in key and "bob" in key
    assert all(name in key for name in names)


def test_a_memo_with_a_control_character_still_gives_a_readable_document(users, tmp_path):
    from coding.models import Coding

    project = make_coded_project(users)
    Coding.objects.filter(coder=users["alice"], memo="@SUM(A1:A9)").update(
        memo="escape \x1b and form feed \x0c"
    )
    qde, _ = _export(project, tmp_path)
    SCHEMA.validate(qde.decode("utf-8"))
    memos = {n.findtext("q:PlainTextContent", namespaces=NS) for n in ET.fromstring(qde).iter()}
    assert "escape \ufffd and form feed \ufffd" in memos
