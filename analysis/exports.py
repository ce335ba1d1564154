"""CSV exports of a project's coded data, streamed row by row.

Every export is a generator of rows, so the web view (StreamingHttpResponse) and the
``export_codings`` command write the same bytes with flat memory whatever the size.
Rows are read in keyset-paginated chunks: a handful of queries per chunk of codings.

Formula guard: spreadsheet programs run a cell that starts with ``= + - @`` (or a tab
or carriage return) as a formula. Free-text cells starting so get a leading
apostrophe; ids, numbers and dates are never altered. ``guard=False`` writes raw
values for tools such as pandas.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import F

from coding.models import (
    Code,
    CodeApplication,
    Coding,
    GoldLabel,
    Post,
    Project,
    Quote,
    Unit,
)

CHUNK = 5000
FORMULA_START = frozenset("=+-@\t\r")
NOT_RELEVANT_CODE = "__not_relevant__"

LONG_COLUMNS = [
    "unit", "coder", "code", "source", "thread_id", "post_id", "thread_url", "category",
    "created_at", "code_path", "codebook_version", "round", "not_relevant", "unsure",
    "quotes", "memo", "coded_at",
]  # fmt: skip
# Columns holding free text that may start with a formula character.
TEXT_COLUMNS = {
    "coder", "code", "source", "category", "code_path", "round", "quotes", "memo",
    "thread_title", "author", "text", "rationale", "adjudicator", "rule", "coder_a", "coder_b",
    "pseudonym", "name",
}  # fmt: skip


def needs_guard(value: object) -> bool:
    """A text cell a spreadsheet would run as a formula; also one that looks guarded
    already, so that taking one apostrophe off (as the import does) always gives it back."""
    if not value or not isinstance(value, str):
        return False
    return value[0] in FORMULA_START or (value[0] == "'" and value[1:2] in FORMULA_START)


def guard_cell(value: str) -> str:
    return "'" + value if needs_guard(value) else value


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.isoformat().replace("+00:00", "Z")


@dataclass
class ExportOptions:
    gold_only: bool = False
    pseudonymize: bool = False
    no_text: bool = False
    guard: bool = True
    pseudonyms: dict[tuple[str, str], str] = field(default_factory=dict)

    def name(self, kind: str, real: str, project: Project) -> str:
        """A stable pseudonym: the same name gets the same pseudonym in every export."""
        if not self.pseudonymize or not real:
            return real
        key = f"{settings.SECRET_KEY}:{project.slug}:{kind}".encode()
        digest = hmac.new(key, real.encode(), hashlib.sha256).hexdigest()[:10]
        pseudonym = f"{kind}-{digest}"
        self.pseudonyms[(kind, real)] = pseudonym
        return pseudonym

    def key_rows(self) -> Iterator[list[str]]:
        yield ["pseudonym", "kind", "name"]
        for (kind, real), pseudonym in sorted(self.pseudonyms.items(), key=lambda i: i[1]):
            yield [pseudonym, kind, real]


def code_paths(version_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """code id -> (key, path of names joined with ' > ') for the given versions."""
    codes = {
        c["id"]: c
        for c in Code.objects.filter(version_id__in=set(version_ids)).values(
            "id", "key", "name", "parent_id"
        )
    }
    out: dict[int, tuple[str, str]] = {}
    for code_id, code in codes.items():
        names, node, seen = [], code, set()
        while node is not None and node["id"] not in seen:
            seen.add(node["id"])
            names.append(node["name"])
            node = codes.get(node["parent_id"])
        out[code_id] = (code["key"], " > ".join(reversed(names)))
    return out


def _unit_rows(project: Project, unit_ids: Iterable[int]) -> dict[int, dict]:
    rows = Unit.objects.filter(pk__in=set(unit_ids)).values(
        "id",
        "post_id",
        thread_external_id=F("thread__external_id"),
        post_external_id=F("post__external_id"),
        source_name=F("thread__source__name"),
        thread_url=F("thread__url"),
        thread_title=F("thread__title"),
        category=F("thread__category"),
        thread_created_at=F("thread__created_at"),
        post_created_at=F("post__created_at"),
        round_name=F("round__name"),
    )
    return {r["id"]: r for r in rows}


def _codings_in_chunks(project: Project, options: ExportOptions) -> Iterator[list[dict]]:
    base = Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
    if options.gold_only:
        base = base.filter(unit__gold__isnull=False, unit__gold__is_open=False)
    last = 0
    while True:
        chunk = list(
            base.filter(pk__gt=last)
            .order_by("pk")
            .values(
                "id",
                "unit_id",
                "codebook_version_id",
                "not_relevant",
                "unsure",
                "memo",
                "submitted_at",
                "updated_at",
                coder_name=F("coder__username"),
                version_number=F("codebook_version__number"),
            )[:CHUNK]
        )
        if not chunk:
            return
        last = chunk[-1]["id"]
        yield chunk


def _submitted(project: Project, options: ExportOptions):
    codings = Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
    if options.gold_only:
        codings = codings.filter(unit__gold__isnull=False, unit__gold__is_open=False)
    return codings


def long_rows(project: Project, options: ExportOptions) -> Iterator[list]:
    """One row per (unit, coder, code); a coding without codes gives one empty-code row.

    "Not relevant" is written as the code ``__not_relevant__``, since agreement treats
    it as a code of its own. Three queries stream codings, their code applications and
    their quotes, all ordered by coding, and are merged here: memory stays flat.
    """
    yield list(LONG_COLUMNS)
    codings = _submitted(project, options)
    versions = codings.order_by().values_list("codebook_version_id", flat=True).distinct()
    paths = code_paths(set(versions))
    coding_rows = (
        codings.order_by("pk")
        .values_list(
            "pk",
            "unit_id",
            "coder__username",
            "not_relevant",
            "unsure",
            "memo",
            "submitted_at",
            "updated_at",
            "codebook_version__number",
            "unit__thread__source__name",
            "unit__thread__external_id",
            "unit__post_id",
            "unit__post__external_id",
            "unit__thread__url",
            "unit__thread__category",
            "unit__post__created_at",
            "unit__thread__created_at",
            "unit__round__name",
        )
        .iterator(chunk_size=CHUNK)
    )
    app_rows = (
        CodeApplication.objects.filter(coding__in=codings)
        .order_by("coding_id", "pk")
        .values_list("coding_id", "pk", "code_id")
        .iterator(chunk_size=CHUNK)
    )
    quote_rows = (
        Quote.objects.filter(application__coding__in=codings)
        .order_by("application__coding_id", "application_id", "post_id", "start")
        .values_list(
            "application__coding_id", "application_id", "post__external_id", "start", "end", "text"
        )
        .iterator(chunk_size=CHUNK)
    )
    next_app = next(app_rows, None)
    next_quote = next(quote_rows, None)
    for (
        coding_id, unit_id, coder_name, not_relevant, unsure, memo, submitted_at, updated_at,
        version_number, source, thread_id, post_pk, post_id, url, category, post_created,
        thread_created, round_name,
    ) in coding_rows:  # fmt: skip
        apps = []
        while next_app is not None and next_app[0] <= coding_id:
            if next_app[0] == coding_id:
                apps.append((next_app[1], next_app[2]))
            next_app = next(app_rows, None)
        quotes: dict[int, list[dict]] = {}
        while next_quote is not None and next_quote[0] <= coding_id:
            if next_quote[0] == coding_id:
                _, app_id, post_external, start, end, text = next_quote
                entry = {"post_id": post_external, "start": start, "end": end}
                if not options.no_text:
                    entry["text"] = text
                quotes.setdefault(app_id, []).append(entry)
            next_quote = next(quote_rows, None)
        head = [unit_id, options.name("coder", coder_name, project)]
        cells = [
            source, thread_id, post_id if post_pk else "", url, category,
            _iso(post_created or thread_created),
        ]  # fmt: skip
        tail = [version_number, round_name, int(not_relevant), int(unsure)]
        end = ["" if options.no_text else memo, _iso(submitted_at or updated_at)]
        entries = sorted(
            ((paths[code_id], quotes.get(app_id)) for app_id, code_id in apps),
            key=lambda item: item[0][1],
        )
        if not_relevant:
            entries.insert(0, ((NOT_RELEVANT_CODE, "Not relevant"), None))
        if not entries:
            entries = [(("", ""), None)]
        for (key, path), quote_list in entries:
            quoted = json.dumps(quote_list, ensure_ascii=False) if quote_list else ""
            yield [*head, key, *cells, path, *tail, quoted, *end]


def wide_rows(project: Project, options: ExportOptions) -> Iterator[list]:
    """One row per unit; per coder (and gold) one 0/1 column per codable code.

    A cell is empty when that coder did not code the unit.
    """
    version = project.codebook_version
    version_ids = set(
        Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
        .order_by()
        .values_list("codebook_version_id", flat=True)
        .distinct()
    )
    if version:
        version_ids.add(version.pk)
    paths = code_paths(version_ids)
    keys = sorted({key for key, _ in paths.values()})
    coders = sorted(
        Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
        .order_by()
        .values_list("coder__username", flat=True)
        .distinct()
    )
    blocks = [] if options.gold_only else [options.name("coder", c, project) for c in coders]
    has_gold = GoldLabel.objects.filter(unit__project=project, is_open=False).exists()
    if has_gold:
        blocks.append("gold")
    all_keys = [NOT_RELEVANT_CODE, *keys]
    yield ["unit", "source", "thread_id", "post_id", "category", "created_at"] + [
        f"{block}:{key}" for block in blocks for key in all_keys
    ]
    per_unit: dict[int, dict[str, set[str]]] = defaultdict(dict)
    for chunk in _codings_in_chunks(project, options):
        apps = defaultdict(set)
        for coding_id, code_id in CodeApplication.objects.filter(
            coding_id__in=[c["id"] for c in chunk]
        ).values_list("coding_id", "code_id"):
            apps[coding_id].add(paths[code_id][0])
        for c in chunk:
            codes = set(apps[c["id"]])
            if c["not_relevant"]:
                codes.add(NOT_RELEVANT_CODE)
            per_unit[c["unit_id"]][options.name("coder", c["coder_name"], project)] = codes
    if has_gold:
        gold_codes = defaultdict(set)
        gold = GoldLabel.objects.filter(unit__project=project, is_open=False)
        for unit_id, code_id in gold.values_list("unit_id", "codes"):
            gold_codes[unit_id]
            if code_id:
                gold_codes[unit_id].add(code_id)
        extra = set().union(*gold_codes.values()) - set(paths)
        if extra:
            versions = Code.objects.filter(pk__in=extra).values_list("version_id", flat=True)
            paths.update(code_paths(versions))
        for unit_id, not_relevant in gold.values_list("unit_id", "not_relevant"):
            codes = {paths[c][0] for c in gold_codes[unit_id]}
            if not_relevant:
                codes.add(NOT_RELEVANT_CODE)
            per_unit[unit_id]["gold"] = codes
    unit_ids = sorted(per_unit)
    for start in range(0, len(unit_ids), CHUNK):
        ids = unit_ids[start : start + CHUNK]
        units = _unit_rows(project, ids)
        for unit_id in ids:
            unit = units[unit_id]
            row = [
                unit_id,
                unit["source_name"],
                unit["thread_external_id"],
                unit["post_external_id"] if unit["post_id"] else "",
                unit["category"],
                _iso(unit["post_created_at"] or unit["thread_created_at"]),
            ]
            for block in blocks:
                codes = per_unit[unit_id].get(block)
                row.extend("" if codes is None else int(key in codes) for key in all_keys)
            yield row


GOLD_COLUMNS = [
    "unit", "source", "thread_id", "post_id", "code", "code_path", "not_relevant", "rule",
    "rationale", "adjudicator", "decided_at",
]  # fmt: skip


def gold_rows(project: Project, options: ExportOptions) -> Iterator[list]:
    """The adjudicated labels: one row per (unit, code), one empty-code row if none."""
    yield list(GOLD_COLUMNS)
    labels = list(
        GoldLabel.objects.filter(unit__project=project, is_open=False)
        .order_by("unit_id")
        .values(
            "id",
            "unit_id",
            "not_relevant",
            "rule",
            "rationale",
            "decided_at",
            "codebook_version_id",
            adjudicator=F("decided_by__username"),
        )
    )
    codes = defaultdict(list)
    for gold_id, code_id in GoldLabel.codes.through.objects.filter(
        goldlabel_id__in=[g["id"] for g in labels]
    ).values_list("goldlabel_id", "code_id"):
        codes[gold_id].append(code_id)
    paths = code_paths({g["codebook_version_id"] for g in labels})
    for start in range(0, len(labels), CHUNK):
        chunk = labels[start : start + CHUNK]
        units = _unit_rows(project, (g["unit_id"] for g in chunk))
        for g in chunk:
            unit = units[g["unit_id"]]
            entries = sorted((paths[c] for c in codes[g["id"]]), key=lambda p: p[1])
            if g["not_relevant"]:
                entries.insert(0, (NOT_RELEVANT_CODE, "Not relevant"))
            for key, path in entries or [("", "")]:
                yield [
                    g["unit_id"],
                    unit["source_name"],
                    unit["thread_external_id"],
                    unit["post_external_id"] if unit["post_id"] else "",
                    key,
                    path,
                    int(g["not_relevant"]),
                    g["rule"],
                    "" if options.no_text else g["rationale"],
                    options.name("coder", g["adjudicator"], project),
                    _iso(g["decided_at"]),
                ]


CORPUS_COLUMNS = [
    "unit", "source", "thread_id", "thread_title", "thread_url", "category",
    "thread_created_at", "post_id", "post_number", "author", "post_created_at",
    "is_accepted_answer", "deleted_upstream", "text",
]  # fmt: skip


def corpus_rows(project: Project, options: ExportOptions) -> Iterator[list]:
    """The threads and posts of the project's sample, one row per post, in order."""
    columns = [c for c in CORPUS_COLUMNS if not (options.no_text and c == "text")]
    yield columns
    units = Unit.objects.filter(project=project)
    if options.gold_only:
        units = units.filter(gold__isnull=False, gold__is_open=False)
    unit_list = list(units.order_by("pk").values("id", "thread_id", "post_id"))
    for start in range(0, len(unit_list), CHUNK // 10 or 1):
        chunk = unit_list[start : start + (CHUNK // 10 or 1)]
        by_thread = defaultdict(list)
        for u in chunk:
            by_thread[u["thread_id"]].append(u)
        posts = Post.objects.filter(thread_id__in=by_thread).order_by("thread_id", "post_number")
        fields = [
            "id", "thread_id", "external_id", "post_number", "author", "created_at",
            "is_accepted_answer", "deleted_upstream",
        ]  # fmt: skip
        if not options.no_text:
            fields.append("plain_text")
        thread_rows = _unit_rows(project, (u["id"] for u in chunk))
        for post in posts.values(*fields):
            for u in by_thread[post["thread_id"]]:
                if u["post_id"] and u["post_id"] != post["id"]:
                    continue
                t = thread_rows[u["id"]]
                row = {
                    "unit": u["id"],
                    "source": t["source_name"],
                    "thread_id": t["thread_external_id"],
                    "thread_title": t["thread_title"],
                    "thread_url": t["thread_url"],
                    "category": t["category"],
                    "thread_created_at": _iso(t["thread_created_at"]),
                    "post_id": post["external_id"],
                    "post_number": post["post_number"],
                    "author": options.name("user", post["author"], project),
                    "post_created_at": _iso(post["created_at"]),
                    "is_accepted_answer": int(post["is_accepted_answer"]),
                    "deleted_upstream": int(post["deleted_upstream"]),
                    "text": post.get("plain_text", ""),
                }
                yield [row[c] for c in columns]


ROW_SOURCES = {
    "long": long_rows,
    "wide": wide_rows,
    "gold": gold_rows,
    "corpus": corpus_rows,
}


def csv_lines(
    rows: Iterable[list], options: ExportOptions, excel: bool = False, block: int = 1 << 16
) -> Iterator[str]:
    """Encode rows as CSV, yielded in blocks of about ``block`` characters (whole lines).

    Free-text cells are guarded unless options.guard is off. CRLF line ends (RFC 4180)
    also make the writer quote any cell holding a lone CR.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    iterator = iter(rows)
    header = next(iterator)
    positions = [i for i, name in enumerate(header) if name in TEXT_COLUMNS]
    if excel:
        buffer.write("\ufeff")
    # The wide layout's headers hold coder names (CODER:CODE), which may start with @ + -.
    writer.writerow([guard_cell(h) for h in header] if options.guard else header)
    for row in iterator:
        if options.guard:
            for i in positions:
                if needs_guard(row[i]):
                    row[i] = "'" + row[i]
        writer.writerow(row)
        if buffer.tell() >= block:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


AGREEMENT_COLUMNS = [
    "level", "figure", "code", "coder_a", "coder_b", "value", "ci_low", "ci_high", "n",
]  # fmt: skip


def agreement_rows(project: Project, options: ExportOptions) -> Iterator[list]:
    """The figures of the agreement page (coded and category level) as one table."""
    from .agreement import agreement_report, to_json_ready
    from .codings import CATEGORY_DEPTH, long_table

    yield list(AGREEMENT_COLUMNS)
    for level, depth in (("code", None), ("category", CATEGORY_DEPTH)):
        table = long_table(project, depth=depth)
        if table.empty:
            continue
        report = to_json_ready(agreement_report(table, mode="multi"))
        n_units = report.get("n_units")
        intervals = {
            "krippendorff_alpha": report.get("alpha_ci95"),
            "masi_alpha": report.get("masi_alpha_ci95"),
        }
        for figure in ("krippendorff_alpha", "masi_alpha", "percent_agreement", "fleiss_kappa"):
            interval = intervals.get(figure) or ["", ""]
            yield [level, figure, "", "", "", _blank(report.get(figure)), *interval, n_units]
        for pair in report.get("cohen_kappa") or []:
            coder_a = options.name("coder", pair["coder_a"], project)
            coder_b = options.name("coder", pair["coder_b"], project)
            yield [level, "cohen_kappa", "", coder_a, coder_b, _blank(pair["kappa"]), "", "",
                   pair["n"]]  # fmt: skip
        for code, figures in (report.get("per_code") or {}).items():
            interval = figures.get("alpha_ci95") or ["", ""]
            n = figures.get("n_units")
            yield [level, "alpha", code, "", "", _blank(figures.get("alpha")), *interval, n]
            for name in ("kappa", "percent_agreement", "prevalence"):
                yield [level, name, code, "", "", _blank(figures.get(name)), "", "", n]


def _blank(value) -> object:
    return "" if value is None else value


ROW_SOURCES["agreement"] = agreement_rows
