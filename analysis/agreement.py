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
6. Confidence intervals come from B resamples of the pairable units with replacement
   (B = 1,000 by default, seeded): the 2.5th and 97.5th percentiles of the replicate
   alphas. What a replicate recomputes:
   - single-valued data and each code's present/absent alpha: the whole alpha, observed
     and expected disagreement alike, on the resampled units;
   - the label-set alphas (exact match and MASI): the observed disagreement on the
     resampled units, over the expected disagreement per pair of values of the full data,
     held fixed as in Krippendorff's bootstrap (Hayes & Krippendorff 2007).
   Single-valued data: each unit's contribution to the observed disagreement and to the
   value totals is computed once, and a replicate is a weighted sum of them with the
   replicate's multinomial unit counts. Multi-label data: units are grouped by pattern
   (per code, the number of coders m and the number n1 who applied the code; for a
   label-set alpha, m and the unit's observed disagreement), and the units of each
   pattern in a resample are drawn as Multinomial(N, pattern shares), which is exactly
   how many a draw of N units with replacement contains; a replicate is one draw of a
   small multinomial. Each multi-label figure is resampled on its own (every interval has
   its bootstrap distribution; replicates are not shared between figures).
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


@dataclass
class CodingPairs:
    """Every unordered pair of codings of one unit, the lower coder's coding first."""

    a: np.ndarray  # coding index (Q)
    b: np.ndarray  # coding index (Q)
    unit: np.ndarray  # unit index (Q)
    m: np.ndarray  # codings per unit (N)
    pairable: np.ndarray  # bool (N): coded by two or more coders
    kind: np.ndarray  # (Q) index into kinds
    kinds: np.ndarray  # the coder pairs that occur, as coder_a × C + coder_b

    def by_coder_pair(self, n_coders: int) -> Iterator[tuple[int, int, int | None]]:
        """(coder a, coder b, index into kinds or None) for every pair of coders a < b."""
        at = {int(k): i for i, k in enumerate(self.kinds)}
        for a, b in combinations(range(n_coders), 2):
            yield a, b, at.get(a * n_coders + b)


def coding_pairs(codings: Codings) -> CodingPairs:
    """Codings are sorted by unit, then coder: a unit's pairs are the codings d apart in
    that order with the same unit, for d from 1 to the most codings of a unit − 1."""
    m = np.bincount(codings.unit, minlength=len(codings.units))
    index = np.arange(len(codings.unit))
    firsts, seconds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for d in range(1, int(m.max(initial=0))):
        same = codings.unit[:-d] == codings.unit[d:]
        firsts.append(index[:-d][same])
        seconds.append(index[d:][same])
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    n_coders = len(codings.coders)
    kind, kinds = pd.factorize(codings.coder[a] * n_coders + codings.coder[b])
    return CodingPairs(a, b, codings.unit[a], m, m >= 2, kind.astype(np.int64), kinds)


@dataclass
class LabelSets:
    """The distinct label sets of the codings and each coding's set."""

    sets: np.ndarray  # bool (S, K)
    of_coding: np.ndarray  # (J) index into sets
    words: np.ndarray  # uint64 (S, W): each set's codes as bits, to count common codes

    @cached_property
    def sizes(self) -> np.ndarray:
        return np.bitwise_count(self.words).sum(axis=1).astype(np.float64)

    def has(self, s: np.ndarray, code: np.ndarray) -> np.ndarray:
        """Whether set ``s`` holds ``code`` (element-wise)."""
        word = self.words[s, code // 64]
        return ((word >> (np.uint64(63) - (code % 64).astype(np.uint64))) & np.uint64(1)) == 1

    def common(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The number of codes sets ``a`` and ``b`` share (element-wise)."""
        result = self.sizes[a]
        differ = np.flatnonzero(a != b)
        shared = self.words[a[differ]] & self.words[b[differ]]
        result[differ] = np.bitwise_count(shared).sum(axis=1)
        return result


def label_sets(codings: Codings) -> LabelSets:
    """Each coding's set gets an exact integer key (its sorted codes as digits in base
    K + 1) when the largest set fits in 62 bits, else the key is its bits; keys are
    factorized by hashing, so sets are numbered in order of first appearance."""
    n_codings, n_codes = len(codings.unit), len(codings.codes)
    per_coding = np.bincount(codings.applied_coding, minlength=n_codings)
    if per_coding.max(initial=0) * math.log2(n_codes + 1) < 62:
        starts = np.cumsum(per_coding) - per_coding
        position = np.arange(len(codings.applied_code)) - np.repeat(starts, per_coding)
        digits = (codings.applied_code + 1) * (n_codes + 1) ** position
        key = np.zeros(n_codings, dtype=np.int64)
        coded = per_coding > 0
        if coded.any():
            key[coded] = np.add.reduceat(digits, starts[coded])
        of_coding, distinct = pd.factorize(key)
        n_sets = len(distinct)
    else:
        packed = np.ascontiguousarray(np.packbits(codings.presence, axis=1))
        rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, of_coding = np.unique(rows, return_inverse=True)
        n_sets = int(of_coding.max()) + 1
    first = np.zeros(n_sets, dtype=np.int64)
    first[of_coding] = np.arange(n_codings)  # any coding of the set stands for it
    lengths = per_coding[first]
    starts = np.cumsum(per_coding) - per_coding
    sets = np.zeros((n_sets, n_codes), dtype=bool)
    sets[
        np.repeat(np.arange(n_sets), lengths),
        codings.applied_code[_ranges(starts[first], lengths)],
    ] = True
    packed = np.packbits(sets, axis=1)
    width = max(1, -(-packed.shape[1] // 8))
    padded = np.zeros((n_sets, width * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    words = padded.view(">u8").astype(np.uint64)  # code c is bit 63 − c % 64 of word c // 64
    return LabelSets(sets, of_coding.astype(np.int64), words)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated index ranges starts[i] ... starts[i] + lengths[i] − 1."""
    offsets = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) + np.repeat(starts - offsets, lengths)


# Bootstrap by patterns of units


@dataclass
class _Patterns:
    """Pairable units grouped by what one unit adds to the sums a figure is computed from.

    Drawing n units with replacement from n pairable units draws a unit of pattern p with
    probability (units of p) / n each time, so the units of each pattern in a resample are
    Multinomial(n, pattern shares): a replicate is one draw of a small multinomial instead
    of n unit indices, with exactly the distribution of resampling units. ``counts`` may
    hold one row per figure (per code) over the same units and the same patterns; each
    row is drawn on its own.
    """

    counts: np.ndarray  # (F, P) units of each pattern, per figure
    values: np.ndarray  # (P, V) what one unit of each pattern adds to the V sums
    finish: Callable[[np.ndarray], np.ndarray]  # (b, F, V) replicate sums → (b, F) alphas

    def replicates(self, rng: np.random.Generator, replicates: int) -> np.ndarray:
        n_figures, n_patterns = self.counts.shape
        n_units = int(self.counts[0].sum())
        shares = self.counts / n_units
        result = np.empty((replicates, n_figures))
        step = max(1, 2_000_000 // (n_figures * n_patterns))
        for start in range(0, replicates, step):
            size = min(step, replicates - start)
            drawn = rng.multinomial(n_units, shares, size=(size, n_figures))
            result[start : start + size] = self.finish(drawn @ self.values)
        return result


def _group_units(observed: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (observed, m) rows (one row per unit) and how many units share each."""
    by_observed, _ = pd.factorize(observed)
    group, _ = pd.factorize(by_observed.astype(np.int64) * (int(m.max()) + 1) + m.astype(np.int64))
    counts = np.bincount(group)
    first = np.zeros(len(counts), dtype=np.int64)
    first[group] = np.arange(len(group))
    return np.column_stack([observed[first], m[first]]), counts


def _label_set_patterns(observed: np.ndarray, m: np.ndarray, expected: float) -> _Patterns:
    """Replicates of a label-set alpha: each resample's observed disagreement per value over
    the expected disagreement per pair of values of the full data, held fixed (as in
    Hayes & Krippendorff 2007). ``observed`` is each pairable unit's Σ o·d."""
    n = m.sum()
    per_pair = expected / (n * (n - 1))
    rows, counts = _group_units(observed, m)

    def finish(sums: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - sums[..., 0] / sums[..., 1] / per_pair

    return _Patterns(counts[None, :], rows, finish)


# Figures over label sets


def label_set_figures(
    codings: Codings, sets: LabelSets, pairs: CodingPairs
) -> tuple[dict[str, Any], _Patterns | None]:
    """Exact-match figures over label sets (each set one nominal value)."""
    value = sets.of_coding
    agree = value[pairs.a] == value[pairs.b]
    # Agreeing pairs per unit: Σ_v n_uv² = m_u + 2 × agreeing pairs.
    agreeing = np.bincount(pairs.unit, weights=agree, minlength=len(codings.units))
    pairable = pairs.pairable
    m_p, agreeing_p = pairs.m[pairable].astype(np.float64), agreeing[pairable]
    n_v = np.bincount(value[pairable[codings.unit]], minlength=len(sets.sets)).astype(np.float64)
    n = m_p.sum()
    figures: dict[str, Any] = {
        "krippendorff_alpha": math.nan,
        "alpha_ci95": None,
        "n_units_pairable": int(pairable.sum()),
        "n_pairable_values": int(n),
        "fleiss_kappa": None,
        "fleiss_kappa_note": "no unit was coded by two or more coders",
        "percent_agreement": math.nan,
        "cohen_kappa": _set_pair_kappas(codings, value, pairs, agree),
    }
    if not len(m_p):
        return figures, None
    observed = m_p - 2 * agreeing_p / (m_p - 1)
    expected = n**2 - (n_v**2).sum()
    figures["krippendorff_alpha"] = float(_alpha_ratio(n, observed.sum(), expected))
    figures["percent_agreement"] = float((2 * agreeing_p / (m_p * (m_p - 1))).mean())
    figures["fleiss_kappa"], figures["fleiss_kappa_note"] = _set_fleiss(m_p, agreeing_p, n_v)
    patterns = None
    if expected > 0 and n >= 2:
        patterns = _label_set_patterns(observed, m_p, expected)
    return figures, patterns


def _set_fleiss(m_p: np.ndarray, agreeing_p: np.ndarray, n_v: np.ndarray):
    ratings = np.unique(m_p).astype(np.int64)
    if len(ratings) > 1:
        return None, (
            f"units have between {ratings.min()} and {ratings.max()} ratings; "
            "Fleiss' kappa needs the same number for every unit"
        )
    raters = float(ratings[0])
    p_value = n_v / (len(m_p) * raters)
    p_bar = ((2 * agreeing_p) / (raters * (raters - 1))).mean()
    p_e = (p_value**2).sum()
    if p_e == 1:
        return None, "every rating has the same value; Fleiss' kappa is undefined"
    return float((p_bar - p_e) / (1 - p_e)), f"{len(m_p)} units with {int(raters)} ratings each"


def _set_pair_kappas(
    codings: Codings, value: np.ndarray, pairs: CodingPairs, agree: np.ndarray
) -> list[dict[str, Any]]:
    """Cohen's kappa and agreement of each coder pair on the units both coded (exact sets)."""
    n_kinds, n_values = len(pairs.kinds), int(value.max(initial=0)) + 1
    n_pair = np.bincount(pairs.kind, minlength=n_kinds)
    agreeing = np.bincount(pairs.kind, weights=agree, minlength=n_kinds)
    # Σ_v (a's count of v) × (b's count of v), per pair of coders.
    if n_kinds * n_values <= 10_000_000:
        first = np.bincount(pairs.kind * n_values + value[pairs.a], minlength=n_kinds * n_values)
        second = np.bincount(pairs.kind * n_values + value[pairs.b], minlength=n_kinds * n_values)
        margins = (first * second).reshape(n_kinds, n_values).sum(axis=1).astype(np.float64)
    else:
        first, first_n = np.unique(pairs.kind * n_values + value[pairs.a], return_counts=True)
        second, second_n = np.unique(pairs.kind * n_values + value[pairs.b], return_counts=True)
        shared, at_first, at_second = np.intersect1d(first, second, return_indices=True)
        margins = np.bincount(
            shared // n_values,
            weights=(first_n[at_first] * second_n[at_second]).astype(np.float64),
            minlength=n_kinds,
        )
    result = []
    for a, b, i in pairs.by_coder_pair(len(codings.coders)):
        n = int(n_pair[i]) if i is not None else 0
        kappa = share = math.nan
        if n:
            share = float(agreeing[i] / n)
            kappa = _kappa(share, margins[i] / n**2)
        result.append(
            {
                "coder_a": str(codings.coders[a]),
                "coder_b": str(codings.coders[b]),
                "kappa": kappa,
                "percent_agreement": share,
                "n": n,
            }
        )
    return result


def masi_agreement(sets: np.ndarray, n_v: np.ndarray) -> float:
    """Σ n_c n_k J(c,k)·M(c,k) over all ordered pairs of label sets, c = k included.

    MASI depends on a pair of sets only through their sizes a, b and intersection size i.
    For each t, Σ_T F_a(T) F_b(T), with F_a(T) the count of the values of size a that
    contain the t-subset T, equals Σ n_c n_k C(i, t) over the pairs of sets of sizes
    (a, b); the binomial inversion of these moments gives the weight of each (a, b, i).
    Only subsets of the sets that occur are enumerated, so the cost grows with 2^size
    per set, not with the square of the number of distinct sets.
    """
    used = n_v > 0
    sets, n_v = sets[used], n_v[used]
    sizes = sets.sum(axis=1)
    if len(sizes) == 0:
        return 0.0
    if sizes.max() > MAX_ENUMERATED_SET_SIZE:
        return _masi_agreement_dense(n_v, sets, sizes.astype(np.float64))
    size_values, size_pos = np.unique(sizes, return_inverse=True)
    n_sizes, top, n_codes = len(size_values), int(size_values.max()), sets.shape[1]
    members_of = {}
    for a in size_values.tolist():
        chosen = np.flatnonzero(sizes == a)
        members_of[a] = chosen, np.nonzero(sets[chosen])[1].reshape(len(chosen), a)
    moments = np.zeros((top + 1, n_sizes, n_sizes))
    for t in range(top + 1):
        keys, weights, rows = [], [], []
        for a in size_values[size_values >= t].tolist():
            chosen, members = members_of[a]
            combos = np.array(list(combinations(range(a), t)), dtype=np.int64)
            combos = combos.reshape(math.comb(a, t), t)
            keys.append(members[:, combos].reshape(len(chosen) * len(combos), t))
            weights.append(np.repeat(n_v[chosen], len(combos)))
            rows.append(np.repeat(size_pos[chosen], len(combos)))
        subsets = np.concatenate(keys)
        if t == 0:
            subset_id, n_subsets = np.zeros(len(subsets), dtype=np.int64), 1
        elif n_codes**t < 2**62:
            code = subsets @ (n_codes ** np.arange(t - 1, -1, -1, dtype=np.int64))
            distinct, subset_id = np.unique(code, return_inverse=True)
            n_subsets = len(distinct)
        else:
            distinct, subset_id = np.unique(subsets, axis=0, return_inverse=True)
            n_subsets = len(distinct)
        totals = np.bincount(
            np.concatenate(rows) * n_subsets + subset_id.ravel(),
            weights=np.concatenate(weights),
            minlength=n_sizes * n_subsets,
        ).reshape(n_sizes, n_subsets)
        moments[t] = totals @ totals.T
    # inversion[t, i] = (-1)^(t-i) C(t, i): moments over C(i, t) → pairs per i.
    inversion = np.array(
        [[(-1) ** (t - i) * math.comb(t, i) if i <= t else 0 for i in range(top + 1)]
         for t in range(top + 1)], dtype=np.float64,
    )  # fmt: skip
    per_intersection = np.einsum("tab,ti->abi", moments, inversion)
    a = size_values[:, None, None].astype(np.float64)
    b = size_values[None, :, None].astype(np.float64)
    i = np.arange(top + 1, dtype=np.float64)[None, None, :]
    jm = np.where(i <= np.minimum(a, b), 1.0 - _masi_from_sizes(a, b, i), 0.0)
    return float((per_intersection * jm).sum())


MAX_ENUMERATED_SET_SIZE = 12


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


def masi_alpha(
    codings: Codings, sets: LabelSets, pairs: CodingPairs
) -> tuple[dict[str, Any], _Patterns | None]:
    """Alpha over label sets with the MASI distance, and the patterns for its interval."""
    result: dict[str, Any] = {"alpha": math.nan, "alpha_ci95": None}
    pairable = pairs.pairable
    if not pairable.any():
        return result, None
    value = sets.of_coding
    va, vb = value[pairs.a], value[pairs.b]
    distance = _masi_from_sizes(sets.sizes[va], sets.sizes[vb], sets.common(va, vb))
    m_p = pairs.m[pairable].astype(np.float64)
    # Each unordered pair counts twice in the coincidences, weighted 1 / (m_u − 1).
    per_unit = np.bincount(pairs.unit, weights=distance, minlength=len(codings.units))
    observed = 2 * per_unit[pairable] / (m_p - 1)
    n_v = np.bincount(value[pairable[codings.unit]], minlength=len(sets.sets)).astype(np.float64)
    n = m_p.sum()
    expected = n**2 - masi_agreement(sets.sets, n_v)
    result["alpha"] = float(_alpha_ratio(n, observed.sum(), expected))
    if not (expected > 0 and n >= 2):
        return result, None
    return result, _label_set_patterns(observed, m_p, expected)


# Figures per code (present / absent)


def per_code_figures(
    codings: Codings, pairs: CodingPairs, sets: LabelSets
) -> tuple[dict[str, dict[str, Any]], _Patterns | None]:
    """Binary present/absent figures for every code, from the units' patterns.

    A pairable unit's contribution to a code's figures depends only on its pattern: its
    number of coders m and the number n1 of them who applied the code. Units without the
    code (n1 = 0) are counted by subtraction, so the work grows with the code
    applications, not with units × codes.
    """
    n_codes = len(codings.codes)
    m, pairable = pairs.m, pairs.pairable
    applied_unit = codings.unit[codings.applied_coding]
    kept = pairable[applied_unit]
    keys, n1 = _counts(applied_unit[kept] * n_codes + codings.applied_code[kept])
    m_values, units_per_m = np.unique(m[pairable], return_counts=True)
    offsets = (np.cumsum(m_values + 1) - (m_values + 1)).astype(np.int64)
    n_patterns = int((m_values + 1).sum())
    pattern_m = np.repeat(m_values, m_values + 1).astype(np.float64)
    pattern_n1 = (np.arange(n_patterns) - np.repeat(offsets, m_values + 1)).astype(np.float64)
    pattern_n0 = pattern_m - pattern_n1
    at = offsets[np.searchsorted(m_values, m[keys // n_codes])] + n1
    counts = np.bincount(
        (keys % n_codes) * n_patterns + at, minlength=n_codes * n_patterns
    ).reshape(n_codes, n_patterns)
    if n_patterns:
        counts[:, offsets] = units_per_m[None, :] - np.add.reduceat(counts, offsets, axis=1)
    n_pairable = int(pairable.sum())
    n_total = float((m_values * units_per_m).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        o_01 = pattern_n0 * pattern_n1 / (pattern_m - 1)  # each unit's o_01 per pattern
        agreeing = (pattern_n1 * (pattern_n1 - 1) + pattern_n0 * (pattern_n0 - 1)) / (
            pattern_m * (pattern_m - 1)
        )
    disagreement = counts @ o_01
    ones = counts @ pattern_n1
    alphas = _alpha_ratio(n_total, 2 * disagreement, 2 * ones * (n_total - ones))
    percent = counts @ agreeing / n_pairable if n_pairable else np.full(n_codes, math.nan)
    disagreeing_units = counts[:, (pattern_n1 > 0) & (pattern_n0 > 0)].sum(axis=1)
    prevalence = np.bincount(codings.applied_code, minlength=n_codes) / len(codings.unit)
    pair_kappas = _per_code_pair_kappas(codings, pairs, sets)
    fleiss = _per_code_fleiss(m_values, counts, pattern_n1, pattern_n0, n_pairable)
    result = {}
    for k, code in enumerate(codings.codes):
        code_pairs = [
            {"coder_a": p["coder_a"], "coder_b": p["coder_b"], "kappa": p["kappas"][k], "n": p["n"]}
            for p in pair_kappas
        ]
        defined = [p["kappa"] for p in code_pairs if not math.isnan(p["kappa"])]
        result[str(code)] = {
            "alpha": float(alphas[k]),
            "alpha_ci95": None,
            "kappa": float(np.mean(defined)) if defined else math.nan,
            "cohen_kappa": code_pairs,
            "fleiss_kappa": fleiss[0][k] if fleiss[0] is not None else None,
            "fleiss_kappa_note": fleiss[1],
            "percent_agreement": float(percent[k]),
            "n_units": n_pairable,
            "n_pairable_values": int(n_total),
            "prevalence": float(prevalence[k]),
            "units_with_disagreement": int(disagreeing_units[k]),
        }
    if not n_pairable or not n_codes:
        return result, None
    values = np.column_stack([o_01, pattern_n1, pattern_m])

    def finish(sums: np.ndarray) -> np.ndarray:
        o_rep, ones_rep, n_rep = sums[..., 0], sums[..., 1], sums[..., 2]
        return _alpha_ratio(n_rep, 2 * o_rep, 2 * ones_rep * (n_rep - ones_rep))

    return result, _Patterns(counts, values, finish)


def _counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and their counts; a stable sort is fast on keys already nearly sorted."""
    ordered = np.sort(keys, kind="stable")
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _per_code_fleiss(
    m_values: np.ndarray, counts: np.ndarray, n1: np.ndarray, n0: np.ndarray, n_units: int
) -> tuple[list | None, str]:
    if len(m_values) == 0:
        return None, "no unit was coded by two or more coders"
    if len(m_values) > 1:
        return None, (
            f"units have between {int(m_values.min())} and {int(m_values.max())} ratings; "
            "Fleiss' kappa needs the same number for every unit"
        )
    raters = float(m_values[0])
    p1 = (counts @ n1) / (n_units * raters)
    p_bar = (counts @ ((n1**2 + n0**2 - raters) / (raters * (raters - 1)))) / n_units
    p_e = p1**2 + (1 - p1) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1, (p_bar - p_e) / (1 - p_e), np.nan)
    note = f"{int(n_units)} units with {int(raters)} ratings each"
    return [float(x) if np.isfinite(x) else None for x in kappa], note


def _per_code_pair_kappas(
    codings: Codings, pairs: CodingPairs, sets: LabelSets
) -> list[dict[str, Any]]:
    """Cohen's kappa per code for each coder pair, from 2 × 2 tables counted per pair kind.

    For each pair of codings of a unit, the codes of the first coding are listed: they
    count towards "a applied" and, where the second coding's set has them too, "both
    applied"; the codes of the second coding count towards "b applied".
    """
    n_codes, kind, n_kinds = len(codings.codes), pairs.kind, len(pairs.kinds)
    n_pair = np.bincount(kind, minlength=n_kinds)
    per_coding = np.bincount(codings.applied_coding, minlength=len(codings.unit))
    starts = np.cumsum(per_coding) - per_coding
    cells = n_kinds * n_codes
    lengths = per_coding[pairs.a]
    code_a = codings.applied_code[_ranges(starts[pairs.a], lengths)]
    cell_a = np.repeat(kind, lengths) * n_codes + code_a
    a_applied = np.bincount(cell_a, minlength=cells)
    in_b = sets.has(np.repeat(sets.of_coding[pairs.b], lengths), code_a)
    both = np.bincount(cell_a[in_b], minlength=cells)
    lengths = per_coding[pairs.b]
    code_b = codings.applied_code[_ranges(starts[pairs.b], lengths)]
    b_applied = np.bincount(np.repeat(kind, lengths) * n_codes + code_b, minlength=cells)
    result = []
    for a, b, i in pairs.by_coder_pair(len(codings.coders)):
        n = int(n_pair[i]) if i is not None else 0
        kappas = [math.nan] * n_codes
        if n:
            rows = slice(i * n_codes, (i + 1) * n_codes)
            ra, rb = a_applied[rows] / n, b_applied[rows] / n
            with np.errstate(divide="ignore", invalid="ignore"):
                observed = 1 - (a_applied[rows] + b_applied[rows] - 2 * both[rows]) / n
                expected = ra * rb + (1 - ra) * (1 - rb)
                kappas = np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)
            kappas = [float(x) for x in kappas]
        result.append(
            {
                "coder_a": str(codings.coders[a]),
                "coder_b": str(codings.coders[b]),
                "kappas": kappas,
                "n": n,
            }
        )
    return result


# --------------------------------------------------------------------------------------
# The report


def agreement_report(
    table: pd.DataFrame | Codings,
    *,
    mode: str = "auto",
    level: str = "nominal",
    replicates: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Every figure for a long table (or its codings already as arrays, see
    ``analysis.codings.project_codings``); the one function behind the command and the page."""
    if mode not in MODES:
        raise AgreementInputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if level not in LEVELS:
        raise AgreementInputError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    codings = table if isinstance(table, Codings) else to_codings(table)
    if len(codings.unit) == 0:
        raise AgreementInputError("no codings to measure")
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
    pairs = coding_pairs(codings)
    overall, exact_patterns = label_set_figures(codings, sets, pairs)
    report.update(overall)
    report["overall_note"] = (
        "Overall figures compare each coder's label set as one nominal value (exact match); "
        "masi_alpha gives partial credit to overlapping sets; per_code reads each code as "
        "present or absent."
    )
    masi, masi_patterns = masi_alpha(codings, sets, pairs)
    per_code, code_patterns = per_code_figures(codings, pairs, sets)
    if replicates > 0:
        rng = np.random.default_rng(seed)
        if exact_patterns is not None:
            report["alpha_ci95"] = percentile_interval(
                exact_patterns.replicates(rng, replicates)[:, 0]
            )
        if masi_patterns is not None:
            masi["alpha_ci95"] = percentile_interval(
                masi_patterns.replicates(rng, replicates)[:, 0]
            )
        if code_patterns is not None:
            code_reps = code_patterns.replicates(rng, replicates)
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
    if report["masi_alpha_ci95"] or report["alpha_ci95"]:
        parts.append(
            "Intervals are 2.5th to 97.5th percentiles over bootstrap resamples of units; "
            "per-code alphas were recomputed in full on each resample, while for the "
            "label-set alphas the expected disagreement was held at its value in the full "
            "data (Hayes & Krippendorff, 2007)."
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
