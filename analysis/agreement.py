"""Inter-rater agreement over plain tables of codings.

The input is a long table with one row per (unit, coder, code): several rows for a coder
who applied several codes to a unit, and one row with an empty code for a coder who coded
the unit without applying any code. A unit a coder never coded is missing for that coder.
An optional ``unsure`` column marks codings their coder was unsure about; they are
included in every figure and counted in the report.

Definitions used throughout (Krippendorff 2019, *Content Analysis*, ch. 12):

1. A unit is *pairable* when at least two coders coded it; only pairable units enter a
   figure, and ``n_units`` / ``n_pairable_values`` count them and their values.
2. Krippendorff's alpha is computed from the coincidence matrix
   ``o = Σ_u (n_u n_uᵀ − diag n_u) / (m_u − 1)`` with ``alpha = 1 − (n − 1) Σ o·d / Σ n_c n_k d``,
   for the nominal, ordinal, interval and ratio distances ``d``. Everything is vectorized
   over units.
3. Percent agreement is the mean over pairable units of the share of agreeing coder pairs.
4. Cohen's kappa is computed for each coder pair on the units both coded; Fleiss' kappa
   over the pairable units when all of them have the same number of ratings (else null
   with the reason).
5. Multi-label data are read two ways: per code as binary present/absent data (a coder
   who coded the unit without the code counts as absent), and as label sets, compared by
   exact match (``krippendorff_alpha``, kappas, percent agreement) and with the MASI
   distance (Passonneau 2006) for ``masi_alpha``.
6. Confidence intervals resample pairable units with replacement (B = 1,000 by default,
   seeded) and take the 2.5th and 97.5th percentiles of the replicate alphas. Each unit's
   contribution to the observed disagreement and to the value totals is computed once; a
   replicate is a weighted sum of them with the replicate's multinomial unit counts, and
   all figures of a report share the same resamples. MASI's expected disagreement is
   recomputed per replicate from subset moments (see ``_MasiAgreement``); only when a
   coder gave a unit more than ``_MasiAgreement.MAX_SET_SIZE`` codes is it held at its
   full-sample value per pair of values (as Hayes & Krippendorff 2007 do at every level).
7. Alpha is undefined (null) when the pairable values show no variation at all.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

NOT_RELEVANT = "__not_relevant__"
NOT_RELEVANT_LABEL = "Not relevant"
LEVELS = ("nominal", "ordinal", "interval", "ratio")
MODES = ("auto", "single", "multi")
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 20240601
_CHUNK_CELLS = 20_000_000  # bootstrap weights held at once (replicates × units)


class AgreementInputError(ValueError):
    """The codings cannot be read: the message names the file, line and field."""


# --------------------------------------------------------------------------------------
# Reading the long table


def read_long_csv(source: str | io.TextIOBase, *, name: str | None = None) -> pd.DataFrame:
    """Read ``unit,coder,code`` (or ``value``) rows, optionally with ``unsure``.

    Raises AgreementInputError naming the line for a missing column, an empty unit or
    coder, a row of the wrong length or a bad ``unsure`` flag.
    """
    if isinstance(source, str):
        name = name or source
        try:
            handle = open(source, newline="", encoding="utf-8-sig")  # noqa: SIM115
        except OSError as exc:
            raise AgreementInputError(f"{source}: cannot be read ({exc.strerror})") from None
    else:
        handle = source
        name = name or "input"
    try:
        return _read_rows(csv.reader(handle), name)
    except UnicodeDecodeError:
        raise AgreementInputError(f"{name}: not UTF-8 text") from None
    except csv.Error as exc:
        raise AgreementInputError(f"{name}: not valid CSV ({exc})") from None
    finally:
        if isinstance(source, str):
            handle.close()


def _read_rows(reader: Iterator[list[str]], name: str) -> pd.DataFrame:
    header = next(reader, None)
    if header is None:
        raise AgreementInputError(f"{name}: the file is empty (expected a header unit,coder,code)")
    columns = [column.strip().lower() for column in header]
    code_column = "code" if "code" in columns else "value" if "value" in columns else None
    missing = [c for c in ("unit", "coder") if c not in columns]
    if code_column is None:
        missing.append("code (or value)")
    if missing:
        raise AgreementInputError(
            f"{name}, line 1: missing column {', '.join(missing)} "
            f"(expected a header unit,coder,code)"
        )
    at = {column: columns.index(column) for column in ("unit", "coder")}
    at["code"] = columns.index(code_column)
    unsure_at = columns.index("unsure") if "unsure" in columns else None
    units: list[str] = []
    coders: list[str] = []
    codes: list[str] = []
    unsure: list[bool] = []
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(columns):
            raise AgreementInputError(
                f"{name}, line {line}: expected {len(columns)} fields, found {len(row)}"
            )
        unit, coder = row[at["unit"]].strip(), row[at["coder"]].strip()
        if not unit:
            raise AgreementInputError(f"{name}, line {line}: the unit is empty")
        if not coder:
            raise AgreementInputError(f"{name}, line {line}: the coder is empty")
        units.append(unit)
        coders.append(coder)
        codes.append(row[at["code"]].strip())
        if unsure_at is not None:
            flag = row[unsure_at].strip().lower()
            if flag not in {"", "0", "1", "true", "false", "yes", "no"}:
                raise AgreementInputError(
                    f"{name}, line {line}: unsure must be 0 or 1, found {row[unsure_at]!r}"
                )
            unsure.append(flag in {"1", "true", "yes"})
        else:
            unsure.append(False)
    if not units:
        raise AgreementInputError(f"{name}: no codings after the header")
    return pd.DataFrame({"unit": units, "coder": coders, "code": codes, "unsure": unsure})


def write_long_csv(table: pd.DataFrame, handle: io.TextIOBase) -> None:
    """Write the long table as read by ``read_long_csv`` (the long export's columns)."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["unit", "coder", "code", "unsure"])
    for unit, coder, code, unsure in table[["unit", "coder", "code", "unsure"]].itertuples(
        index=False
    ):
        writer.writerow([unit, coder, code, int(bool(unsure))])


# --------------------------------------------------------------------------------------
# Codings as arrays


@dataclass
class Codings:
    """One row per coding (a coder's reading of a unit), sorted by unit, then coder."""

    units: np.ndarray  # unit labels (N)
    coders: np.ndarray  # coder labels (C)
    codes: np.ndarray  # code labels (K), without the empty code
    unit: np.ndarray  # unit index of each coding (J)
    coder: np.ndarray  # coder index of each coding (J)
    unsure: np.ndarray  # bool (J)
    applied_coding: np.ndarray  # the distinct (coding, code) pairs: coding index ...
    applied_code: np.ndarray  # ... and code index
    rows_per_coding: np.ndarray  # rows in the table per coding (J)
    has_empty: np.ndarray  # bool (J): a row with an empty code

    @cached_property
    def presence(self) -> np.ndarray:
        """bool (J, K): the coding applied the code (built for multi-label figures only)."""
        presence = np.zeros((len(self.unit), len(self.codes)), dtype=bool)
        presence[self.applied_coding, self.applied_code] = True
        return presence


def to_codings(table: pd.DataFrame) -> Codings:
    if table.empty:
        raise AgreementInputError("no codings to measure")
    table = table.copy()
    table["unit"] = table["unit"].astype(str)
    table["coder"] = table["coder"].astype(str)
    table["code"] = table["code"].fillna("").astype(str)
    if "unsure" not in table:
        table["unsure"] = False
    unit_idx, units = pd.factorize(table["unit"], sort=True)
    coder_idx, coders = pd.factorize(table["coder"], sort=True)
    n_coders = len(coders)
    key = unit_idx.astype(np.int64) * n_coders + coder_idx
    coding_keys, row_coding = np.unique(key, return_inverse=True)
    n_codings = len(coding_keys)
    nonempty = (table["code"] != "").to_numpy()
    code_idx, codes = pd.factorize(table["code"][nonempty], sort=True)
    unsure = np.zeros(n_codings, dtype=bool)
    np.logical_or.at(unsure, row_coding, table["unsure"].astype(bool).to_numpy())
    has_empty = np.zeros(n_codings, dtype=bool)
    has_empty[row_coding[~nonempty]] = True
    width = max(len(codes), 1)
    distinct_rows = np.unique(row_coding[nonempty].astype(np.int64) * width + code_idx)
    applied_coding, applied_code = distinct_rows // width, distinct_rows % width
    rows_per_coding = np.bincount(applied_coding, minlength=n_codings) + has_empty.astype(np.int64)
    return Codings(
        units=np.asarray(units),
        coders=np.asarray(coders),
        codes=np.asarray(codes),
        unit=(coding_keys // n_coders).astype(np.int64),
        coder=(coding_keys % n_coders).astype(np.int64),
        unsure=unsure,
        applied_coding=applied_coding,
        applied_code=applied_code,
        rows_per_coding=rows_per_coding,
        has_empty=has_empty,
    )


def detect_mode(codings: Codings) -> str:
    """``single`` only when every coding holds exactly one non-empty value."""
    single = bool((codings.rows_per_coding == 1).all() and not codings.has_empty.any())
    return "single" if single else "multi"


# --------------------------------------------------------------------------------------
# Krippendorff's alpha from value counts


def _as_numbers(values: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return np.arange(len(values), dtype=np.float64)
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise AgreementInputError(
            f"the {level} level needs numeric values; found {next(_non_numeric(values))!r}"
        ) from None


def _non_numeric(values: Iterable) -> Iterator:
    for value in values:
        try:
            float(value)
        except (TypeError, ValueError):
            yield value


def distance_matrix(numbers: np.ndarray, n_v: np.ndarray, level: str) -> np.ndarray:
    """Squared distances between the values (V, V); ``n_v`` are the value totals.

    ``n_v`` may carry leading replicate axes (B, V) for ordinal data, whose distance
    depends on the totals; the result then has shape (B, V, V).
    """
    if level == "nominal":
        return 1.0 - np.eye(len(numbers))
    if level == "interval":
        return (numbers[:, None] - numbers[None, :]) ** 2
    if level == "ratio":
        total = numbers[:, None] + numbers[None, :]
        diff = numbers[:, None] - numbers[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total != 0, (diff / np.where(total != 0, total, 1)) ** 2, 0.0)
    if level == "ordinal":
        order = np.argsort(numbers, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        sorted_n = np.take(n_v, order, axis=-1)
        cum = np.cumsum(sorted_n, axis=-1)
        lo = np.minimum(rank[:, None], rank[None, :])
        hi = np.maximum(rank[:, None], rank[None, :])
        between = (
            np.take(cum, hi, axis=-1) - np.take(cum, lo, axis=-1) + np.take(sorted_n, lo, axis=-1)
        )
        ends = (np.take(sorted_n, lo, axis=-1) + np.take(sorted_n, hi, axis=-1)) / 2
        return (between - ends) ** 2
    raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix from per-unit value counts (N, V)."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    with np.errstate(divide="ignore"):
        w = np.where(m >= 2, 1.0 / (m - 1), 0.0)
    weighted = counts * w[:, None]
    return weighted.T @ counts - np.diag(weighted.sum(axis=0))


def alpha_from_coincidences(o: np.ndarray, numbers: np.ndarray, level: str) -> float:
    n_v = o.sum(axis=0)
    n = n_v.sum()
    d = distance_matrix(numbers, n_v, level)
    expected = (np.outer(n_v, n_v) * d).sum()
    if n < 2 or expected <= 0:
        return math.nan
    return float(1.0 - (n - 1) * (o * d).sum() / expected)


def alpha(
    reliability_data: np.ndarray, level: str = "nominal", value_domain: Iterable | None = None
) -> float:
    """Krippendorff's alpha of a coders × units matrix with NaN for missing values.

    The fast path for large numeric data: values are mapped to their rank in the value
    domain (a lookup table for integers), per-unit value counts are built with one
    bincount and the coincidence matrix with one matrix product.
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    if level == "nominal" and value_domain is None:
        return _nominal_alpha(data)
    n_units = data.shape[1]
    present = ~np.isnan(data)
    values = data[present]
    units = np.broadcast_to(np.arange(n_units), data.shape)[present]
    if value_domain is None:
        domain = np.sort(pd.unique(values))
    else:
        domain = np.asarray(list(value_domain), dtype=np.float64)
    low = domain[0] if len(domain) else 0.0
    span = domain[-1] - low if len(domain) else 0.0
    if np.all(domain == np.round(domain)) and span < 1_000_000:
        lookup = np.zeros(int(span) + 1, dtype=np.int64)
        lookup[(domain - low).astype(np.int64)] = np.arange(len(domain))
        index = lookup[(values - low).astype(np.int64)]
    else:
        index = np.searchsorted(domain, values)
    n_values = len(domain)
    counts = np.bincount(units * n_values + index, minlength=n_units * n_values)
    counts = counts.reshape(n_units, n_values)
    numbers = domain if level != "nominal" else np.arange(n_values, dtype=np.float64)
    return alpha_from_coincidences(coincidence_matrix(counts), numbers, level)


def _nominal_alpha(data: np.ndarray) -> float:
    """Nominal alpha of a coders × units matrix without building per-unit value counts.

    A unit's row of the coincidence matrix only matters through Σ_c n_uc², which is
    m_u plus twice the number of coder pairs that gave the same value (NaN never equals
    NaN, so missing values never agree); the loop runs over coder pairs, not units.
    """
    present = ~np.isnan(data)
    m = present.sum(axis=0).astype(np.float64)
    agreeing = np.zeros(data.shape[1])
    for a, b in combinations(range(data.shape[0]), 2):
        agreeing += data[a] == data[b]
    pairable = m >= 2
    m_p = m[pairable]
    observed = ((m_p**2 - (m_p + 2 * agreeing[pairable])) / (m_p - 1)).sum()
    values = data[present & pairable[None, :]]
    low = values.min(initial=0.0)
    span = values.max(initial=0.0) - low
    if span < 1_000_000 and np.array_equal(values, np.round(values)):
        n_v = np.bincount((values - low).astype(np.int64)).astype(np.float64)
    else:
        n_v = pd.Series(values).value_counts().to_numpy(dtype=np.float64)
    n = n_v.sum()
    expected = n**2 - (n_v**2).sum()
    return float(_alpha_ratio(n, observed, expected))


# --------------------------------------------------------------------------------------
# Bootstrap


def bootstrap_weights(n_units: int, replicates: int, seed: int) -> Iterator[np.ndarray]:
    """Multinomial unit counts of each replicate, in chunks of shape (b, n_units).

    Each replicate draws ``n_units`` units with replacement; the chunk holds how many
    times each unit was drawn. (The array is the transpose of a C-ordered (n_units, b)
    array, the layout the sparse products below want.)
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // max(n_units, 1))
    for start in range(0, replicates, per_chunk):
        size = min(per_chunk, replicates - start)
        draws = rng.integers(0, n_units, size=(size, n_units), dtype=np.int32)
        # Replicate-major bins keep each replicate's increments within its own block.
        draws += (np.arange(size, dtype=np.int32) * n_units)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n_units).reshape(size, n_units)
        yield np.ascontiguousarray(counts.T, dtype=np.float64).T


@dataclass
class _Replicable:
    """One figure's per-unit contributions and how their replicate sums become alphas."""

    features: Any  # sparse (pairable units × F)
    finish: Callable[[np.ndarray], np.ndarray]  # (b, F) sums → (b,) or (b, k) alphas


def _bootstrap(
    parts: list[_Replicable], n_units: int, replicates: int, seed: int
) -> list[np.ndarray]:
    """Replicate alphas of every part, all from the same resamples of units.

    The contributions of all parts are stacked into one sparse matrix, so a chunk of
    replicates costs one sparse product.
    """
    from scipy.sparse import hstack

    stacked = hstack([part.features for part in parts], format="csr").T.tocsr()
    bounds = np.cumsum([0] + [part.features.shape[1] for part in parts])
    results: list[list[np.ndarray]] = [[] for _ in parts]
    for weights in bootstrap_weights(n_units, replicates, seed):
        sums = np.asarray(stacked @ weights.T).T
        for i, part in enumerate(parts):
            results[i].append(part.finish(sums[:, bounds[i] : bounds[i + 1]]))
    return [np.concatenate(result) for result in results]


def percentile_interval(replicates: np.ndarray) -> list[float] | None:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def _alpha_ratio(n: np.ndarray, observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        result = 1.0 - (n - 1) * observed / expected
    return np.where((expected > 0) & (n >= 2), result, np.nan)


# --------------------------------------------------------------------------------------
# Single-valued variables (one value per unit and coder)


@dataclass
class Variable:
    """One value per coding: ``value`` indexes ``domain``; codings of one unit are adjacent."""

    unit: np.ndarray  # (J) unit index, sorted
    coder: np.ndarray  # (J)
    value: np.ndarray  # (J) index into domain
    domain: np.ndarray  # (V) labels
    coders: np.ndarray  # (C) labels
    n_units: int


def _pairable(var: Variable) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit number of values and a mask of the codings in pairable units."""
    m = np.bincount(var.unit, minlength=var.n_units)
    return m, m[var.unit] >= 2


def _unit_value_counts(var: Variable, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct (unit, value) pairs among masked codings, sorted by unit, with counts."""
    n_values = len(var.domain)
    key = var.unit[mask].astype(np.int64) * n_values + var.value[mask]
    pairs, counts = np.unique(key, return_counts=True)
    return pairs // n_values, pairs % n_values, counts.astype(np.float64)


@dataclass
class _Entries:
    """Every pairable unit's coincidences: (unit, value a, value b, weight) entries."""

    pairable_units: np.ndarray  # unit indices with two or more values
    m: np.ndarray  # values per pairable unit
    local: np.ndarray  # entry → position in pairable_units
    va: np.ndarray
    vb: np.ndarray
    weight: np.ndarray
    unit_values: Any  # sparse (pairable units × V) value counts
    n_v: np.ndarray  # value totals over pairable units


def _entries(var: Variable, *, off_diagonal_only: bool = False) -> _Entries | None:
    m, mask = _pairable(var)
    pairable_units = np.flatnonzero(m >= 2)
    if len(pairable_units) == 0:
        return None
    pair_unit, pair_value, pair_count = _unit_value_counts(var, mask)
    starts = np.searchsorted(pair_unit, pairable_units)
    sizes = np.searchsorted(pair_unit, pairable_units, side="right") - starts
    a_idx, b_idx = _within_group_pairs(starts, sizes)
    same = a_idx == b_idx
    if off_diagonal_only:
        a_idx, b_idx, same = a_idx[~same], b_idx[~same], same[~same]
    count_a = pair_count[a_idx]
    weight = np.where(same, count_a * (count_a - 1), count_a * pair_count[b_idx])
    local = np.searchsorted(pairable_units, pair_unit[a_idx])
    weight = weight / (m[pairable_units][local] - 1)
    from scipy.sparse import csr_matrix

    n_values = len(var.domain)
    unit_values = csr_matrix(
        (pair_count, (np.searchsorted(pairable_units, pair_unit), pair_value)),
        shape=(len(pairable_units), n_values),
    )
    n_v = np.bincount(pair_value, weights=pair_count, minlength=n_values)
    return _Entries(
        pairable_units, m[pairable_units].astype(np.float64), local, pair_value[a_idx],
        pair_value[b_idx], weight, unit_values, n_v,
    )  # fmt: skip


def _entry_distance(numbers, n_v, level, va, vb) -> np.ndarray:
    if level == "nominal":
        return (va != vb).astype(np.float64)
    if level == "interval":
        return (numbers[va] - numbers[vb]) ** 2
    if level == "ratio":
        total, diff = numbers[va] + numbers[vb], numbers[va] - numbers[vb]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total != 0, (diff / np.where(total != 0, total, 1)) ** 2, 0.0)
    return distance_matrix(numbers, n_v, level)[va, vb]


def variable_alpha(var: Variable, level: str) -> tuple[dict[str, Any], _Replicable | None, int]:
    """Alpha with its units and pairable values, and what its bootstrap needs."""
    numbers = _as_numbers(var.domain, level)
    entries = _entries(var)
    result: dict[str, Any] = {
        "alpha": math.nan,
        "alpha_ci95": None,
        "n_units": 0 if entries is None else len(entries.pairable_units),
        "n_pairable_values": 0 if entries is None else int(entries.m.sum()),
    }
    if entries is None:
        return result, None, 0
    from scipy.sparse import csr_matrix, hstack

    n_values = len(var.domain)
    n_units = len(entries.pairable_units)
    if level == "ordinal":
        # The distance depends on the value totals: replicates need whole matrices.
        cells = entries.va * n_values + entries.vb
        o = np.bincount(cells, weights=entries.weight, minlength=n_values * n_values)
        result["alpha"] = alpha_from_coincidences(o.reshape(n_values, n_values), numbers, level)
        features = csr_matrix(
            (entries.weight, (entries.local, cells)), shape=(n_units, n_values * n_values)
        )

        def finish(sums: np.ndarray) -> np.ndarray:
            o_rep = sums.reshape(-1, n_values, n_values)
            n_v = o_rep.sum(axis=1)
            d = distance_matrix(numbers, n_v, level)
            observed = (o_rep * d).sum(axis=(1, 2))
            expected = (n_v[:, :, None] * n_v[:, None, :] * d).sum(axis=(1, 2))
            return _alpha_ratio(n_v.sum(axis=1), observed, expected)

        return result, _Replicable(features, finish), n_units
    d = None if level in ("nominal", "interval") else distance_matrix(numbers, entries.n_v, level)
    per_entry = entries.weight * _entry_distance(
        numbers, entries.n_v, level, entries.va, entries.vb
    )
    disagreement = np.bincount(entries.local, weights=per_entry, minlength=n_units)
    expected = _expected(entries.n_v[None, :], d, numbers, level)
    result["alpha"] = float(_alpha_ratio(entries.n_v.sum(), disagreement.sum(), expected[0]))
    features = hstack([csr_matrix(disagreement[:, None]), entries.unit_values], format="csr")

    def finish(sums: np.ndarray) -> np.ndarray:
        n_v = sums[:, 1:]
        return _alpha_ratio(n_v.sum(axis=1), sums[:, 0], _expected(n_v, d, numbers, level))

    return result, _Replicable(features, finish), n_units


def _expected(n_v: np.ndarray, d: np.ndarray | None, numbers: np.ndarray, level: str):
    """Σ n_c n_k d_ck for each replicate row of ``n_v`` (b, V)."""
    if level == "nominal":
        total = n_v.sum(axis=1)
        return total**2 - (n_v**2).sum(axis=1)
    if level == "interval":
        total = n_v.sum(axis=1)
        first = n_v @ numbers
        second = n_v @ numbers**2
        return 2 * (total * second - first**2)
    return ((n_v @ d) * n_v).sum(axis=1)


def _within_group_pairs(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered (a, b) index pairs, a and b in the same group, including a == b."""
    squares = sizes * sizes
    group = np.repeat(np.arange(len(sizes)), squares)
    offset = np.arange(squares.sum()) - np.repeat(np.cumsum(squares) - squares, squares)
    a = starts[group] + offset // sizes[group]
    b = starts[group] + offset % sizes[group]
    return a, b


def percent_agreement(var: Variable) -> float:
    m, mask = _pairable(var)
    pair_unit, _, pair_count = _unit_value_counts(var, mask)
    if not mask.any():
        return math.nan
    agreeing = np.bincount(pair_unit, weights=pair_count * (pair_count - 1), minlength=len(m))
    units = m >= 2
    return float((agreeing[units] / (m[units] * (m[units] - 1))).mean())


def fleiss_kappa(var: Variable) -> tuple[float | None, str]:
    m, mask = _pairable(var)
    ratings = np.unique(m[m >= 2])
    if len(ratings) == 0:
        return None, "no unit was coded by two or more coders"
    if len(ratings) > 1:
        return None, (
            f"units have between {ratings.min()} and {ratings.max()} ratings; "
            "Fleiss' kappa needs the same number for every unit"
        )
    raters = float(ratings[0])
    pair_unit, pair_value, pair_count = _unit_value_counts(var, mask)
    n_units = len(np.unique(pair_unit))
    p_value = np.bincount(pair_value, weights=pair_count) / (n_units * raters)
    per_unit = np.bincount(pair_unit, weights=pair_count**2)[np.unique(pair_unit)]
    p_bar = ((per_unit - raters) / (raters * (raters - 1))).mean()
    p_e = (p_value**2).sum()
    if p_e == 1:
        return None, "every rating has the same value; Fleiss' kappa is undefined"
    return float((p_bar - p_e) / (1 - p_e)), f"{n_units} units with {int(raters)} ratings each"


def cohen_kappa_pairs(var: Variable) -> list[dict[str, Any]]:
    """Cohen's kappa and percent agreement for each coder pair, on the units both coded."""
    n_coders, n_values = len(var.coders), len(var.domain)
    grid = np.full((var.n_units, n_coders), -1, dtype=np.int64)
    grid[var.unit, var.coder] = var.value
    pairs = []
    for a, b in combinations(range(n_coders), 2):
        both = (grid[:, a] >= 0) & (grid[:, b] >= 0)
        n = int(both.sum())
        kappa = agreement_share = math.nan
        if n:
            first, second = grid[both, a], grid[both, b]
            agreement_share = float((first == second).mean())
            margins = np.bincount(first, minlength=n_values) @ np.bincount(
                second, minlength=n_values
            )
            kappa = _kappa(agreement_share, margins / n**2)
        pairs.append(
            {
                "coder_a": str(var.coders[a]),
                "coder_b": str(var.coders[b]),
                "kappa": kappa,
                "percent_agreement": agreement_share,
                "n": n,
            }
        )
    return pairs


def _kappa(observed: float, expected: float) -> float:
    """Cohen's kappa from the observed and chance agreement (undefined when chance is 1)."""
    if expected >= 1:
        return math.nan
    return float((observed - expected) / (1 - expected))


def single_report(var: Variable, level: str, *, replicates: int, seed: int) -> dict[str, Any]:
    figures, part, n_units = variable_alpha(var, level)
    if part is not None and replicates > 0:
        (alphas,) = _bootstrap([part], n_units, replicates, seed)
        figures["alpha_ci95"] = percentile_interval(alphas)
    fleiss, note = fleiss_kappa(var)
    return {
        "krippendorff_alpha": figures["alpha"],
        "alpha_ci95": figures["alpha_ci95"],
        "n_units_pairable": figures["n_units"],
        "n_pairable_values": figures["n_pairable_values"],
        "fleiss_kappa": fleiss,
        "fleiss_kappa_note": note,
        "percent_agreement": percent_agreement(var),
        "cohen_kappa": cohen_kappa_pairs(var),
    }


# --------------------------------------------------------------------------------------
# Multi-label: per code (binary), label sets (exact and MASI)


def masi_distance(a: frozenset, b: frozenset) -> float:
    """Passonneau (2006): 1 − Jaccard × M; 0 between two empty sets."""
    if not a and not b:
        return 0.0
    common = len(a & b)
    if a == b:
        monotonicity = 1.0
    elif common == min(len(a), len(b)):
        monotonicity = 2 / 3
    elif common > 0:
        monotonicity = 1 / 3
    else:
        monotonicity = 0.0
    return 1.0 - common / len(a | b) * monotonicity


def _masi_from_sizes(size_a, size_b, common) -> np.ndarray:
    union = size_a + size_b - common
    monotonicity = np.where(
        (common == size_a) & (common == size_b),
        1.0,
        np.where(common == np.minimum(size_a, size_b), 2 / 3, np.where(common > 0, 1 / 3, 0.0)),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, common / np.where(union > 0, union, 1), 1.0)
    return 1.0 - jaccard * monotonicity


def _per_code_fleiss(m_p: np.ndarray, n1: np.ndarray) -> tuple[list | None, str]:
    ratings = np.unique(m_p)
    if len(ratings) == 0:
        return None, "no unit was coded by two or more coders"
    if len(ratings) > 1:
        return None, (
            f"units have between {int(ratings.min())} and {int(ratings.max())} ratings; "
            "Fleiss' kappa needs the same number for every unit"
        )
    raters = ratings[0]
    n0 = raters - n1
    p1 = n1.sum(axis=0) / (len(m_p) * raters)
    p_bar = ((n1**2 + n0**2 - raters) / (raters * (raters - 1))).mean(axis=0)
    p_e = p1**2 + (1 - p1) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1, (p_bar - p_e) / (1 - p_e), np.nan)
    note = f"{len(m_p)} units with {int(raters)} ratings each"
    return [float(x) if np.isfinite(x) else None for x in kappa], note


def _per_code_pair_kappas(codings: Codings) -> list[dict[str, Any]]:
    n_units, n_coders = len(codings.units), len(codings.coders)
    grid = np.full((n_units, n_coders), -1, dtype=np.int64)
    grid[codings.unit, codings.coder] = np.arange(len(codings.unit))
    pairs = []
    for a, b in combinations(range(n_coders), 2):
        both = (grid[:, a] >= 0) & (grid[:, b] >= 0)
        pa = codings.presence[grid[both, a]]
        pb = codings.presence[grid[both, b]]
        n = int(both.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            ra = np.count_nonzero(pa, axis=0) / n
            rb = np.count_nonzero(pb, axis=0) / n
            observed = 1 - np.count_nonzero(pa ^ pb, axis=0) / n
            expected = ra * rb + (1 - ra) * (1 - rb)
            kappas = np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)
        pairs.append(
            {
                "coder_a": str(codings.coders[a]),
                "coder_b": str(codings.coders[b]),
                "kappas": [float(x) for x in kappas] if n else [math.nan] * len(codings.codes),
                "n": n,
            }
        )
    return pairs


@dataclass
class LabelSets:
    """The distinct label sets of the codings and each coding's set."""

    sets: np.ndarray  # bool (S, K)
    of_coding: np.ndarray  # (J) index into sets


def label_sets(codings: Codings) -> LabelSets:
    packed = np.packbits(codings.presence, axis=1)
    if packed.shape[1] == 0:
        packed = np.zeros((len(packed), 1), dtype=np.uint8)
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1])))
    _, first, inverse = np.unique(rows.ravel(), return_index=True, return_inverse=True)
    return LabelSets(codings.presence[first], inverse.ravel().astype(np.int64))


def label_set_variable(codings: Codings, sets: LabelSets) -> Variable:
    """Each coding's label set as one nominal value ('a|b', '' for none)."""
    labels = np.asarray(
        ["|".join(str(c) for c in codings.codes[row]) for row in sets.sets], dtype=object
    )
    return Variable(
        codings.unit, codings.coder, sets.of_coding, labels, codings.coders, len(codings.units)
    )


class _MasiAgreement:
    """Σ n_c n_k J(c,k)·M(c,k) over all pairs of label sets, without enumerating pairs.

    MASI depends on a pair of sets only through their sizes a, b and intersection size i.
    For each t, Σ_T F_a(T) F_b(T), with F_a(T) the number of values of size a that
    contain the t-subset T, equals Σ over pairs of sizes (a, b) of n_c n_k C(i, t); the
    binomial inversion of these moments gives the weight of each (a, b, i). Only the
    subsets of the sets that occur are enumerated, so the cost grows with the values'
    sizes, not with the square of the number of distinct sets.
    """

    MAX_SET_SIZE = 12

    def __init__(self, sets: np.ndarray):
        from scipy.sparse import csr_matrix

        sizes = sets.sum(axis=1)
        self.size_values = np.unique(sizes)
        size_pos = {int(s): p for p, s in enumerate(self.size_values)}
        subset_ids: dict[tuple[int, ...], int] = {}
        key_ids: dict[tuple[int, int], int] = {}
        rows, cols = [], []
        for c, row in enumerate(sets):
            members = np.flatnonzero(row).tolist()
            a = size_pos[len(members)]
            for t in range(len(members) + 1):
                for subset in combinations(members, t):
                    sid = subset_ids.setdefault(subset, len(subset_ids))
                    kid = key_ids.setdefault((a, sid), len(key_ids))
                    rows.append(c)
                    cols.append(kid)
        self.incidence = csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(sets), len(key_ids))
        )
        subset_size = np.array([len(s) for s in subset_ids], dtype=np.int64)
        key_size = np.array([a for a, _ in key_ids], dtype=np.int64)
        key_subset = np.array([sid for _, sid in key_ids], dtype=np.int64)
        self.by_t = []
        for t in range(int(subset_size.max()) + 1 if len(subset_size) else 0):
            keys = np.flatnonzero(subset_size[key_subset] == t)
            local_subsets, local = np.unique(key_subset[keys], return_inverse=True)
            self.by_t.append((keys, key_size[keys], local.ravel(), len(local_subsets)))
        n_sizes = len(self.size_values)
        top = int(self.size_values.max()) if n_sizes else 0
        a = self.size_values[:, None, None].astype(np.float64)
        b = self.size_values[None, :, None].astype(np.float64)
        i = np.arange(top + 1, dtype=np.float64)[None, None, :]
        self.jm = np.where((a == 0) & (b == 0) & (i == 0), 1.0, 1.0 - _masi_from_sizes(a, b, i))
        self.jm = np.where(i <= np.minimum(a, b), self.jm, 0.0)
        # inversion[t, i] = (-1)^(t-i) C(t, i): moments over C(i, t) → counts per i.
        self.inversion = np.array(
            [[(-1) ** (t - k) * math.comb(t, k) if k <= t else 0 for k in range(top + 1)]
             for t in range(top + 1)], dtype=np.float64,
        )  # fmt: skip

    def agreement(self, n_v: np.ndarray) -> np.ndarray:
        """Σ n_c n_k JM(c, k) for each row of value totals ``n_v`` (b, S)."""
        n_sizes = len(self.size_values)
        widest = max((count for *_, count in self.by_t), default=1)
        step = max(1, 4_000_000 // (n_sizes * widest))
        out = np.empty(len(n_v))
        for start in range(0, len(n_v), step):
            rows = n_v[start : start + step]
            totals = np.asarray((self.incidence.T @ rows.T).T)  # (b, keys)
            moments = np.zeros((len(rows), n_sizes, n_sizes, len(self.inversion)))
            for t, (keys, sizes, local, count) in enumerate(self.by_t):
                grid = np.zeros((len(rows), n_sizes, count))
                grid[:, sizes, local] = totals[:, keys]
                moments[..., t] = grid @ grid.transpose(0, 2, 1)
            per_intersection = moments @ self.inversion  # (b, a, b, i)
            out[start : start + step] = (per_intersection * self.jm[None]).sum(axis=(1, 2, 3))
        return out


def masi_alpha(codings: Codings, sets: LabelSets) -> tuple[dict[str, Any], _Replicable | None]:
    """Alpha over label sets with the MASI distance, and what its bootstrap needs."""
    var = Variable(
        codings.unit, codings.coder, sets.of_coding, np.arange(len(sets.sets)),
        codings.coders, len(codings.units),
    )  # fmt: skip
    entries = _entries(var, off_diagonal_only=True)
    result: dict[str, Any] = {"alpha": math.nan, "alpha_ci95": None}
    if entries is None:
        return result, None
    from scipy.sparse import csr_matrix, hstack

    members = sets.sets
    sizes = members.sum(axis=1).astype(np.float64)
    common = (members[entries.va] & members[entries.vb]).sum(axis=1).astype(np.float64)
    distance = _masi_from_sizes(sizes[entries.va], sizes[entries.vb], common)
    n_units = len(entries.pairable_units)
    disagreement = np.bincount(entries.local, weights=entries.weight * distance, minlength=n_units)
    n_total = entries.n_v.sum()
    if sizes.max(initial=0) <= _MasiAgreement.MAX_SET_SIZE:
        pairs = _MasiAgreement(members)

        def expected_of(n_v: np.ndarray) -> np.ndarray:
            return n_v.sum(axis=1) ** 2 - pairs.agreement(n_v)

    else:
        full = float(n_total**2 - _masi_agreement_dense(entries.n_v, members, sizes))

        def expected_of(n_v: np.ndarray) -> np.ndarray:
            # Very large sets: hold the expected disagreement per pair of values fixed.
            n = n_v.sum(axis=1)
            return full * n * (n - 1) / (n_total * (n_total - 1))

    result["alpha"] = float(
        _alpha_ratio(n_total, disagreement.sum(), expected_of(entries.n_v[None, :])[0])
    )
    features = hstack([csr_matrix(disagreement[:, None]), entries.unit_values], format="csr")

    def finish(sums: np.ndarray) -> np.ndarray:
        n_v = sums[:, 1:]
        return _alpha_ratio(n_v.sum(axis=1), sums[:, 0], expected_of(n_v))

    return result, _Replicable(features, finish)


def _masi_agreement_dense(n_v: np.ndarray, sets: np.ndarray, sizes: np.ndarray) -> float:
    as_float = sets.astype(np.float32)
    total = 0.0
    step = max(1, 20_000_000 // len(sets))
    for start in range(0, len(sets), step):
        block = slice(start, start + step)
        common = (as_float[block] @ as_float.T).astype(np.float64)
        jm = 1.0 - _masi_from_sizes(sizes[block, None], sizes[None, :], common)
        total += float(n_v[block] @ jm @ n_v)
    return total


def per_code_figures(codings: Codings) -> tuple[dict[str, dict[str, Any]], _Replicable | None]:
    """Binary present/absent figures for every code, vectorized across codes."""
    from scipy.sparse import csr_matrix, hstack

    presence = codings.presence
    n_codes = presence.shape[1]
    n_units = len(codings.units)
    m = np.bincount(codings.unit, minlength=n_units).astype(np.float64)
    applied_coding, applied_code = codings.applied_coding, codings.applied_code
    present = (
        np.bincount(
            codings.unit[applied_coding] * n_codes + applied_code, minlength=n_units * n_codes
        )
        .reshape(n_units, n_codes)
        .astype(np.float64)
    )
    pairable = m >= 2
    m_p, n1 = m[pairable], present[pairable]
    n0 = m_p[:, None] - n1
    w = 1.0 / (m_p - 1)
    disagreement = n0 * n1 * w[:, None]  # each unit's o_01 per code
    n_total = m_p.sum()
    ones = n1.sum(axis=0)
    alphas = _alpha_ratio(n_total, 2 * disagreement.sum(axis=0), 2 * ones * (n_total - ones))
    with np.errstate(divide="ignore", invalid="ignore"):
        agreeing = (n1 * (n1 - 1) + n0 * (n0 - 1)) / (m_p * (m_p - 1))[:, None]
    percent = agreeing.mean(axis=0) if len(m_p) else np.full(n_codes, math.nan)
    disagreeing_units = ((n1 > 0) & (n0 > 0)).sum(axis=0)
    prevalence = np.bincount(applied_code, minlength=n_codes) / len(codings.unit)
    pair_kappas = _per_code_pair_kappas(codings)
    fleiss = _per_code_fleiss(m_p, n1)
    result = {}
    for k, code in enumerate(codings.codes):
        pairs = [
            {"coder_a": p["coder_a"], "coder_b": p["coder_b"], "kappa": p["kappas"][k], "n": p["n"]}
            for p in pair_kappas
        ]
        defined = [p["kappa"] for p in pairs if not math.isnan(p["kappa"])]
        result[str(code)] = {
            "alpha": float(alphas[k]),
            "alpha_ci95": None,
            "kappa": float(np.mean(defined)) if defined else math.nan,
            "cohen_kappa": pairs,
            "fleiss_kappa": fleiss[0][k] if fleiss[0] is not None else None,
            "fleiss_kappa_note": fleiss[1],
            "percent_agreement": float(percent[k]),
            "n_units": int(pairable.sum()),
            "n_pairable_values": int(n_total),
            "prevalence": float(prevalence[k]),
            "units_with_disagreement": int(disagreeing_units[k]),
        }
    if not len(m_p):
        return result, None
    features = hstack(
        [csr_matrix(disagreement), csr_matrix(n1), csr_matrix(m_p[:, None])], format="csr"
    )

    def finish(sums: np.ndarray) -> np.ndarray:
        o_rep, ones_rep, n_rep = sums[:, :n_codes], sums[:, n_codes:-1], sums[:, -1:]
        return _alpha_ratio(n_rep, 2 * o_rep, 2 * ones_rep * (n_rep - ones_rep))

    return result, _Replicable(features, finish)


# --------------------------------------------------------------------------------------
# The report


def agreement_report(
    table: pd.DataFrame,
    *,
    mode: str = "auto",
    level: str = "nominal",
    replicates: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Every figure for a long table; the one function behind the command and the page."""
    if mode not in MODES:
        raise AgreementInputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if level not in LEVELS:
        raise AgreementInputError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    codings = to_codings(table)
    used = detect_mode(codings) if mode == "auto" else mode
    report: dict[str, Any] = {
        "mode": used,
        "mode_requested": mode,
        "level": level if used == "single" else "nominal",
        "n_units": len(codings.units),
        "n_coders": len(codings.coders),
        "n_codings": len(codings.unit),
        "n_unsure": int(codings.unsure.sum()),
        "bootstrap_replicates": replicates,
        "seed": seed,
    }
    if used == "single":
        if not (codings.rows_per_coding == 1).all():
            j = int(np.flatnonzero(codings.rows_per_coding != 1)[0])
            raise AgreementInputError(
                f"coder {codings.coders[codings.coder[j]]} gave unit "
                f"{codings.units[codings.unit[j]]} several values; use --mode multi"
            )
        value = np.full(len(codings.unit), len(codings.codes), dtype=np.int64)
        value[codings.applied_coding] = codings.applied_code
        domain = codings.codes
        if codings.has_empty.any():
            domain = np.append(domain, "")
        var = Variable(
            codings.unit,
            codings.coder,
            value.astype(np.int64),
            domain,
            codings.coders,
            len(codings.units),
        )
        report.update(single_report(var, level, replicates=replicates, seed=seed))
        return report
    sets = label_sets(codings)
    overall = single_report(label_set_variable(codings, sets), "nominal", replicates=0, seed=seed)
    report.update(overall)
    report["overall_note"] = (
        "Overall figures compare each coder's label set as one nominal value (exact match); "
        "masi_alpha gives partial credit to overlapping sets; per_code reads each code as "
        "present or absent."
    )
    masi, masi_part = masi_alpha(codings, sets)
    per_code, per_code_part = per_code_figures(codings)
    if replicates > 0 and masi_part is not None:
        # The three figures share their pairable units, hence one set of resamples.
        _, exact_part, n_units = variable_alpha(label_set_variable(codings, sets), "nominal")
        exact, masi_reps, code_reps = _bootstrap(
            [exact_part, masi_part, per_code_part], n_units, replicates, seed
        )
        report["alpha_ci95"] = percentile_interval(exact)
        masi["alpha_ci95"] = percentile_interval(masi_reps)
        for k, figures in enumerate(per_code.values()):
            figures["alpha_ci95"] = percentile_interval(code_reps[:, k])
    report["masi_alpha"] = masi["alpha"]
    report["masi_alpha_ci95"] = masi["alpha_ci95"]
    report["per_code"] = per_code
    report["macro"] = _macro(per_code)
    report["disagreement_ranking"] = _ranking(per_code)
    _add_pair_code_kappas(report)
    return report


def _mean(values: Iterable[float | None]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _macro(per_code: dict[str, dict[str, Any]]) -> dict[str, Any]:
    figures = list(per_code.values())
    return {
        "alpha": _mean(f["alpha"] for f in figures),
        "kappa": _mean(f["kappa"] for f in figures),
        "percent_agreement": _mean(f["percent_agreement"] for f in figures),
        "n_codes": len(figures),
        "n_codes_without_alpha": sum(1 for f in figures if math.isnan(f["alpha"])),
    }


def _ranking(per_code: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    total = sum(f["units_with_disagreement"] for f in per_code.values())
    ranked = sorted(
        per_code.items(), key=lambda item: (-item[1]["units_with_disagreement"], item[0])
    )
    return [
        {
            "code": code,
            "units_with_disagreement": f["units_with_disagreement"],
            "share": f["units_with_disagreement"] / total if total else 0.0,
            "alpha": f["alpha"],
        }
        for code, f in ranked
        if f["units_with_disagreement"]
    ]


def _add_pair_code_kappas(report: dict[str, Any]) -> None:
    """Each pair's mean per-code kappa beside its exact-match kappa."""
    for pair in report["cohen_kappa"]:
        pair["mean_code_kappa"] = _mean(
            next(
                p["kappa"]
                for p in figures["cohen_kappa"]
                if p["coder_a"] == pair["coder_a"] and p["coder_b"] == pair["coder_b"]
            )
            for figures in report["per_code"].values()
        )


def to_json_ready(value: Any) -> Any:
    """NaN becomes None and numpy scalars plain numbers, so json.dumps is strict."""
    if isinstance(value, dict):
        return {str(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _figure(value: float | None) -> str:
    return "undefined" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _with_interval(value: float | None, interval: list[float] | None, replicates: int) -> str:
    if not interval:
        return _figure(value)
    return (
        f"{_figure(value)} (95% CI {interval[0]:.3f} to {interval[1]:.3f}, "
        f"{replicates:,} bootstrap resamples of units)"
    )


def methods_paragraph(report: dict[str, Any], *, scope: str = "") -> str:
    """A paragraph for a paper's methods section, with this report's figures filled in.

    ``report`` is a multi-label report passed through ``to_json_ready``; ``scope`` says
    what was measured (round, codebook version, level of the tree).
    """
    b = report["bootstrap_replicates"]
    per_code = report["per_code"]
    alphas = [f["alpha"] for f in per_code.values() if f["alpha"] is not None]
    kappas = [p["kappa"] for p in report["cohen_kappa"] if p["kappa"] is not None]
    parts = [
        f"Inter-rater reliability was assessed on {report['n_units_pairable']:,} units "
        f"coded independently by at least two of {report['n_coders']} coders "
        f"({report['n_pairable_values']:,} codings; {report['n_unsure']:,} marked unsure "
        f"and included){scope}.",
        "Since a unit could receive several codes, each code was treated as present or "
        'absent for every coder who coded the unit, and "not relevant" as a code of '
        "its own.",
    ]
    if alphas:
        parts.append(
            f"Krippendorff's alpha (nominal) per code averaged {_figure(float(np.mean(alphas)))} "
            f"over {len(alphas)} codes (range {min(alphas):.3f} to {max(alphas):.3f})."
        )
    masi = _with_interval(report["masi_alpha"], report["masi_alpha_ci95"], b)
    exact = _with_interval(report["krippendorff_alpha"], report["alpha_ci95"], b)
    parts.append(
        "Over whole label sets, Krippendorff's alpha with the MASI distance "
        f"(Passonneau, 2006) was {masi}, and with exact matching {exact}."
    )
    if kappas:
        parts.append(
            f"Cohen's kappa on label sets ranged from {min(kappas):.3f} to {max(kappas):.3f} "
            f"across {len(kappas)} coder pairs"
            + (
                f"; Fleiss' kappa was {_figure(report['fleiss_kappa'])}."
                if report["fleiss_kappa"] is not None
                else "."
            )
        )
    parts.append(f"Observed agreement on label sets was {_figure(report['percent_agreement'])}.")
    return " ".join(parts)
