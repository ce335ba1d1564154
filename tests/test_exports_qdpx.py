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
