"""REFI-QDA project export (.qdpx): open a coded project in ATLAS.ti, NVivo, MAXQDA or
QualCoder.

Each unit becomes one plain-text source. Its text is the unit's posts in order, each
introduced by a header line and followed by a blank line::

    [#<post number> <author> <created, UTC ISO 8601>]
    <post plain text>
    <blank line>

A quote stored as code points [start, end) of a post's plain text becomes a
PlainTextSelection at [start + offset, end + offset), where offset is where that post's
text begins in the source; a code applied without a quote selects the whole source.
Positions are Unicode code points, end exclusive (REFI-QDA 1.5, section 10.2). Coders
are Users; memos are Notes attached to the source. GUIDs are derived from stable ids
(uuid5), so exporting twice gives the same GUIDs, and a code has the same GUID here as
in the codebook's .qdc export.
"""

from __future__ import annotations

import re
import uuid
import zipfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from coding.codebook_io import code_guid
from coding.models import Code, CodeApplication, Coding, Post, Project, Quote, Unit

from .exports import ExportOptions, _iso

NS = "urn:QDA-XML:project:1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} http://schema.qdasoftware.org/versions/Project/v1.0/Project.xsd"
GUID_NAMESPACE = uuid.UUID("6f1d3a52-8f0e-4b7e-9a51-2b1c7d9e0a11")
ORIGIN = "Forum coding"


def guid(*parts: object) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, ":".join(str(p) for p in parts))).upper()


def post_header(post: dict, author: str) -> str:
    return f"[#{post['post_number']} {author} {_iso(post['created_at'])}]\n"


def unit_source(posts: list[dict], author_name) -> tuple[str, dict[int, int]]:
    """The source text of a unit and, per post id, where its plain text starts."""
    parts: list[str] = []
    offsets: dict[int, int] = {}
    position = 0
    for post in posts:
        header = post_header(post, author_name(post["author"]))
        parts.append(header)
        position += len(header)
        offsets[post["id"]] = position
        parts.append(post["plain_text"])
        parts.append("\n\n")
        position += len(post["plain_text"]) + 2
    return "".join(parts), offsets


# Characters XML 1.0 cannot hold, even as references: a document with one is unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """``value`` as text an XML 1.0 document can hold (the replacement character stands
    for what it cannot)."""
    return _NOT_XML.sub("\ufffd", str(value))


def _el(parent: ET.Element, tag: str, **attrs: object) -> ET.Element:
    return ET.SubElement(parent, f"{{{NS}}}{tag}", {k: xml_text(v) for k, v in attrs.items()})


def _codes_xml(parent: ET.Element, project: Project, version_ids: set[int]) -> dict[int, str]:
    """Write the code tree; returns code id -> GUID.

    The codings may be pinned to several versions of a codebook. A code is one element
    whatever the versions it is in, with the GUID of its key (as the .qdc export gives
    it), placed and named as in the project's version, else as in the latest version
    that has it: a code renamed, moved or retired since is still there for the codings
    that name it."""
    codes = list(
        Code.objects.filter(version_id__in=version_ids)
        .select_related("version__codebook", "parent")
        .order_by("version__number", "order", "id")
    )

    def identity(code: Code, key: str | None = None) -> tuple[str, str]:
        return code.version.codebook.name, key or code.key

    def rank(code: Code) -> tuple[bool, int]:
        return code.version_id == project.codebook_version_id, code.version.number

    shown: dict[tuple[str, str], Code] = {}
    for code in sorted(codes, key=rank):
        shown[identity(code)] = code
    children: dict[tuple[str, str] | None, list[Code]] = defaultdict(list)
    for code in shown.values():
        above = identity(code, code.parent.key) if code.parent_id else None
        children[above if above in shown else None].append(code)
    guids = {code.pk: code_guid(*identity(code)) for code in codes}
    codebook = _el(parent, "CodeBook")
    container = _el(codebook, "Codes")

    def add(node: ET.Element, code: Code) -> None:
        attrs = {
            "guid": guids[code.pk],
            "name": code.name,
            "isCodable": "true" if code.codable else "false",
        }
        if code.color:
            attrs["color"] = code.color
        element = _el(node, "Code", **attrs)
        if code.definition:
            _el(element, "Description").text = xml_text(code.definition)
        for child in sorted(children[identity(code)], key=lambda c: (c.order, c.key)):
            add(element, child)

    for code in sorted(children[None], key=lambda c: (c.order, c.key)):
        add(container, code)
    not_relevant = _el(
        container, "Code", guid=guid("code", "not-relevant"), name="Not relevant", isCodable="true"
    )
    _el(not_relevant, "Description").text = "The coder judged the unit not relevant to the study."
    guids[-1] = not_relevant.get("guid")
    return guids


class QdpxError(ValueError):
    """An export the .qdpx format cannot carry as asked; the message says why."""


NO_TEXT = (
    "a .qdpx holds the posts' text as its sources, so it cannot leave out post text; "
    "untick that option for the .qdpx, or use a CSV format"
)


def build_project(project: Project, options: ExportOptions) -> tuple[bytes, dict[str, str]]:
    """The project.qde document and the source files (name -> text)."""
    if options.no_text:
        raise QdpxError(NO_TEXT)
    ET.register_namespace("", NS)
    ET.register_namespace("xsi", XSI)
    now = datetime.now(UTC).replace(microsecond=0)
    root = ET.Element(
        f"{{{NS}}}Project",
        {
            "name": project.name,
            "origin": ORIGIN,
            "creationDateTime": _iso(now),
            f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION,
        },
    )
    codings = list(
        Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
        .select_related("coder")
        .order_by("unit_id", "coder__username")
    )
    if options.gold_only:
        gold_units = set(
            Unit.objects.filter(
                project=project, gold__isnull=False, gold__is_open=False
            ).values_list("pk", flat=True)
        )
        codings = [c for c in codings if c.unit_id in gold_units]
    coders = sorted({c.coder.username for c in codings})
    users = _el(root, "Users") if coders else None
    user_guids = {}
    for name in coders:
        shown = options.name("coder", name, project)
        user_guids[name] = guid("user", project.slug, shown)
        _el(users, "User", guid=user_guids[name], name=shown)
    version_ids = {c.codebook_version_id for c in codings}
    if project.codebook_version_id:
        version_ids.add(project.codebook_version_id)
    code_guids = _codes_xml(root, project, version_ids)

    applications = defaultdict(list)
    for app in CodeApplication.objects.filter(coding__in=codings).order_by("pk"):
        applications[app.coding_id].append(app)
    quotes = defaultdict(list)
    for quote in Quote.objects.filter(application__coding__in=codings).order_by("post_id", "start"):
        quotes[quote.application_id].append(quote)
    by_unit = defaultdict(list)
    for coding in codings:
        by_unit[coding.unit_id].append(coding)

    units = Unit.objects.filter(pk__in=by_unit).select_related("thread", "post").order_by("pk")
    sources_el = _el(root, "Sources") if by_unit else None
    notes: list[tuple[str, str, str, Coding]] = []
    files: dict[str, str] = {}
    for unit in units:
        posts_qs = Post.objects.filter(thread_id=unit.thread_id).order_by("post_number")
        if unit.post_id:
            posts_qs = posts_qs.filter(pk=unit.post_id)
        posts = list(posts_qs.values("id", "post_number", "author", "created_at", "plain_text"))
        text, offsets = unit_source(posts, lambda a: options.name("user", a, project))
        source_guid = guid("source", project.slug, unit.pk)
        files[f"{source_guid}.txt"] = text
        title = (
            unit.thread.title
            if not unit.post_id
            else f"{unit.thread.title} #{unit.post.post_number}"
        )
        source = _el(
            sources_el,
            "TextSource",
            guid=source_guid,
            name=f"{title} (unit {unit.pk})",
            plainTextPath=f"internal://{source_guid}.txt",
            creationDateTime=_iso(now),
        )
        _el(source, "Description").text = xml_text(
            f"Forum thread {unit.thread.external_id}: {unit.thread.url}"
            if unit.thread.url
            else f"Forum thread {unit.thread.external_id}"
        )
        length = len(text)
        note_refs = []
        for coding in by_unit[unit.pk]:
            user = user_guids[coding.coder.username]
            stamp = _iso(coding.submitted_at or coding.updated_at)
            entries = []
            if coding.not_relevant:
                entries.append((-1, None, []))
            for app in applications[coding.pk]:
                entries.append((app.code_id, app, quotes.get(app.pk, [])))
            for code_id, _app, quote_list in entries:
                spans = [
                    (q.start + offsets[q.post_id], q.end + offsets[q.post_id], q.pk)
                    for q in quote_list
                    if q.post_id in offsets
                ] or [(0, length, None)]
                for start, end, quote_pk in spans:
                    selection_id = guid("selection", coding.pk, code_id, quote_pk or "whole")
                    selection = _el(
                        source,
                        "PlainTextSelection",
                        guid=selection_id,
                        name=text[start:end][:60],
                        startPosition=start,
                        endPosition=end,
                        creatingUser=user,
                        creationDateTime=stamp,
                    )
                    coding_el = _el(
                        selection,
                        "Coding",
                        guid=guid("coding", selection_id),
                        creatingUser=user,
                        creationDateTime=stamp,
                    )
                    _el(coding_el, "CodeRef", targetGUID=code_guids[code_id])
            if coding.memo:
                note_guid = guid("memo", coding.pk)
                note_refs.append(note_guid)
                notes.append((note_guid, user, stamp, coding))
        for note_guid in note_refs:
            _el(source, "NoteRef", targetGUID=note_guid)
    if notes:
        notes_el = _el(root, "Notes")
        for note_guid, user, stamp, coding in notes:
            coder = options.name("coder", coding.coder.username, project)
            note = _el(
                notes_el,
                "Note",
                guid=note_guid,
                name=f"Memo by {coder} on unit {coding.unit_id}",
                creatingUser=user,
                creationDateTime=stamp,
            )
            _el(note, "PlainTextContent").text = xml_text(coding.memo)
    ET.indent(root)
    document = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    # XML parsers turn a raw CR into LF; a character reference keeps it.
    return document.replace(b"\r", b"&#13;"), files


def write_qdpx(project: Project, path: Path, options: ExportOptions) -> str:
    document, files = build_project(project, options)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("project.qde", document)
            for name, text in files.items():
                archive.writestr(f"sources/{name}", text.encode("utf-8"))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return f"qdpx: {len(files)} sources -> {path}"
