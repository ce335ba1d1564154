"""Report tables: code frequencies, trends over time, co-occurrence and term mentions.

Every table is computed on a *basis*, stated beside it:

- ``gold`` (the default): the gold label of each unit that has one and is not re-opened;
  units without a gold label are left out and counted in the statement;
- ``coder:NAME``: that coder's submitted codings; units they did not submit are left out;
- ``all``: every coder's submitted codings, each counted as its own observation (a unit
  coded by three coders counts three times).

Only submitted codings count, never drafts. Observations marked "not relevant" are left out
of the tables and counted in the statement. An observation is dated by its unit's forum
date in UTC (the post's for post units, the thread's otherwise).

A code's *units* are the observations where it, or any code below it, applies: a unit
counts once for a parent category even when several of its subcodes apply. A code's
*applications* are the codes applied at or below it. Shares of units divide by the
observations on the basis; shares of applications by all applications on the basis.

The statistics are pure functions over plain DataFrames (tested without a database); the
readers at the end aggregate in SQL and hand these functions the same shapes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date

import numpy as np
import pandas as pd
from scipy import sparse, stats

PERIODS = ("month", "quarter", "year")
LEVELS = ("codes", "categories")
TREND_ALPHA = 0.05


class ReportError(ValueError):
    """Input a report cannot use; the message says what is wrong."""


# --- Basis ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Basis:
    kind: str  # "gold", "coder" or "all"
    coder: str = ""

    def __str__(self) -> str:
        return f"coder:{self.coder}" if self.kind == "coder" else self.kind


def parse_basis(text: str) -> Basis:
    """``gold``, ``all`` or ``coder:NAME``."""
    text = (text or "gold").strip()
    if text in ("gold", "all"):
        return Basis(text)
    if text.startswith("coder:") and text[6:].strip():
        return Basis("coder", text[6:].strip())
    raise ReportError(f"basis {text!r} is not one of: gold, coder:NAME, all")


@dataclass
class BasisStatement:
    """How many units the basis covers and what it left out, as one sentence."""

    basis: Basis
    units_total: int
    units_covered: int
    observations: int
    not_relevant: int = 0
    open_gold: int = 0
    coders: int = 0

    def __str__(self) -> str:
        missing = self.units_total - self.units_covered
        if self.basis.kind == "gold":
            text = (
                f"gold labels for {self.units_covered} of {self.units_total} units; "
                f"units without a gold label (left out): {missing}"
            )
            if self.open_gold:
                text += f", of which re-opened: {self.open_gold}"
            text += "; coder codings elsewhere: none"
        elif self.basis.kind == "coder":
            text = (
                f"{self.basis.coder}'s submitted codings for {self.units_covered} of "
                f"{self.units_total} units; units without one (left out): {missing}"
            )
        else:
            text = (
                f"all coders' submitted codings: {self.observations} codings by "
                f"{self.coders} coders of {self.units_covered} of {self.units_total} units, "
                f"each coding counted; units without a submitted coding (left out): {missing}"
            )
        if self.not_relevant:
            text += f"; marked not relevant (left out): {self.not_relevant}"
        return text


# --- Code tree ------------------------------------------------------------------------


@dataclass
class CodeTree:
    """The codes of a codebook version in tree order, with their ancestors."""

    frame: pd.DataFrame  # index: key; columns: label, parent, color, depth, order

    def __post_init__(self) -> None:
        self._parents = dict(zip(self.frame.index, self.frame["parent"], strict=True))
        self.depths = dict(zip(self.frame.index, self.frame["depth"], strict=True))

    @classmethod
    def from_rows(cls, rows: Iterable[dict]) -> CodeTree:
        """Rows with ``key``, ``label``, ``parent`` (a key or empty), ``color``, ``order``."""
        rows = list(rows)
        by_key = {row["key"]: row for row in rows}
        children: dict[str, list[dict]] = {}
        for row in rows:
            parent = row.get("parent") or ""
            if parent and parent not in by_key:
                parent = ""
            children.setdefault(parent, []).append(row)
        ordered: list[dict] = []

        def walk(parent: str, depth: int, color: str) -> None:
            kids = sorted(children.get(parent, []), key=lambda r: (r.get("order", 0), r["key"]))
            for row in kids:
                own = row.get("color") or color
                ordered.append(
                    {
                        "key": row["key"],
                        "label": row.get("label") or row["key"],
                        "parent": parent,
                        "color": own,
                        "depth": depth,
                    }
                )
                walk(row["key"], depth + 1, own)

        walk("", 0, "")
        frame = pd.DataFrame(ordered, columns=["key", "label", "parent", "color", "depth"])
        frame["order"] = range(len(frame))
        frame["is_leaf"] = ~frame["key"].isin(set(frame["parent"]))
        return cls(frame.set_index("key"))

    def keys(self) -> list[str]:
        return list(self.frame.index)

    def ancestors(self, key: str) -> list[str]:
        """The key itself, then its parent, up to its root."""
        chain = []
        while key:
            chain.append(key)
            key = self._parents[key]
        return chain

    def subtree(self, key: str) -> list[str]:
        return [k for k in self.keys() if key in self.ancestors(k)]

    def level_keys(self, level: str) -> list[str]:
        """``codes``: the leaves (the codes coders apply); ``categories``: the first level
        below the top groups, where a top-level code without subcodes is its own category."""
        if level not in LEVELS:
            raise ReportError(f"level {level!r} is not one of: {', '.join(LEVELS)}")
        frame = self.frame
        if level == "codes":
            return list(frame.index[frame["is_leaf"]])
        chosen = (frame["depth"] == 1) | ((frame["depth"] == 0) & frame["is_leaf"])
        return list(frame.index[chosen])

    def with_extra(self, keys: Iterable[str], labels: dict[str, str]) -> CodeTree:
        """The tree plus applied codes it does not know (from other versions), as roots."""
        extra = [k for k in keys if k not in self.frame.index]
        if not extra:
            return self
        rows = [
            {"key": k, "label": r.label, "parent": r.parent, "color": r.color, "order": r.order}
            for k, r in self.frame.iterrows()
        ]
        start = len(rows)
        rows += [
            {"key": k, "label": labels.get(k, k), "parent": "", "color": "", "order": start + n}
            for n, k in enumerate(sorted(extra))
        ]
        return CodeTree.from_rows(rows)


# --- Periods --------------------------------------------------------------------------


def period_of_month(month: str, by: str) -> str:
    """``2021-05`` as a month, quarter (``2021-Q2``) or year (``2021``)."""
    if by == "month":
        return month
    year, mon = month[:4], int(month[5:7])
    if by == "quarter":
        return f"{year}-Q{(mon - 1) // 3 + 1}"
    if by == "year":
        return year
    raise ReportError(f"period {by!r} is not one of: {', '.join(PERIODS)}")


def period_range(first_month: str, last_month: str, by: str) -> list[str]:
    """Every period from the one holding ``first_month`` to the one holding ``last_month``."""
    start = date(int(first_month[:4]), int(first_month[5:7]), 1)
    end = date(int(last_month[:4]), int(last_month[5:7]), 1)
    periods: list[str] = []
    current = start
    while current <= end:
        period = period_of_month(f"{current:%Y-%m}", by)
        if not periods or periods[-1] != period:
            periods.append(period)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return periods


def month_of(moment) -> str:
    """The UTC month (``YYYY-MM``) of a timestamp."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return f"{stamp.year:04d}-{stamp.month:02d}"


# --- Counts: the shape both the pure path and the SQL readers produce ------------------


@dataclass
class Counts:
    """Per code and month: observations where the code applies (at or below it) and
    applications at or below it; per month: observations on the basis.

    ``month`` is ``YYYY-MM``, or empty everywhere when the counts were read without dates.
    """

    nodes: pd.DataFrame  # columns: code, month, units, applications
    totals: pd.Series  # index: month; observations
    tree: CodeTree

    @property
    def observations(self) -> int:
        return int(self.totals.sum())

    @property
    def total_applications(self) -> int:
        """Every code applied, once: the applications under the roots."""
        roots = self.nodes["code"].map(self.tree.depths) == 0
        return int(self.nodes.loc[roots, "applications"].sum())


NODE_COLUMNS = ["code", "month", "units", "applications"]


def counts_from_long(
    applications: pd.DataFrame, observations: pd.DataFrame, tree: CodeTree
) -> Counts:
    """Counts from plain tables.

    ``applications``: one row per code applied, columns ``obs`` and ``code``;
    ``observations``: one row per observation on the basis, columns ``obs`` and ``month``
    (``YYYY-MM``). Applications of observations not listed are ignored.
    """
    obs = observations[["obs", "month"]].drop_duplicates("obs")
    totals = obs.groupby("month").size().rename("count")
    apps = applications[["obs", "code"]].drop_duplicates().merge(obs, on="obs")
    tree = tree.with_extra(apps["code"].unique(), {})
    expanded = apps.assign(node=apps["code"].map(tree.ancestors)).explode("node")
    grouped = expanded.groupby(["node", "month"])
    nodes = pd.DataFrame(
        {"units": grouped["obs"].nunique(), "applications": grouped.size()}
    ).reset_index()
    return Counts(nodes.rename(columns={"node": "code"})[NODE_COLUMNS], totals, tree)


def ancestor_pairs(id_keys: dict[int, str], tree: CodeTree) -> list[tuple[int, str]]:
    """(code id, code key) for every code id and each code at or above it in the tree.

    Codes whose key the tree does not know map to themselves."""
    pairs = []
    for code_id, key in id_keys.items():
        chain = tree.ancestors(key) if key in tree.frame.index else [key]
        pairs.extend((code_id, node) for node in chain)
    return pairs


# --- Frequency ------------------------------------------------------------------------


def frequency(counts: Counts, codes: Iterable[str] | None = None) -> pd.DataFrame:
    """Per code (every level): units, share of units, applications, share of applications.

    Rows follow the codebook's order; ``codes`` limits them (a code group).
    """
    tree = counts.tree
    keys = list(codes) if codes is not None else tree.keys()
    per_code = counts.nodes.groupby("code")[["units", "applications"]].sum()
    units, apps = per_code["units"], per_code["applications"]
    n_obs = counts.observations
    n_apps = counts.total_applications
    frame = tree.frame.loc[keys]
    table = pd.DataFrame(
        {
            "code": keys,
            "label": frame["label"].to_numpy(),
            "parent": frame["parent"].to_numpy(),
            "depth": frame["depth"].to_numpy(),
            "units": [int(units.get(k, 0)) for k in keys],
            "applications": [int(apps.get(k, 0)) for k in keys],
        }
    )
    table["share_of_units"] = table["units"] / n_obs if n_obs else np.nan
    table["share_of_applications"] = table["applications"] / n_apps if n_apps else np.nan
    return table[
        [
            "code",
            "label",
            "parent",
            "depth",
            "units",
            "share_of_units",
            "applications",
            "share_of_applications",
        ]
    ]


# --- Trends ---------------------------------------------------------------------------


def trend(counts: Counts, by: str = "month", codes: Iterable[str] | None = None) -> pd.DataFrame:
    """Per code and period: units where it applies, units in the period, and their ratio.

    Periods run without gaps from the first to the last month with observations; a period
    without observations has an empty share.
    """
    tree = counts.tree
    keys = list(codes) if codes is not None else tree.keys()
    columns = ["code", "label", "period", "count", "units", "share"]
    if not len(counts.totals):
        return pd.DataFrame(columns=columns)
    months = sorted(counts.totals.index)
    periods = period_range(months[0], months[-1], by)
    totals = counts.totals.groupby(lambda m: period_of_month(m, by)).sum()
    if "" in counts.totals.index:
        raise ReportError("these counts were read without dates; read them by month")
    nodes = counts.nodes.assign(period=counts.nodes["month"].map(lambda m: period_of_month(m, by)))
    per = nodes.groupby(["code", "period"])["units"].sum()
    rows = []
    for key in keys:
        label = tree.frame.at[key, "label"]
        for period in periods:
            n = int(per.get((key, period), 0))
            total = int(totals.get(period, 0))
            rows.append((key, label, period, n, total, n / total if total else np.nan))
    return pd.DataFrame(rows, columns=columns)


def trend_tests(table: pd.DataFrame, alpha: float = TREND_ALPHA) -> pd.DataFrame:
    """Mann-Kendall per code: Kendall's tau of the normalized share against time.

    Periods without observations are left out. Fewer than three periods, or a constant
    share, give no tau.
    """
    rows = []
    for key, group in table.groupby("code", sort=False):
        series = group.dropna(subset=["share"])
        values = series["share"].to_numpy(dtype=float)
        tau = p = math.nan
        if len(values) >= 3 and np.ptp(values) > 0:
            result = stats.kendalltau(np.arange(len(values)), values)
            tau, p = float(result.statistic), float(result.pvalue)
        if math.isnan(tau):
            direction = "too few periods" if len(values) < 3 else "no trend"
        elif p < alpha:
            direction = "increasing" if tau > 0 else "decreasing"
        else:
            direction = "no trend"
        rows.append((key, group["label"].iloc[0], len(values), tau, p, direction))
    return pd.DataFrame(rows, columns=["code", "label", "periods", "tau", "p_value", "direction"])


def trend_wide(table: pd.DataFrame, value: str = "count") -> pd.DataFrame:
    """Codes as rows, periods as columns: the layout ``correlate`` reads."""
    if not len(table):
        return pd.DataFrame(columns=["code", "label"])
    wide = table.pivot(index="code", columns="period", values=value)
    order = list(dict.fromkeys(table["code"]))
    labels = table.drop_duplicates("code").set_index("code")["label"]
    wide = wide.loc[order]
    wide.insert(0, "label", labels.loc[order])
    wide.columns.name = None
    return wide.reset_index()


# --- Co-occurrence ----------------------------------------------------------------------


def cooccurrence(
    applications: pd.DataFrame, tree: CodeTree, level: str = "codes", codes: Iterable | None = None
) -> pd.DataFrame:
    """Code x code: observations where both apply, and Jaccard (both / either).

    ``applications`` has one row per code applied (``obs``, ``code``); codes roll up to
    the chosen level. The diagonal holds each code's own units (Jaccard 1). Only codes that
    apply at least once are listed.
    """
    columns = ["code_a", "label_a", "code_b", "label_b", "both", "jaccard"]
    tree = tree.with_extra(applications["code"].unique(), {})
    wanted = [k for k in tree.level_keys(level) if codes is None or k in set(codes)]
    wanted_set = set(wanted)
    pairs = applications[["obs", "code"]].drop_duplicates()
    nodes = pairs.assign(node=pairs["code"].map(tree.ancestors)).explode("node")
    nodes = nodes[nodes["node"].isin(wanted_set)].drop_duplicates(["obs", "node"])
    present = [k for k in wanted if k in set(nodes["node"])]
    if not present:
        return pd.DataFrame(columns=columns)
    index = {k: i for i, k in enumerate(present)}
    obs_codes, obs_index = pd.factorize(nodes["obs"])
    matrix = sparse.csr_matrix(
        (np.ones(len(nodes)), (obs_codes, nodes["node"].map(index).to_numpy())),
        shape=(len(obs_index), len(present)),
    )
    both = (matrix.T @ matrix).toarray().astype(int)
    own = np.diag(both)
    either = own[:, None] + own[None, :] - both
    labels = tree.frame["label"]
    rows = [
        (a, labels[a], b, labels[b], int(both[i, j]), both[i, j] / either[i, j])
        for i, a in enumerate(present)
        for j, b in enumerate(present)
    ]
    return pd.DataFrame(rows, columns=columns)


# --- Mentions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    name: str
    aliases: tuple[str, ...] = ()

    def pattern(self) -> str:
        """Any of the term's spellings, case-insensitive, not inside a longer word."""
        spellings = sorted({self.name, *self.aliases}, key=lambda s: (-len(s), s))
        return r"(?<!\w)(?:" + "|".join(re.escape(s) for s in spellings) + r")(?!\w)"


def parse_terms(text: str, source: str = "terms") -> list[Term]:
    """Terms, one a line: the term, then its aliases, separated by ``|`` or commas.

    ``bert | BERT-base, roberta`` is the term ``bert`` with two aliases. Blank lines and
    lines starting with ``#`` are skipped. A line may be quoted CSV.
    """
    terms: list[Term] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells = next(csv.reader([line]))
        except csv.Error as exc:
            raise ReportError(f"{source}, line {number}: {exc}") from exc
        parts = [p.strip() for cell in cells for p in cell.split("|")]
        parts = [p for p in parts if p]
        if not parts:
            raise ReportError(f"{source}, line {number}: no term")
        name = parts[0]
        if name.lower() in seen:
            raise ReportError(
                f"{source}, line {number}: term {name!r} already given on line {seen[name.lower()]}"
            )
        seen[name.lower()] = number
        terms.append(Term(name, tuple(dict.fromkeys(p for p in parts[1:] if p != name))))
    if not terms:
        raise ReportError(f"{source}: no terms (one a line: term, then aliases)")
    return terms


def mentions(threads: pd.DataFrame, terms: list[Term], by: str = "month") -> pd.DataFrame:
    """Per term and period: threads whose text mentions it, threads in the period, share.

    ``threads`` has one row per thread: ``thread``, ``month`` (``YYYY-MM``) and ``text``.
    """
    columns = ["term", "period", "mentions", "threads", "share"]
    if not len(threads) or not terms:
        return pd.DataFrame(columns=columns)
    months = sorted(threads["month"].unique())
    periods = period_range(months[0], months[-1], by)
    frame = threads.assign(period=threads["month"].map(lambda m: period_of_month(m, by)))
    totals = frame.groupby("period").size()
    rows = []
    for term in terms:
        hit = frame["text"].str.contains(term.pattern(), flags=re.IGNORECASE, regex=True)
        per = frame[hit].groupby("period").size()
        for period in periods:
            n, total = int(per.get(period, 0)), int(totals.get(period, 0))
            rows.append((term.name, period, n, total, n / total if total else np.nan))
    return pd.DataFrame(rows, columns=columns)


# --- CSV ------------------------------------------------------------------------------


def to_csv(table: pd.DataFrame) -> str:
    """The table as CSV; shares with enough digits to recompute the counts."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6g", lineterminator="\n")
    return buffer.getvalue()


# --- Database readers ---------------------------------------------------------------------
# They aggregate in SQL (one GROUP BY per level of the code tree) and return the plain
# shapes above; nothing loops over model objects.


@dataclass
class Filters:
    """Which units a report reads: a date window (UTC, inclusive), a forum category and a
    round. ``group`` narrows the codes shown to one code and those below it."""

    since: date | None = None
    until: date | None = None
    category: str = ""
    round: str = ""
    group: str = ""


def _month_key(expression):
    from django.db.models import CharField, Func, Value

    class MonthKey(Func):
        """``YYYY-MM`` of a UTC timestamp, computed by the database."""

        output_field = CharField()

        def as_sqlite(self, compiler, connection, **extra):
            call = Func(
                Value("%Y-%m"),
                *self.get_source_expressions(),
                function="strftime",
                output_field=CharField(),
            )
            return call.as_sql(compiler, connection)

        def as_postgresql(self, compiler, connection, **extra):
            template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM')"
            return self.as_sql(compiler, connection, template=template, **extra)

    return MonthKey(expression)


def _date_field(project, unit_path: str) -> str:
    if project.unit_type == "post":
        return f"{unit_path}post__created_at"
    return f"{unit_path}thread__created_at"


def _month(project, unit_path: str):
    from django.db.models import F
    from django.db.models.functions import Coalesce

    if project.unit_type == "post":
        return _month_key(
            Coalesce(F(f"{unit_path}post__created_at"), F(f"{unit_path}thread__created_at"))
        )
    return _month_key(F(_date_field(project, unit_path)))


def _unit_filter(project, filters: Filters, unit_path: str):
    """A Q object selecting the project's units that pass the filters."""
    from datetime import datetime, time, timedelta

    from django.db.models import Q

    q = Q(**{f"{unit_path}project": project})
    when = _date_field(project, unit_path)
    if filters.since:
        q &= Q(**{f"{when}__gte": datetime.combine(filters.since, time.min, tzinfo=UTC)})
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=UTC)
        q &= Q(**{f"{when}__lt": end})
    if filters.category:
        q &= Q(**{f"{unit_path}thread__category": filters.category})
    if filters.round:
        q &= Q(**{f"{unit_path}round__name": filters.round})
    return q


def read_tree(project) -> tuple[CodeTree, dict[int, str]]:
    """The project's codebook version as a tree, and code ids of the whole codebook to keys."""
    from coding.models import Code

    version = project.codebook_version
    if version is None:
        raise ReportError(f"project {project.slug!r} has no codebook version")
    cached = getattr(project, "_report_tree", None)
    if cached and cached[0] == version.pk:
        return cached[1], dict(cached[2])
    rows = list(
        Code.objects.filter(version=version).values("id", "key", "name", "parent__key", "color")
    )
    tree = CodeTree.from_rows(
        {
            "key": r["key"],
            "label": r["name"],
            "parent": r["parent__key"] or "",
            "color": r["color"],
            "order": n,
        }
        for n, r in enumerate(rows)
    )
    ids = dict(
        Code.objects.filter(version__codebook_id=version.codebook_id).values_list("id", "key")
    )
    # One request reads several tables of one project: read its codebook once.
    project._report_tree = (version.pk, tree, ids)
    return tree, dict(ids)


@dataclass
class _Source:
    """Where a basis's applications and observations live."""

    applications: object  # a queryset of application rows
    observations: object  # a queryset of observation rows
    obs_field: str  # the observation id on an application row
    unit_path: str  # from an application row to its unit
    obs_unit_path: str  # from an observation row to its unit


def _source(project, basis: Basis, filters: Filters) -> _Source:
    from coding.models import CodeApplication, Coding, GoldLabel

    if basis.kind == "gold":
        through = GoldLabel.codes.through
        apps = through.objects.filter(
            _unit_filter(project, filters, "goldlabel__unit__"),
            goldlabel__is_open=False,
            goldlabel__not_relevant=False,
        )
        obs = GoldLabel.objects.filter(
            _unit_filter(project, filters, "unit__"), is_open=False, not_relevant=False
        )
        return _Source(apps, obs, "goldlabel_id", "goldlabel__unit__", "unit__")
    submitted = {"status": Coding.Status.SUBMITTED, "not_relevant": False}
    obs = Coding.objects.filter(_unit_filter(project, filters, "unit__"), **submitted)
    apps = CodeApplication.objects.filter(
        _unit_filter(project, filters, "coding__unit__"),
        coding__status=Coding.Status.SUBMITTED,
        coding__not_relevant=False,
    )
    if basis.kind == "coder":
        obs = obs.filter(coder__username=basis.coder)
        apps = apps.filter(coding__coder__username=basis.coder)
    return _Source(apps, obs, "coding_id", "coding__unit__", "unit__")


def check_coder(project, basis: Basis) -> None:
    """A coder basis must name a member or someone who coded in the project."""
    from coding.models import Coding, Membership

    if basis.kind != "coder":
        return
    name = basis.coder
    known = (
        Membership.objects.filter(project=project, user__username=name).exists()
        or Coding.objects.filter(unit__project=project, coder__username=name).exists()
    )
    if not known:
        members = sorted(
            Membership.objects.filter(project=project).values_list("user__username", flat=True)
        )
        raise ReportError(
            f"no coder named {name!r} in project {project.slug!r}; members: "
            + (", ".join(members) or "none")
        )


def read_statement(project, basis: Basis, filters: Filters) -> BasisStatement:
    """How many units pass the filters, how many the basis covers, what it leaves out."""
    from django.db.models import Count, Q

    from coding.models import Coding, Unit

    units = Unit.objects.filter(_unit_filter(project, filters, ""))
    if basis.kind == "gold":
        figures = units.aggregate(
            total=Count("id"),
            covered=Count("gold", filter=Q(gold__is_open=False)),
            not_relevant=Count("gold", filter=Q(gold__is_open=False, gold__not_relevant=True)),
            open_gold=Count("gold", filter=Q(gold__is_open=True)),
        )
        return BasisStatement(
            basis,
            figures["total"],
            figures["covered"],
            figures["covered"] - figures["not_relevant"],
            not_relevant=figures["not_relevant"],
            open_gold=figures["open_gold"],
        )
    codings = Coding.objects.filter(
        _unit_filter(project, filters, "unit__"), status=Coding.Status.SUBMITTED
    )
    if basis.kind == "coder":
        codings = codings.filter(coder__username=basis.coder)
    figures = codings.aggregate(
        codings=Count("id"),
        units=Count("unit", distinct=True),
        coders=Count("coder", distinct=True),
        not_relevant=Count("id", filter=Q(not_relevant=True)),
    )
    return BasisStatement(
        basis,
        units.count(),
        figures["units"],
        figures["codings"] - figures["not_relevant"],
        not_relevant=figures["not_relevant"],
        coders=figures["coders"],
    )


def read_counts(
    project, basis: Basis, filters: Filters | None = None, *, monthly: bool = True
) -> Counts:
    """Counts per code (and month) on a basis, aggregated in SQL.

    1. The filtered application rows (observation, code, month) are a queryset.
    2. One statement joins them to a table of (code, each code at or above it) and counts,
       per code and month, distinct observations and applications.
    3. A second counts the observations per month.

    Without ``monthly`` the month is left out (frequency needs no dates), which is cheaper.
    """
    from django.db import connection
    from django.db.models import CharField, Count, F, Value

    filters = filters or Filters()
    tree, id_keys = read_tree(project)
    src = _source(project, basis, filters)
    no_month = Value("", output_field=CharField())
    month = _month(project, src.unit_path) if monthly else no_month
    rows_sql, rows_params = (
        src.applications.annotate(obs_key=F(src.obs_field), month_key=month)
        .values("obs_key", "code_id", "month_key")
        .order_by()
        .query.sql_with_params()
    )
    pairs = ancestor_pairs(id_keys, tree)
    # Only placeholders and the ORM's own compiled SQL go into the statement.
    values = ", ".join(["(%s, %s)"] * len(pairs))
    if connection.vendor == "postgresql":
        node_map = f"(VALUES {values}) AS m(code_id, node)"
        join = "m.code_id = a.code_id"
    else:
        node_map = f"(SELECT column1 AS code_id, column2 AS node FROM (VALUES {values})) AS m"  # noqa: S608
        # Unary plus keeps SQLite from driving the join through the code index, which
        # would visit every application once per code above it.
        join = "m.code_id = +a.code_id"
    sql = (
        "SELECT m.node, a.month_key, COUNT(DISTINCT a.obs_key), COUNT(*) "  # noqa: S608
        f"FROM ({rows_sql}) AS a JOIN {node_map} ON {join} "
        "GROUP BY m.node, a.month_key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*rows_params, *(v for pair in pairs for v in pair)])
        nodes = pd.DataFrame(cursor.fetchall(), columns=NODE_COLUMNS)
    unknown = [k for k in nodes["code"].unique() if k not in tree.frame.index]
    if unknown:
        from coding.models import Code

        labels = dict(
            Code.objects.filter(
                version__codebook_id=project.codebook_version.codebook_id, key__in=unknown
            ).values_list("key", "name")
        )
        tree = tree.with_extra(unknown, labels)
    obs_month = _month(project, src.obs_unit_path) if monthly else no_month
    totals_rows = src.observations.order_by().values(month=obs_month).annotate(count=Count("pk"))
    totals = pd.Series(
        {r["month"]: r["count"] for r in totals_rows}, name="count", dtype="int64"
    ).sort_index()
    return Counts(nodes, totals, tree)


def read_applications(project, basis: Basis, filters: Filters | None = None) -> pd.DataFrame:
    """One row per code applied on the basis: ``obs`` and ``code`` (for co-occurrence)."""
    filters = filters or Filters()
    _, id_keys = read_tree(project)
    src = _source(project, basis, filters)
    rows = src.applications.values_list(src.obs_field, "code_id")
    frame = pd.DataFrame(list(rows), columns=["obs", "code_id"])
    missing = set(frame["code_id"]) - set(id_keys)
    if missing:
        from coding.models import Code

        id_keys.update(Code.objects.filter(id__in=missing).values_list("id", "key"))
    frame["code"] = frame["code_id"].map(id_keys)
    return frame[["obs", "code"]]


def read_thread_texts(project, filters: Filters | None = None) -> pd.DataFrame:
    """One row per thread of the project's filtered units: ``thread``, ``month``, ``text``
    (the plain text of all its posts)."""
    from django.db.models import F

    from coding.models import Post, Unit

    filters = filters or Filters()
    threads = Unit.objects.filter(_unit_filter(project, filters, "")).values("thread_id")
    rows = (
        Post.objects.filter(thread_id__in=threads)
        .annotate(month=_month_key(F("thread__created_at")))
        .values_list("thread_id", "month", "plain_text")
        .order_by("thread_id", "post_number")
    )
    frame = pd.DataFrame(list(rows), columns=["thread", "month", "text"])
    if not len(frame):
        return pd.DataFrame(columns=["thread", "month", "text"])
    return frame.groupby(["thread", "month"], as_index=False, sort=False)["text"].agg("\n".join)


# --- One call for the command and the page ------------------------------------------------

KINDS = ("frequency", "trend", "cooccurrence", "mentions")


@dataclass
class Report:
    """A report table, the sentence stating its basis, and (for trends) the trend tests."""

    kind: str
    table: pd.DataFrame
    statement: str
    tests: pd.DataFrame | None = None


def filter_choices(project) -> dict[str, list[str]]:
    """The values the filters accept for a project: its rounds and forum categories."""
    from coding.models import Round, Unit

    rounds = list(Round.objects.filter(project=project).values_list("name", flat=True))
    categories = list(
        Unit.objects.filter(project=project)
        .exclude(thread__category="")
        .values_list("thread__category", flat=True)
        .distinct()
        .order_by("thread__category")
    )
    return {"rounds": rounds, "categories": categories}


def check_filters(project, filters: Filters, tree: CodeTree | None = None) -> None:
    """Refuse a round, category or code group the project does not have."""
    choices = filter_choices(project)
    if filters.round and filters.round not in choices["rounds"]:
        raise ReportError(
            f"no round named {filters.round!r} in project {project.slug!r}; rounds: "
            + (", ".join(choices["rounds"]) or "none")
        )
    if filters.category and filters.category not in choices["categories"]:
        raise ReportError(f"no units in forum category {filters.category!r}")
    if filters.group:
        tree = tree or read_tree(project)[0]
        if filters.group not in tree.frame.index:
            raise ReportError(f"no code {filters.group!r} in the project's codebook")
    if filters.since and filters.until and filters.since > filters.until:
        raise ReportError("the date window ends before it starts")


def build_report(
    project,
    kind: str,
    *,
    basis: Basis | None = None,
    filters: Filters | None = None,
    by: str = "month",
    terms: list[Term] | None = None,
    level: str = "codes",
) -> Report:
    """The table of one kind of report for a project, checked and stated."""
    basis = basis or Basis("gold")
    filters = filters or Filters()
    if kind not in KINDS:
        raise ReportError(f"kind {kind!r} is not one of: {', '.join(KINDS)}")
    if by not in PERIODS:
        raise ReportError(f"period {by!r} is not one of: {', '.join(PERIODS)}")
    check_filters(project, filters)
    check_coder(project, basis)
    if kind == "mentions":
        if not terms:
            raise ReportError("mentions need a list of terms")
        texts = read_thread_texts(project, filters)
        statement = (
            f"threads of {len(texts)} units' text, whatever their codes "
            "(the basis does not apply to mentions)"
        )
        return Report(kind, mentions(texts, terms, by), statement)
    statement = str(read_statement(project, basis, filters))
    if kind == "cooccurrence":
        tree, _ = read_tree(project)
        codes = tree.subtree(filters.group) if filters.group else None
        table = cooccurrence(read_applications(project, basis, filters), tree, level, codes)
        return Report(kind, table, statement)
    counts = read_counts(project, basis, filters, monthly=kind == "trend")
    codes = counts.tree.subtree(filters.group) if filters.group else None
    if kind == "frequency":
        return Report(kind, frequency(counts, codes), statement)
    table = trend(counts, by, codes)
    return Report(kind, table, statement, trend_tests(table))


# --- The tables behind the charts ---------------------------------------------------------


def frequency_chart_table(table: pd.DataFrame, tree: CodeTree, level: str) -> pd.DataFrame:
    """The frequency rows of one level, grouped under their parent's name, in tree order."""
    keys = set(tree.level_keys(level))
    rows = table[table["code"].isin(keys)].copy()
    labels = tree.frame["label"]
    rows.insert(0, "group", [labels[p] if p else "" for p in rows["parent"]])
    first = {g: n for n, g in reversed(list(enumerate(rows["group"])))}
    rows = rows.assign(_order=rows["group"].map(first)).sort_values("_order", kind="stable")
    return rows[
        [
            "group",
            "code",
            "label",
            "units",
            "share_of_units",
            "applications",
            "share_of_applications",
        ]
    ].reset_index(drop=True)


def trend_chart_table(table: pd.DataFrame, tree: CodeTree, level: str, value: str) -> pd.DataFrame:
    """Codes of one level as rows, periods as columns, holding ``count`` or ``share``."""
    keys = set(tree.level_keys(level))
    return trend_wide(table[table["code"].isin(keys)], value)


def mentions_wide(table: pd.DataFrame, value: str = "mentions") -> pd.DataFrame:
    """Terms as rows, periods as columns, holding ``mentions`` or ``share``."""
    if not len(table):
        return pd.DataFrame(columns=["term"])
    order = list(dict.fromkeys(table["term"]))
    wide = table.pivot(index="term", columns="period", values=value).loc[order]
    wide.columns.name = None
    return wide.reset_index()


def cooccurrence_matrix(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Code x code as a square table (code, label, then one column per code key)."""
    if not len(table):
        return pd.DataFrame(columns=["code", "label"])
    order = list(dict.fromkeys(table["code_a"]))
    matrix = table.pivot(index="code_a", columns="code_b", values=measure).loc[order, order]
    labels = table.drop_duplicates("code_a").set_index("code_a")["label_a"]
    matrix.insert(0, "label", labels.loc[order])
    matrix.columns.name = None
    return matrix.rename_axis("code").reset_index()
