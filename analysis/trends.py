"""Forum versus Hub: model-type series, their correlation, and model-card shares.

The study behind this tool counted, per model type and month, the forum threads whose
text mentions the type and the Hub models created with it, correlated the two with
Spearman's rho (across types and per type over months), and followed the share of new
models that come with a model card. This module computes those series from the corpus
(``Thread``/``Post``) and the imported Hub metadata (``HubModel``):

- mentions: a thread mentions a type when its title or any post's plain text contains one
  of the type's names as a whole word, case-insensitively (``gpt2``, ``GPT-2``,
  ``gpt 2``). Where names overlap the longer one wins: ``xlm-roberta`` counts for
  xlm-roberta, not roberta. A thread counts once per type, in the month it was created.
- reviewers' rules (``ModelTypeRule``) exclude an ambiguous name or count it as another
  type; a rule may also add a name the curated list lacks.

Tables are ``CountTable``s (name × month), the layout ``correlate`` reads, so the same
figures come out of the page, its CSV downloads and the command.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import CharField, Count, Max
from django.db.models.functions import Cast, Substr
from scipy import stats

from coding.models import HubModel, ModelTypeRule, Post, Thread

from .correlation import Comparison, CountTable, compare, format_p

# Other names people write for a model type (the type's own name, with "_" read as "-" or
# a space, is always included).
ALIASES: dict[str, tuple[str, ...]] = {
    "gpt2": ("gpt-2", "gpt 2"),
    "distilbert": ("distil-bert", "distil bert"),
    "wav2vec2": ("wav2vec 2.0", "wav2vec2.0", "wav2vec-2"),
    "vit": ("vision transformer",),
    "llama": ("llama2", "llama-2", "llama 2"),
    "gpt_neo": ("gptneo",),
    "gptj": ("gpt-j", "gpt j"),
    "xlm-roberta": ("xlm roberta", "xlmr", "xlm-r"),
    "deberta-v2": ("deberta-v3", "deberta v3", "debertav3"),
    "marian": ("marianmt", "opus-mt"),
    "m2m_100": ("m2m100",),
    "bert": (),
    "t5": (),
    "roberta": (),
    "whisper": (),
    "bart": (),
    "mbart": (),
    "mt5": (),
    "albert": (),
    "electra": (),
    "longformer": (),
    "pegasus": (),
    "clip": (),
    "bloom": (),
    "opt": (),
    "falcon": (),
    "mistral": (),
}

# Type names that are also ordinary words: their mentions deserve a reviewer's look.
AMBIGUOUS = frozenset(
    {
        "align", "bark", "bit", "bloom", "canine", "clip", "ernie", "falcon", "funnel",
        "git", "led", "marian", "mega", "mistral", "nat", "opt", "phi", "rag", "realm",
        "sam", "van", "whisper",
    }
)  # fmt: skip


def _spellings(model_type: str) -> set[str]:
    base = model_type.lower()
    names = {base, base.replace("_", "-"), base.replace("_", " "), base.replace("-", " ")}
    names.update(alias.lower() for alias in ALIASES.get(base, ()))
    return {n for n in names if n.strip()}


@dataclass
class Matcher:
    """Which names count for which type, after reviewers' rules."""

    names: dict[str, str]
    excluded: dict[str, str]
    pattern: re.Pattern | None

    def types_in(self, text: str) -> set[str]:
        if not self.pattern or not text:
            return set()
        # The pattern is lower case: lowering the text once beats a case-insensitive scan.
        return {self.names[" ".join(m.split())] for m in self.pattern.findall(text.lower())}


def build_matcher(
    model_types: Iterable[str], rules: Iterable[tuple[str, str, str]] = ()
) -> Matcher:
    """Names → types for ``model_types`` and the curated list, with ``(name, action, maps_to)``."""
    names: dict[str, str] = {}
    for model_type in sorted({*ALIASES, *(t.lower() for t in model_types if t)}):
        for spelling in _spellings(model_type):
            names.setdefault(spelling, model_type)
    excluded: dict[str, str] = {}
    for name, action, maps_to in rules:
        name = " ".join(name.lower().split())
        if action == ModelTypeRule.Action.EXCLUDE:
            if name in names:
                excluded[name] = names.pop(name)
        elif action == ModelTypeRule.Action.MAP and maps_to:
            names[name] = maps_to.lower()
        else:
            names.setdefault(name, name)
    return Matcher(names, excluded, _pattern(names))


def _pattern(names: Iterable[str]) -> re.Pattern | None:
    """Whole-word alternatives as a trie, so the longer of two overlapping names wins.

    A trie-shaped expression (``b(?:ert|art)``) tries one branch per character instead of
    every name at every position: several times faster than a flat alternation.
    """
    trie: dict = {}
    for name in set(names):
        node = trie
        for char in name.lower():
            node = node.setdefault(char, {})
        node[""] = True
    if not trie:
        return None
    return re.compile(rf"(?<!\w)(?:{_trie_regex(trie)})(?!\w)")


def _trie_regex(node: dict) -> str:
    branches = []
    for char in sorted(k for k in node if k):
        step = r"\s+" if char == " " else re.escape(char)
        branches.append(step + _trie_regex(node[char]))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:
        return f"(?:{body})?"
    return body


def current_matcher() -> Matcher:
    types = (
        HubModel.objects.exclude(model_type="")
        .order_by()
        .values_list("model_type", flat=True)
        .distinct()
    )
    rules = ModelTypeRule.objects.values_list("name", "action", "maps_to")
    return build_matcher(list(types), list(rules))


# Periods ------------------------------------------------------------------------------


def month_key(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive (``YYYY-MM``)."""
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _table(label: str, counts: dict[str, dict[str, float]], months: Iterable[str]) -> CountTable:
    """A table over every month from its first to its last (quiet months count as 0)."""
    ordered = sorted(months)
    periods = month_range(ordered[0], ordered[-1]) if ordered else []
    return CountTable(label=label, counts=dict(sorted(counts.items())), periods=periods)


# Series -------------------------------------------------------------------------------


def count_mentions(
    threads: Iterable[tuple[int, str, datetime]],
    posts: Iterable[tuple[int, str]],
    matcher: Matcher,
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Threads per type and month; returns the counts and every thread month seen."""
    month_of: dict[int, str] = {}
    found: dict[int, set[str]] = defaultdict(set)
    for thread_id, title, created_at in threads:
        month_of[thread_id] = month_key(created_at)
        found[thread_id] |= matcher.types_in(title)
    for thread_id, text in posts:
        if thread_id in month_of:
            found[thread_id] |= matcher.types_in(text)
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for thread_id, types in found.items():
        for model_type in types:
            counts[model_type][month_of[thread_id]] += 1
    return {t: dict(m) for t, m in counts.items()}, sorted(set(month_of.values()))


def forum_mentions_table(matcher: Matcher | None = None) -> CountTable:
    """Forum threads mentioning each model type, per month of the thread's creation.

    Reading every post is the heavy step of the trends page and its charts, so the result
    is cached under a key that changes with the corpus (threads and posts added or
    refreshed) and with the names counted (reviewers' rules, Hub model types). A post
    edited in place without its thread changing shows after ``MENTIONS_CACHE_SECONDS``.
    """
    matcher = matcher or current_matcher()
    key = _mentions_key(matcher)
    cached = cache.get(key)
    if cached is not None:
        return cached
    # No ORDER BY: the models' default orderings would sort (and join) every row.
    threads = Thread.objects.order_by().values_list("id", "title", "created_at")
    posts = Post.objects.order_by().values_list("thread_id", "plain_text")
    counts, months = count_mentions(
        threads.iterator(chunk_size=2000), posts.iterator(chunk_size=2000), matcher
    )
    table = _table("forum mentions", counts, months)
    cache.set(key, table, MENTIONS_CACHE_SECONDS)
    return table


MENTIONS_CACHE_SECONDS = 600


def _mentions_key(matcher: Matcher) -> str:
    threads = Thread.objects.aggregate(n=Count("id"), last=Max("refreshed_at"), top=Max("id"))
    posts = Post.objects.aggregate(n=Count("id"), top=Max("id"))
    names = hashlib.sha256(json.dumps(sorted(matcher.names.items())).encode()).hexdigest()
    corpus = f"{threads['n']}:{threads['top']}:{threads['last']}:{posts['n']}:{posts['top']}"
    return f"trends:mentions:{hashlib.sha256(corpus.encode()).hexdigest()[:32]}:{names[:32]}"


@dataclass
class HubGroup:
    """Hub models of one type, creation month (``None``: unknown) and card status."""

    model_type: str
    month: str | None
    has_card: bool
    n: int


def hub_groups() -> list[HubGroup]:
    """Every Hub count the page needs, from one grouped query over the models."""
    # The month as the first seven characters of the stored UTC time ("2021-03"): the
    # database does it natively, where TruncMonth on SQLite calls Python once per row.
    month = Substr(Cast("created_at", output_field=CharField()), 1, 7)
    rows = (
        HubModel.objects.annotate(month=month)
        .values_list("model_type", "month", "has_card_data")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        HubGroup(model_type.lower(), month or None, has_card, n)
        for model_type, month, has_card, n in rows
    ]


def hub_created_table(groups: list[HubGroup] | None = None) -> CountTable:
    """Hub models created per model type and month (unknown creation dates left out)."""
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    months: set[str] = set()
    for g in hub_groups() if groups is None else groups:
        if g.model_type and g.month:
            counts[g.model_type][g.month] = counts[g.model_type].get(g.month, 0.0) + g.n
            months.add(g.month)
    return _table("hub models created", counts, months)


def wide_csv(table: CountTable, first_header: str = "model_type") -> str:
    """The table as wide CSV: one row per name, one column per month (zeros written)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([first_header, *table.periods])
    for name, row in table.counts.items():
        writer.writerow([name, *(_cell(row.get(p, 0.0)) for p in table.periods)])
    return out.getvalue()


def _cell(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def top_names(table: CountTable, limit: int) -> list[str]:
    return sorted(table.counts, key=lambda n: (-table.total(n), n))[:limit]


def forum_vs_hub(forum: CountTable, hub: CountTable, *, matched_window: bool) -> Comparison:
    return compare(forum, hub, matched_window=matched_window)


# Model cards ----------------------------------------------------------------------------


@dataclass
class CardShare:
    period: str
    models: int
    with_card: int

    @property
    def share(self) -> float:
        return self.with_card / self.models if self.models else 0.0


@dataclass
class Trend:
    """Kendall's tau of a series against time (a Mann-Kendall-style trend test)."""

    n: int
    tau: float | None
    p: float | None

    @property
    def tau_text(self) -> str:
        return "undefined" if self.tau is None else f"{self.tau:.3f}"

    @property
    def p_text(self) -> str:
        return format_p(self.p)

    @property
    def direction(self) -> str:
        if self.tau is None or self.p is None:
            return "too few points"
        if self.p >= 0.05:
            return "no significant trend"
        return "rising" if self.tau > 0 else "falling"


def card_shares(by: str = "month", groups: list[HubGroup] | None = None) -> list[CardShare]:
    """Per month or year of creation: models created and how many have model-card data."""
    if by not in ("month", "year"):
        raise ValueError(f"card shares are per month or year, not {by!r}")
    models: dict[str, int] = defaultdict(int)
    with_card: dict[str, int] = defaultdict(int)
    for g in hub_groups() if groups is None else groups:
        if g.month:
            period = g.month if by == "month" else g.month[:4]
            models[period] += g.n
            with_card[period] += g.n if g.has_card else 0
    return [CardShare(p, models[p], with_card[p]) for p in sorted(models)]


def trend_test(values: list[float]) -> Trend:
    n = len(values)
    if n < 3 or len(set(values)) < 2:
        return Trend(n, None, None)
    result = stats.kendalltau(list(range(n)), values)
    return Trend(n, float(result.statistic), float(result.pvalue))


def card_shares_csv(shares: list[CardShare], period_header: str = "period") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([period_header, "models", "with_card", "share"])
    for s in shares:
        writer.writerow([s.period, s.models, s.with_card, f"{s.share:.6f}"])
    return out.getvalue()


# The page -------------------------------------------------------------------------------


@dataclass
class Figures:
    """Everything the trends page shows, computed in a fixed number of queries."""

    forum: CountTable
    hub: CountTable
    own_windows: Comparison
    matched: Comparison
    monthly_cards: list[CardShare]
    yearly_cards: list[CardShare]
    monthly_trend: Trend
    yearly_trend: Trend
    hub_total: int
    hub_typed: int
    hub_undated: int
    unreviewed: list[str]

    @property
    def top_hub(self) -> list[tuple[str, float]]:
        return [(n, self.hub.total(n)) for n in top_names(self.hub, 10)]

    @property
    def top_forum(self) -> list[tuple[str, float]]:
        return [(n, self.forum.total(n)) for n in top_names(self.forum, 10)]

    @property
    def per_type(self) -> list[tuple[str, float, float, object]]:
        """Shared types by forum total: totals and rho over the shared months."""
        names = sorted(self.own_windows.shared_names, key=lambda n: -self.forum.total(n))
        return [(n, *self.own_windows.totals[n], self.own_windows.over_time[n]) for n in names[:15]]


def page_figures() -> Figures:
    matcher = current_matcher()
    forum = forum_mentions_table(matcher)
    groups = hub_groups()
    hub = hub_created_table(groups)
    monthly, yearly = card_shares("month", groups), card_shares("year", groups)
    reviewed = set(ModelTypeRule.objects.values_list("name", flat=True))
    return Figures(
        forum=forum,
        hub=hub,
        own_windows=compare(forum, hub, matched_window=False),
        matched=compare(forum, hub, matched_window=True),
        monthly_cards=monthly,
        yearly_cards=yearly,
        monthly_trend=trend_test([s.share for s in monthly]),
        yearly_trend=trend_test([s.share for s in yearly]),
        hub_total=sum(g.n for g in groups),
        hub_typed=sum(g.n for g in groups if g.model_type),
        hub_undated=sum(g.n for g in groups if g.month is None),
        unreviewed=sorted(n for n in AMBIGUOUS if n in forum.counts and n not in reviewed),
    )


@dataclass
class ReviewRow:
    name: str
    counts_as: str
    threads: int
    examples: list[tuple[int, str]]
    rule: ModelTypeRule | None


def review_rows() -> list[ReviewRow]:
    """Ambiguous and reviewed names with the threads that mention each (as a whole word)."""
    rules = {r.name: r for r in ModelTypeRule.objects.all()}
    matcher = current_matcher()
    candidates = sorted(AMBIGUOUS | set(rules))
    probe = Matcher({n: n for n in candidates}, {}, _pattern(candidates))
    threads = list(Thread.objects.order_by().values_list("id", "title", "created_at"))
    found: dict[int, set[str]] = defaultdict(set)
    for thread_id, title, _created in threads:
        found[thread_id] |= probe.types_in(title)
    for thread_id, text in (
        Post.objects.order_by().values_list("thread_id", "plain_text").iterator(chunk_size=2000)
    ):
        found[thread_id] |= probe.types_in(text)
    titles = {thread_id: title for thread_id, title, _created in threads}
    per_name: dict[str, list[int]] = defaultdict(list)
    for thread_id in sorted(found):
        for name in found[thread_id]:
            per_name[name].append(thread_id)
    rows = []
    for name in candidates:
        ids = per_name.get(name, [])
        counts_as = matcher.names.get(name, "")
        rows.append(
            ReviewRow(name, counts_as, len(ids), [(i, titles[i]) for i in ids[:3]], rules.get(name))
        )
    return rows


def known_types() -> list[str]:
    return sorted(set(current_matcher().names.values()))
