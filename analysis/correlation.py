"""Spearman correlation between two count tables, as people keep them.

A count table gives, per name (a model type, a code, a tag) and period (a month, a
quarter, a year), a count. Two layouts are read:

- wide: the first column is the name (its header may be empty), every other column a
  period such as ``2021-03`` or ``2021-03-01``;
- long: three columns ``name,period,count`` (``model_type``/``type``/``code`` and
  ``month``/``date``, ``value``/``n`` are accepted too).

Columns that are not periods (``sum``, ``cumulative sum``, ratios) and rows without a name
or named like a total (``SUM``, ``Total``) are left out and reported; empty cells count as 0.
Everything here is plain data in, plain data out; the ``correlate`` command and the trends
page are thin shells around it.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

PERIOD_RE = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:-(?P<month>\d{1,2})(?:-(?P<day>\d{1,2})(?:[T ]00:00(?::00(?:\.0+)?)?Z?)?)?"
    r"|-?[Qq](?P<quarter>[1-4]))?$"
)
TOTAL_NAMES = {"sum", "total", "totals", "all", "grand total", "overall"}
MISSING_NAMES = {"", "nan", "none", "null", "<na>"}
LONG_NAME_HEADERS = {"name", "model_type", "type", "model type", "code", "term", "category"}
LONG_PERIOD_HEADERS = {"period", "month", "date", "month_year", "year", "quarter"}
LONG_COUNT_HEADERS = {"count", "value", "n", "mentions", "models", "frequency"}


class TableError(ValueError):
    """A table that cannot be read; the message names the file, line and field."""


def normalize_period(text: str) -> str | None:
    """``2021-03``, ``2021-3`` and ``2021-03-01`` are one month; ``None`` if not a period.

    Days other than the first are kept as days; quarters read ``2021-Q1``.
    """
    match = PERIOD_RE.match(text.strip())
    if not match:
        return None
    year = match["year"]
    if match["quarter"]:
        return f"{year}-Q{match['quarter']}"
    if not match["month"]:
        return year
    month = int(match["month"])
    if not 1 <= month <= 12:
        return None
    if match["day"] and int(match["day"]) != 1:
        day = int(match["day"])
        if not 1 <= day <= 31:
            return None
        return f"{year}-{month:02d}-{day:02d}"
    return f"{year}-{month:02d}"


@dataclass
class CountTable:
    """Counts per name and period, with what was left out while reading."""

    label: str
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    periods: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    ignored_rows: list[str] = field(default_factory=list)
    layout: str = "wide"

    def total(self, name: str, periods: Iterable[str] | None = None) -> float:
        row = self.counts[name]
        if periods is None:
            return sum(row.values())
        return sum(row.get(p, 0.0) for p in periods)

    def series(self, name: str, periods: Iterable[str]) -> list[float]:
        row = self.counts[name]
        return [row.get(p, 0.0) for p in periods]


def _number(text: str, where: str) -> float:
    text = text.strip()
    if text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise TableError(f"{where}: {text!r} is not a number") from None
    if math.isnan(value):
        return 0.0
    if math.isinf(value) or value < 0:
        raise TableError(f"{where}: {text!r} is not a count")
    return value


def _name_kind(name: str) -> str:
    lowered = name.strip().lower()
    if lowered in MISSING_NAMES:
        return "missing"
    if lowered in TOTAL_NAMES:
        return "total"
    return "name"


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", "\t", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def read_table_text(text: str, label: str) -> CountTable:
    """Read a wide or long count table from CSV text; ``label`` names it in messages."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise TableError(f"{label}: the file is empty or has no header line")
    reader = csv.reader(io.StringIO(text), delimiter=_sniff_delimiter(lines[0]))
    rows = list(reader)
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    has_period_columns = any(normalize_period(h) for h in header[1:])
    if not has_period_columns and (
        any(h in LONG_NAME_HEADERS for h in lowered)
        and any(h in LONG_PERIOD_HEADERS for h in lowered)
        and any(h in LONG_COUNT_HEADERS for h in lowered)
    ):
        return _read_long(rows, lowered, label)
    if not has_period_columns:
        raise TableError(
            f"{label}, line 1: no period columns (such as 2021-03 or 2021-03-01) and no "
            "name,period,count header"
        )
    return _read_wide(rows, header, label)


def _read_wide(rows: list[list[str]], header: list[str], label: str) -> CountTable:
    table = CountTable(label=label, layout="wide")
    columns: list[tuple[int, str]] = []
    seen: dict[str, str] = {}
    for index, heading in enumerate(header[1:], start=1):
        period = normalize_period(heading)
        if period is None:
            table.ignored_columns.append(heading or f"(column {index + 1}, no header)")
            continue
        if period in seen:
            raise TableError(
                f"{label}, line 1: columns {seen[period]!r} and {heading!r} are the same period"
            )
        seen[period] = heading
        columns.append((index, period))
    table.periods = sorted(seen)
    first_line: dict[str, int] = {}
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        name = row[0].strip() if row else ""
        kind = _name_kind(name)
        if kind != "name":
            what = "no name" if kind == "missing" else f"total row {name!r}"
            table.ignored_rows.append(f"line {line_number}: {what}")
            continue
        if name in first_line:
            raise TableError(
                f"{label}, line {line_number}: name {name!r} already on line {first_line[name]}"
            )
        first_line[name] = line_number
        counts: dict[str, float] = {}
        for index, period in columns:
            cell = row[index] if index < len(row) else ""
            where = f"{label}, line {line_number}, column {header[index]!r}"
            value = _number(cell, where)
            if value:
                counts[period] = value
        table.counts[name] = counts
    return table


def _column(lowered: list[str], names: set[str]) -> int:
    return next(i for i, h in enumerate(lowered) if h in names)


def _read_long(rows: list[list[str]], lowered: list[str], label: str) -> CountTable:
    table = CountTable(label=label, layout="long")
    name_i = _column(lowered, LONG_NAME_HEADERS)
    period_i = _column(lowered, LONG_PERIOD_HEADERS)
    count_i = _column(lowered, LONG_COUNT_HEADERS)
    used = {name_i, period_i, count_i}
    table.ignored_columns = [rows[0][i].strip() for i in range(len(lowered)) if i not in used]
    periods: set[str] = set()
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [*row, *[""] * (len(lowered) - len(row))]
        name = cells[name_i].strip()
        kind = _name_kind(name)
        if kind != "name":
            what = "no name" if kind == "missing" else f"total row {name!r}"
            table.ignored_rows.append(f"line {line_number}: {what}")
            continue
        raw_period = cells[period_i].strip()
        period = normalize_period(raw_period)
        if period is None:
            raise TableError(
                f"{label}, line {line_number}, column {rows[0][period_i].strip()!r}: "
                f"{raw_period!r} is not a period (such as 2021-03)"
            )
        where = f"{label}, line {line_number}, column {rows[0][count_i].strip()!r}"
        value = _number(cells[count_i], where)
        periods.add(period)
        row_counts = table.counts.setdefault(name, {})
        # Rows repeating a name and period add up: a long table may list events.
        row_counts[period] = row_counts.get(period, 0.0) + value
    table.periods = sorted(periods)
    return table


def read_table(path: str | Path) -> CountTable:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise TableError(f"{path}: cannot be read ({exc.strerror})") from None
    return read_table_text(text, str(path))


@dataclass
class Rho:
    """One Spearman coefficient with its sample size and two-sided p-value."""

    n: int
    rho: float | None
    p: float | None
    note: str = ""

    @property
    def rho_text(self) -> str:
        return "undefined" if self.rho is None else f"{self.rho:.3f}"

    @property
    def p_text(self) -> str:
        return format_p(self.p)


def format_p(p: float | None) -> str:
    """A p-value as people read it: three decimals, or scientific below 0.001."""
    if p is None:
        return "–"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def spearman(x: list[float], y: list[float]) -> Rho:
    """Spearman's rho; ``None`` (with a note) where it is undefined."""
    n = len(x)
    if n < 3:
        return Rho(n, None, None, "fewer than 3 pairs")
    if len(set(x)) < 2 or len(set(y)) < 2:
        return Rho(n, None, None, "a constant series")
    result = stats.spearmanr(x, y)
    return Rho(n, float(result.statistic), float(result.pvalue))


@dataclass
class Comparison:
    a: CountTable
    b: CountTable
    matched_window: bool
    shared_names: list[str]
    only_a: list[str]
    only_b: list[str]
    shared_periods: list[str]
    across: Rho
    totals: dict[str, tuple[float, float]]
    over_time: dict[str, Rho]


def compare(a: CountTable, b: CountTable, *, matched_window: bool = False) -> Comparison:
    """Rho over time per shared name, and rho across names of their totals.

    Names match case-insensitively (spelled as in table A). Over time uses the periods
    both tables have; totals use each table's own periods unless ``matched_window``.
    """
    b_by_key = {name.casefold(): name for name in b.counts}
    a_keys = {name.casefold() for name in a.counts}
    shared = [name for name in a.counts if name.casefold() in b_by_key]
    shared.sort(key=str.casefold)
    only_a = sorted((n for n in a.counts if n.casefold() not in b_by_key), key=str.casefold)
    only_b = sorted((n for n in b.counts if n.casefold() not in a_keys), key=str.casefold)
    shared_periods = sorted(set(a.periods) & set(b.periods))
    window_a = shared_periods if matched_window else None
    window_b = shared_periods if matched_window else None
    totals = {
        name: (a.total(name, window_a), b.total(b_by_key[name.casefold()], window_b))
        for name in shared
    }
    across = spearman([t[0] for t in totals.values()], [t[1] for t in totals.values()])
    over_time = {
        name: spearman(
            a.series(name, shared_periods),
            b.series(b_by_key[name.casefold()], shared_periods),
        )
        for name in shared
    }
    return Comparison(
        a=a,
        b=b,
        matched_window=matched_window,
        shared_names=shared,
        only_a=only_a,
        only_b=only_b,
        shared_periods=shared_periods,
        across=across,
        totals=totals,
        over_time=over_time,
    )


def format_rho(r: Rho) -> str:
    if r.rho is None:
        return f"n={r.n} rho=undefined ({r.note})"
    return f"n={r.n} rho={r.rho:.4f} p={r.p:.3g}"


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def report_lines(c: Comparison) -> list[str]:
    """The comparison as the lines ``correlate`` prints."""
    lines: list[str] = []
    for table in (c.a, c.b):
        lines.append(
            f"{table.label}: {table.layout} table, {len(table.counts)} names, "
            f"{len(table.periods)} periods"
            + (f" ({table.periods[0]} to {table.periods[-1]})" if table.periods else "")
        )
        if table.ignored_columns:
            lines.append("  ignored columns: " + ", ".join(table.ignored_columns))
        if table.ignored_rows:
            lines.append("  ignored rows: " + "; ".join(table.ignored_rows))
    span = f"{c.shared_periods[0]} to {c.shared_periods[-1]}" if c.shared_periods else "none"
    lines.append(f"shared periods: {len(c.shared_periods)} ({span})")
    window = "shared periods" if c.matched_window else "each table's own periods"
    lines.append(f"across names (totals over {window}): {format_rho(c.across)}")
    lines.append("over time, per name:")
    width = max((len(n) for n in c.shared_names), default=4)
    for name in c.shared_names:
        total_a, total_b = c.totals[name]
        lines.append(
            f"  {name:<{width}}  {format_rho(c.over_time[name])}  "
            f"totals {_number_text(total_a)} / {_number_text(total_b)}"
        )
    lines.append(f"only in {c.a.label}: " + (", ".join(c.only_a) or "none"))
    lines.append(f"only in {c.b.label}: " + (", ".join(c.only_b) or "none"))
    return lines


def report_rows(c: Comparison) -> list[dict[str, object]]:
    """The comparison as rows for a CSV: one across names, one per shared name."""

    def row(scope: str, name: str, r: Rho, total_a: object = "", total_b: object = "") -> dict:
        return {
            "scope": scope,
            "name": name,
            "n": r.n,
            "rho": "" if r.rho is None else repr(r.rho),
            "p": "" if r.p is None else repr(r.p),
            "note": r.note,
            "total_a": total_a,
            "total_b": total_b,
        }

    window = "matched window" if c.matched_window else "own windows"
    rows = [row(f"across names ({window})", "", c.across)]
    for name in c.shared_names:
        total_a, total_b = c.totals[name]
        rows.append(
            row(
                "over time",
                name,
                c.over_time[name],
                _number_text(total_a),
                _number_text(total_b),
            )
        )
    return rows


REPORT_FIELDS = ["scope", "name", "n", "rho", "p", "note", "total_a", "total_b"]
