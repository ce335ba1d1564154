"""Open codes made elsewhere, imported into a project.

Two layouts are read:

- the study layout: one row per code with a running index (first column, unnamed),
  ``Topic#`` (the forum topic id), ``Tag`` (the forum category, not used) and ``Code``
  (the free-text open code); further columns are ignored. It names no coder, so every
  code is imported as the coder given (by default the project's creator);
- the long layout of this tool's open-code export: ``thread_id``, ``coder``, ``open_code``
  (and optionally ``source``, ``memo``).

Rows are matched to threads by topic id within the project's selected sources (any
source when the id is unambiguous). A thread of the corpus that is not yet a unit of the
project becomes one (in the round "Imported open codes"). Every problem is collected and
listed; a file with any problem changes nothing. Codes already stored for the same unit
and coder are left as they are, so importing a file twice adds nothing.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..assignment import add_assignments, complete_assignments
from ..models import (
    Coding,
    CodingEvent,
    Membership,
    OpenCode,
    Project,
    Round,
    Thread,
    Unit,
)
from ..open_coding import OPEN_CODE_MAX_CHARS, normalize, open_state_of

MAX_LISTED = 50
IMPORT_ROUND = "Imported open codes"


class OpenCodeImportError(ValueError):
    """The file cannot be imported; ``problems`` lists every reason, ``unknown_topics`` the
    topic ids the corpus does not hold."""

    def __init__(self, problems: list[str], unknown_topics: list[int] | None = None):
        self.problems = problems
        self.unknown_topics = unknown_topics or []
        shown = problems[:MAX_LISTED]
        more = f"\n... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        super().__init__("\n".join(shown) + more)


@dataclass
class Row:
    where: str
    topic: int
    coder: str
    text: str
    source: str = ""


@dataclass
class Summary:
    units_new: int = 0
    codings: int = 0
    codes_new: int = 0
    codes_unchanged: int = 0
    topics: int = 0
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"open codes: {self.codes_new} new, {self.codes_unchanged} unchanged; "
            f"topics: {self.topics}; units: {self.units_new} new; codings: {self.codings}"
        )


def read_rows(data: bytes, name: str, default_coder: str) -> tuple[list[Row], list[str]]:
    """Parse either layout into rows; problems name the file and line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OpenCodeImportError([f"{name}: not UTF-8 text (byte {exc.start})"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    study = "Topic#" in header and "Code" in header
    long = "thread_id" in header and "open_code" in header
    if not (study or long):
        raise OpenCodeImportError(
            [
                f"{name}, line 1: expected the columns Topic#, Code (study layout) "
                f"or thread_id, coder, open_code (long layout); found {', '.join(header) or 'none'}"
            ]
        )
    col = {h: i for i, h in reversed(list(enumerate(header)))}
    rows: list[Row] = []
    problems: list[str] = []
    for line, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue
        cells = raw + [""] * (len(header) - len(raw))
        where = f"{name}, line {line}"
        topic_col, text_col = ("Topic#", "Code") if study else ("thread_id", "open_code")
        topic_raw = cells[col[topic_col]].strip()
        code = " ".join(cells[col[text_col]].split())
        coder = default_coder if study else cells[col["coder"]].strip()
        if not topic_raw.isdigit():
            problems.append(f"{where}: {topic_col} must be a topic id, not '{topic_raw[:40]}'")
            continue
        if not code:
            problems.append(f"{where}: empty {text_col}")
            continue
        if len(code) > OPEN_CODE_MAX_CHARS:
            problems.append(f"{where}: {text_col} longer than {OPEN_CODE_MAX_CHARS} characters")
            continue
        if not coder:
            problems.append(f"{where}: empty coder")
            continue
        source = cells[col["source"]].strip() if "source" in col else ""
        rows.append(Row(where, int(topic_raw), coder, code, source))
    return rows, problems


def _threads(project: Project, rows: list[Row]) -> tuple[dict, list[str], list[int]]:
    """(source name or "", topic id) -> thread; problems for ambiguous ids; unknown ids."""
    ids = {r.topic for r in rows}
    sources = project.selection.get("sources") if isinstance(project.selection, dict) else None
    found: dict[int, list[Thread]] = defaultdict(list)
    qs = Thread.objects.filter(external_id__in=ids).select_related("source")
    for thread in qs.order_by("source__name"):
        found[thread.external_id].append(thread)
    out: dict[tuple[str, int], Thread] = {}
    problems: list[str] = []
    unknown: list[int] = []
    for row in rows:
        threads = found.get(row.topic, [])
        if row.source:
            threads = [t for t in threads if t.source.name == row.source]
        elif sources and len(threads) > 1:
            threads = [t for t in threads if t.source_id in sources] or threads
        if not threads:
            unknown.append(row.topic)
            problems.append(f"{row.where}: topic {row.topic} is not in the corpus")
        elif len(threads) > 1:
            names = ", ".join(t.source.name for t in threads)
            problems.append(
                f"{row.where}: topic {row.topic} is in several sources ({names}); "
                "add a source column or select one source in the project"
            )
        else:
            out[(row.source, row.topic)] = threads[0]
    return out, problems, sorted(set(unknown))


def import_open_codes(
    project: Project, data: bytes, *, name: str = "file", coder=None, skip_unknown: bool = False
) -> Summary:
    """Check every row, then write all of them in one transaction (or nothing).

    With ``skip_unknown`` rows whose topic the corpus lacks are left out (and listed in
    the summary) instead of stopping the import.
    """
    if project.unit_type != Project.UnitType.THREAD:
        raise OpenCodeImportError([f"{name}: open codes by topic need a project of thread units"])
    default = coder.username if coder is not None else project.created_by.username
    rows, problems = read_rows(data, name, default)
    if not rows and not problems:
        raise OpenCodeImportError([f"{name}: no rows"])
    users = {
        u.username: u for u in get_user_model().objects.filter(username__in={r.coder for r in rows})
    }
    members = set(
        Membership.objects.filter(project=project, user__in=users.values()).values_list(
            "user__username", flat=True
        )
    )
    for row in rows:
        if row.coder not in users:
            problems.append(f"{row.where}: no user named '{row.coder}'")
        elif row.coder not in members:
            problems.append(f"{row.where}: '{row.coder}' is not a member of {project.slug}")
    threads, thread_problems, unknown = _threads(project, rows)
    skipped: list[str] = []
    if skip_unknown:
        skipped = [p for p in thread_problems if "is not in the corpus" in p]
        thread_problems = [p for p in thread_problems if p not in skipped]
    problems += thread_problems
    if problems:
        raise OpenCodeImportError(problems, unknown)
    rows = [r for r in rows if (r.source, r.topic) in threads]
    summary = Summary(skipped=skipped, topics=len({r.topic for r in rows}))
    with transaction.atomic():
        _write(project, rows, threads, users, summary)
    return summary


def _write(project, rows, threads, users, summary: Summary) -> None:
    units = {
        u.thread_id: u for u in Unit.objects.filter(project=project, post__isnull=True).order_by()
    }
    round_ = None
    by_coding: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for row in rows:
        thread = threads[(row.source, row.topic)]
        if thread.pk not in units:
            if round_ is None:
                round_, _ = Round.objects.get_or_create(
                    project=project, name=IMPORT_ROUND, defaults={"order": 1000}
                )
            position = Unit.objects.filter(project=project).count()
            units[thread.pk] = Unit.objects.create(
                project=project, round=round_, thread=thread, position=position
            )
            summary.units_new += 1
        by_coding[(units[thread.pk].pk, row.coder)].append(row)
    unit_by_id = {u.pk: u for u in units.values()}
    now = timezone.now()
    add_assignments((unit_id, users[username].pk) for unit_id, username in by_coding)
    finished = []
    for (unit_id, username), coder_rows in by_coding.items():
        unit, user = unit_by_id[unit_id], users[username]
        coding = Coding.objects.select_for_update().filter(unit=unit, coder=user).first()
        before = open_state_of(coding) if coding else None
        if coding is None:
            coding = Coding.objects.create(
                unit=unit,
                coder=user,
                codebook_version_id=project.codebook_version_id,
                status=Coding.Status.SUBMITTED,
                submitted_at=now,
            )
        have = set(coding.open_codes.values_list("normalized", flat=True))
        order = len(have)
        new = []
        for row in coder_rows:
            norm = normalize(row.text)
            if norm in have:
                summary.codes_unchanged += 1
                continue
            have.add(norm)
            new.append(OpenCode(coding=coding, text=row.text, normalized=norm, order=order))
            order += 1
        if not new:
            continue
        OpenCode.objects.bulk_create(new)
        summary.codes_new += len(new)
        summary.codings += 1
        coding.revision += 1
        coding.save(update_fields=["revision", "updated_at"])
        CodingEvent.objects.create(
            coding=coding, user=user, action="import", before=before, after=open_state_of(coding)
        )
        finished.append((unit_id, user.pk))
    complete_assignments(finished, now)


def import_open_codes_file(project: Project, path: Path, **options) -> Summary:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OpenCodeImportError([f"{path}: cannot read the file ({exc.strerror})"]) from None
    return import_open_codes(project, data, name=Path(path).name, **options)
