"""Codings made elsewhere, imported into a project: the long CSV layout or a REFI-QDA
.qdpx (from this tool or from QualCoder and other QDA programs).

Both readers produce ``ImportedCoding`` records; ``write_codings`` validates them all
and writes them in one transaction, so a file with any error changes nothing.
Units are matched by forum source, thread id and (for post units) post id, so a file
exported from one project imports into a copy of it; codes by key or by path of names.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..assignment import add_assignments, complete_assignments, lock_open_project
from ..models import (
    Code,
    CodeApplication,
    Coding,
    CodingEvent,
    Membership,
    Post,
    Project,
    Quote,
    Unit,
)

NOT_RELEVANT_CODE = "__not_relevant__"
MAX_ERRORS = 50


class CodingImportError(ValueError):
    """The file cannot be imported; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_ERRORS]
        more = f"\n... and {len(problems) - MAX_ERRORS} more" if len(problems) > MAX_ERRORS else ""
        super().__init__("\n".join(shown) + more)


@dataclass
class ImportedQuote:
    post_external_id: int
    start: int
    end: int
    text: str | None


@dataclass
class ImportedCoding:
    where: str  # file position, for messages
    unit: Unit
    coder: str
    codes: dict[str, list[ImportedQuote]] = field(default_factory=dict)
    not_relevant: bool = False
    unsure: bool = False
    memo: str = ""


class _Units:
    """Finds a project's units by (source, thread id, post id) or by unit id."""

    def __init__(self, project: Project):
        self.by_key: dict[tuple[str, int, int | None], Unit] = {}
        self.by_id: dict[int, Unit] = {}
        for unit in Unit.objects.filter(project=project).select_related("thread__source", "post"):
            post = unit.post.external_id if unit.post_id else None
            self.by_key[(unit.thread.source.name, unit.thread.external_id, post)] = unit
            self.by_id[unit.pk] = unit

    def find(self, source: str, thread_id: str, post_id: str, unit_id: str) -> Unit | None:
        if thread_id:
            post = int(post_id) if post_id else None
            key = (source, int(thread_id), post)
            if source:
                return self.by_key.get(key)
            matches = [u for k, u in self.by_key.items() if k[1:] == key[1:]]
            return matches[0] if len(matches) == 1 else None
        return self.by_id.get(int(unit_id)) if unit_id else None


def _codes_of(project: Project) -> tuple[dict[str, Code], dict[str, Code]]:
    codes = list(Code.objects.filter(version=project.codebook_version))
    by_id = {c.pk: c for c in codes}
    by_key = {c.key: c for c in codes}
    by_path = {}
    for code in codes:
        names, node = [], code
        while node is not None:
            names.append(node.name)
            node = by_id.get(node.parent_id)
        by_path[" > ".join(reversed(names))] = code
    return by_key, by_path


_GUARDED = re.compile(r"^'(?=[=+\-@\t\r])")
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"", "0", "false", "no", "n"}


def unguarded(value: str | None) -> str | None:
    """A cell as it was before the exports' formula guard gave it a leading apostrophe
    (the long export's own files come back unchanged)."""
    return _GUARDED.sub("", value, count=1) if value and value.startswith("'") else value


def _flag(value: str | None, column: str) -> bool:
    word = (value or "").strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{column} {value!r} is not one of 1/0, true/false, yes/no")


def read_long_csv(
    project: Project, data: bytes, name: str = "file"
) -> tuple[list[ImportedCoding], list[str]]:
    """Parse the long layout (``unit,coder,code`` first; other export columns optional)."""
    problems: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodingImportError([f"{name}: not UTF-8 text (byte {exc.start})"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    missing = [c for c in ("coder", "code") if c not in header]
    if missing or not ({"unit", "thread_id"} & set(header)):
        need = ", ".join(missing) or "unit or thread_id"
        raise CodingImportError([f"{name}, line 1: missing column(s) {need}"])
    units = _Units(project)
    records: dict[tuple[int, str], ImportedCoding] = {}
    while True:
        # Where the next record starts: a record may run over several lines (a memo
        # with newlines), and blank lines between records are skipped.
        line = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            break
        if not values:
            continue
        where = f"{name}, line {line}"
        row = {k: unguarded(v) for k, v in zip(header, values, strict=False)}
        try:
            unit = units.find(
                (row.get("source") or "").strip(),
                (row.get("thread_id") or "").strip(),
                (row.get("post_id") or "").strip(),
                (row.get("unit") or "").strip(),
            )
        except ValueError:
            problems.append(f"{where}: unit, thread_id and post_id must be whole numbers")
            continue
        if unit is None:
            problems.append(f"{where}: no unit of this project matches the row's thread/unit")
            continue
        coder = (row.get("coder") or "").strip()
        if not coder:
            problems.append(f"{where}: empty coder")
            continue
        record = records.setdefault(
            (unit.pk, coder),
            ImportedCoding(where=where, unit=unit, coder=coder, memo=row.get("memo") or ""),
        )
        try:
            record.unsure = record.unsure or _flag(row.get("unsure"), "unsure")
            record.not_relevant = record.not_relevant or _flag(
                row.get("not_relevant"), "not_relevant"
            )
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        code = (row.get("code") or "").strip()
        if code == NOT_RELEVANT_CODE:
            record.not_relevant = True
        elif code:
            quotes = []
            raw = (row.get("quotes") or "").strip()
            if raw:
                try:
                    quotes = [
                        ImportedQuote(
                            int(q["post_id"]), int(q["start"]), int(q["end"]), q.get("text")
                        )
                        for q in json.loads(raw)
                    ]
                except (ValueError, KeyError, TypeError):
                    problems.append(
                        f"{where}: quotes must be a JSON list of {{post_id, start, end, text}}"
                    )
            record.codes.setdefault(code, []).extend(quotes)
    return list(records.values()), problems


def read_qdpx(
    project: Project, data: bytes, name: str = "file"
) -> tuple[list[ImportedCoding], list[str]]:
    """Parse a REFI-QDA project: sources matched to units, selections to quotes."""
    from analysis.refi import unit_source

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        qde = archive.read("project.qde")
    except (zipfile.BadZipFile, KeyError):
        raise CodingImportError(
            [f"{name}: not a .qdpx package (a zip holding project.qde)"]
        ) from None
    try:
        root = SafeET.fromstring(qde)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise CodingImportError([f"{name}: project.qde is not valid XML ({exc})"]) from None
    ns = {"q": "urn:QDA-XML:project:1.0"}
    users = {u.get("guid"): u.get("name") or "" for u in root.iterfind(".//q:Users/q:User", ns)}
    code_paths: dict[str, str] = {}

    def walk(element: ET.Element, prefix: list[str]) -> None:
        for code in element.iterfind("q:Code", ns):
            path = [*prefix, code.get("name") or ""]
            code_paths[code.get("guid")] = " > ".join(path)
            walk(code, path)

    for codes in root.iterfind("q:CodeBook/q:Codes", ns):
        walk(codes, [])
    notes = {
        n.get("guid"): (
            n.findtext("q:PlainTextContent", default="", namespaces=ns),
            users.get(n.get("creatingUser") or "", ""),
        )
        for n in root.iterfind(".//q:Notes/q:Note", ns)
    }
    files = {n.split("/", 1)[1]: n for n in archive.namelist() if n.lower().startswith("sources/")}
    units = list(Unit.objects.filter(project=project).select_related("thread", "post"))
    by_text: dict[str, list[tuple[Unit, dict[int, int], dict]]] = {}
    for unit in units:
        posts_qs = Post.objects.filter(thread_id=unit.thread_id).order_by("post_number")
        if unit.post_id:
            posts_qs = posts_qs.filter(pk=unit.post_id)
        posts = list(
            posts_qs.values(
                "id", "external_id", "post_number", "author", "created_at", "plain_text"
            )
        )
        text, offsets = unit_source(posts, lambda a: a)
        external = {p["id"]: p["external_id"] for p in posts}
        lengths = {p["id"]: len(p["plain_text"]) for p in posts}
        entry = (unit, offsets, {"ext": external, "len": lengths})
        by_text.setdefault(_body_key(text), []).append(entry)
    problems: list[str] = []
    records: dict[tuple[int, str], ImportedCoding] = {}
    for source in root.iterfind(".//q:Sources/q:TextSource", ns):
        label = f"{name}, source {source.get('name')!r}"
        path = (source.get("plainTextPath") or "").removeprefix("internal://")
        if path in files:
            try:
                # QualCoder starts its sources with a byte order mark and counts after it.
                text = archive.read(files[path]).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                problems.append(f"{label}: {path} is not UTF-8 text (byte {exc.start})")
                continue
        else:
            text = source.findtext("q:PlainTextContent", default="", namespaces=ns)
        matches = by_text.get(_body_key(text), [])
        if len(matches) > 1:
            # Same text in several units: the thread id in the description decides.
            described = re.search(
                r"Forum thread (\d+)", source.findtext("q:Description", default="", namespaces=ns)
            )
            thread_id = int(described.group(1)) if described else None
            matches = [m for m in matches if m[0].thread.external_id == thread_id]
        if len(matches) != 1:
            problems.append(f"{label}: its text matches no single unit of this project")
            continue
        unit, offsets, info = matches[0]
        # A memo is a note its coder wrote on the source; it stands for a coding even
        # when that coder applied no code.
        for ref in source.iterfind("q:NoteRef", ns):
            memo, author = notes.get(ref.get("targetGUID"), ("", ""))
            if author:
                record = records.setdefault(
                    (unit.pk, author), ImportedCoding(where=label, unit=unit, coder=author)
                )
                record.memo = "\n\n".join(filter(None, [record.memo, memo]))
        # A Coding right under the source applies its code to the whole source.
        spans = [(None, 0, len(text), c) for c in source.iterfind("q:Coding", ns)]
        for selection in source.iterfind("q:PlainTextSelection", ns):
            try:
                start = int(selection.get("startPosition", "0"))
                end = int(selection.get("endPosition", "0"))
            except ValueError:
                problems.append(
                    f"{label}: selection {selection.get('guid')!r} has a start or end "
                    "position that is not a whole number"
                )
                continue
            spans += [(selection, start, end, c) for c in selection.iterfind("q:Coding", ns)]
        for selection, start, end, coding_el in spans:
            creator = coding_el.get("creatingUser")
            if creator is None and selection is not None:
                creator = selection.get("creatingUser")
            user = users.get(creator or "", "")
            ref = coding_el.find("q:CodeRef", ns)
            code_path = code_paths.get(ref.get("targetGUID") if ref is not None else "", "")
            if not user:
                problems.append(f"{label}: a coding names no known user")
                continue
            record = records.setdefault(
                (unit.pk, user), ImportedCoding(where=label, unit=unit, coder=user)
            )
            if code_path == "Not relevant":
                record.not_relevant = True
                continue
            quotes = record.codes.setdefault(code_path, [])
            if (start, end) != (0, len(text)):
                quote = _to_post_quote(start, end, offsets, info, text)
                if quote is None:
                    problems.append(
                        f"{label}: selection {start}-{end} does not lie within one post"
                    )
                else:
                    quotes.append(quote)
    return list(records.values()), problems


def _body_key(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _to_post_quote(start, end, offsets, info, text) -> ImportedQuote | None:
    for post_id, offset in offsets.items():
        if offset <= start and end <= offset + info["len"][post_id]:
            return ImportedQuote(
                info["ext"][post_id], start - offset, end - offset, text[start:end]
            )
    return None


def write_codings(
    project: Project, records: list[ImportedCoding], user, problems: list[str] | None = None
) -> int:
    """Validate every record, then write them all in one transaction; returns the count.

    ``problems`` found while reading the file are reported together with these.
    """
    problems = list(problems or [])
    if project.codebook_version_id is None:
        raise CodingImportError(["the project has no codebook version to match codes against"])
    by_key, by_path = _codes_of(project)
    members = dict(
        Membership.objects.filter(project=project).values_list("user__username", "user_id")
    )
    existing = set(
        Coding.objects.filter(unit__project=project).values_list("unit_id", "coder__username")
    )
    posts_cache: dict[int, dict[int, Post]] = {}
    planned = []
    for record in records:
        if record.coder not in members:
            problems.append(
                f"{record.where}: coder {record.coder!r} is not a member of the project"
            )
            continue
        if (record.unit.pk, record.coder) in existing:
            problems.append(
                f"{record.where}: {record.coder} already has a coding for unit {record.unit.pk}"
            )
            continue
        codes = []
        for name, quotes in record.codes.items():
            code = by_key.get(name) or by_path.get(name)
            if code is None:
                problems.append(f"{record.where}: unknown code {name!r}")
                continue
            if not code.codable:
                problems.append(f"{record.where}: code {name!r} cannot be applied (not codable)")
                continue
            posts = posts_cache.setdefault(
                record.unit.thread_id,
                {p.external_id: p for p in Post.objects.filter(thread_id=record.unit.thread_id)},
            )
            checked = []
            for q in quotes:
                post = posts.get(q.post_external_id)
                if post is None or not (0 <= q.start < q.end <= len(post.plain_text)):
                    problems.append(
                        f"{record.where}: quote {q.start}-{q.end} lies outside "
                        f"post {q.post_external_id}"
                    )
                    continue
                if q.text is not None and post.plain_text[q.start : q.end] != q.text:
                    problems.append(
                        f"{record.where}: quote text does not match post "
                        f"{q.post_external_id} at {q.start}-{q.end}"
                    )
                    continue
                checked.append((post, q))
            codes.append((code, checked))
        planned.append((record, codes))
    if problems:
        raise CodingImportError(problems)
    now = timezone.now()
    User = get_user_model()
    coder_users = {u.username: u for u in User.objects.filter(username__in=members)}
    with transaction.atomic():
        # The project's row first, as every change of its assignments takes it, so the
        # queue counts this import keeps never wait on an assigner's in the other order.
        if not lock_open_project(project.pk):
            raise CodingImportError(
                [f"project {project.slug} is closed for coding; nothing was imported"]
            )
        # Checked again under the lock: another import may have written since.
        taken = set(
            Coding.objects.filter(unit__project=project).values_list("unit_id", "coder__username")
        )
        clashes = [
            f"{record.where}: {record.coder} already has a coding for unit {record.unit.pk}"
            for record, _ in planned
            if (record.unit.pk, record.coder) in taken
        ]
        if clashes:
            raise CodingImportError(clashes)
        for record, codes in planned:
            coder = coder_users[record.coder]
            coding = Coding.objects.create(
                unit=record.unit, coder=coder, codebook_version_id=project.codebook_version_id,
                status=Coding.Status.SUBMITTED, not_relevant=record.not_relevant,
                unsure=record.unsure, memo=record.memo, revision=1, submitted_at=now,
            )  # fmt: skip
            for code, quotes in codes:
                app = CodeApplication.objects.create(coding=coding, code=code)
                Quote.objects.bulk_create(
                    Quote(application=app, post=post, start=q.start, end=q.end,
                          text=post.plain_text[q.start : q.end])
                    for post, q in quotes
                )  # fmt: skip
            after = {
                "codes": sorted(c.key for c, _ in codes),
                "not_relevant": record.not_relevant,
                "memo": record.memo,
            }
            CodingEvent.objects.create(
                coding=coding, user=user, action="import", before=None, after=after
            )
        pairs = {(record.unit.pk, coder_users[record.coder].pk) for record, _ in planned}
        add_assignments(pairs)
        complete_assignments(pairs, now)
    return len(planned)


def import_codings_file(project: Project, path: Path, user=None) -> int:
    data = Path(path).read_bytes()
    if path.suffix.lower() == ".qdpx":
        records, problems = read_qdpx(project, data, path.name)
    else:
        records, problems = read_long_csv(project, data, path.name)
    return write_codings(project, records, user or project.created_by, problems)
