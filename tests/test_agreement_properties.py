"""Agreement figures match independent implementations on random data to 1e-9.

The references: the krippendorff package (alpha at every level), statsmodels'
fleiss_kappa, scikit-learn's cohen_kappa_score and nltk's AnnotationTask given the exact
MASI distance of Passonneau (2006).
"""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nltk.metrics.agreement import AnnotationTask
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from analysis.agreement import LEVELS, agreement_report, alpha, masi_distance

# The references warn (and return NaN) where a figure is undefined; the tests compare NaNs.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
TOLERANCE = 1e-9
CODES = ["a", "b", "c", "d"]
quick = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def matrix(draw_values, *, missing: bool):
    """Coders × units matrices of small integers, NaN for missing when allowed."""
    cell = st.one_of(st.none(), draw_values) if missing else draw_values
    return st.integers(2, 5).flatmap(
        lambda coders: st.integers(2, 25).flatmap(
            lambda units: st.lists(
                st.lists(cell, min_size=units, max_size=units),
                min_size=coders,
                max_size=coders,
            )
        )
    )


def long_single(rows: list[list[int | None]]) -> pd.DataFrame:
    records = [
        (f"u{u:03d}", f"coder{c}", str(value))
        for c, row in enumerate(rows)
        for u, value in enumerate(row)
        if value is not None
    ]
    return pd.DataFrame(records, columns=["unit", "coder", "code"])


def as_array(rows: list[list[int | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def assert_same(actual: float, expected: float) -> None:
    """Equal to the tolerance, or both undefined."""
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=TOLERANCE)


def usable_for_alpha(data: np.ndarray) -> bool:
    values = data[~np.isnan(data)]
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    return len(np.unique(values)) > 1 and bool(pairable.any())


@pytest.mark.parametrize("level", LEVELS)
@quick
@given(rows=matrix(st.integers(1, 6), missing=True))
def test_alpha_matches_the_krippendorff_package_at_every_level(level, rows):
    data = as_array(rows)
    assume(usable_for_alpha(data))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    report = agreement_report(long_single(rows), level=level, replicates=0)
    assert report["mode"] == "single"
    assert_same(report["krippendorff_alpha"], expected)
    assert_same(alpha(data, level), expected)  # the fast path over a coders × units matrix


@quick
@given(rows=matrix(st.integers(1, 4), missing=False))
def test_fleiss_kappa_matches_statsmodels_on_complete_data(rows):
    data = np.array(rows, dtype=int)
    table, _ = aggregate_raters(data.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = sm_fleiss_kappa(table)
    assume(math.isfinite(expected))
    report = agreement_report(long_single(rows), replicates=0)
    assert report["fleiss_kappa"] == pytest.approx(expected, abs=TOLERANCE)


@quick
@given(rows=matrix(st.integers(1, 4), missing=True))
def test_cohen_kappa_of_each_pair_matches_scikit_learn(rows):
    data = as_array(rows)
    assume(usable_for_alpha(data))
    report = agreement_report(long_single(rows), replicates=0)
    for pair in report["cohen_kappa"]:
        a = int(pair["coder_a"].removeprefix("coder"))
        b = int(pair["coder_b"].removeprefix("coder"))
        both = ~np.isnan(data[a]) & ~np.isnan(data[b])
        assert pair["n"] == both.sum()
        if not both.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = cohen_kappa_score(data[a][both], data[b][both])
        assert_same(pair["kappa"], expected)


label_sets = st.frozensets(st.sampled_from(CODES), max_size=3)


def multi_rows(*, missing: bool = True):
    cell = st.one_of(st.none(), label_sets) if missing else label_sets
    return st.integers(2, 4).flatmap(
        lambda coders: st.integers(2, 20).flatmap(
            lambda units: st.lists(
                st.lists(cell, min_size=units, max_size=units), min_size=coders, max_size=coders
            )
        )
    )


def long_multi(rows: list[list[frozenset | None]]) -> pd.DataFrame:
    records = []
    for c, row in enumerate(rows):
        for u, labels in enumerate(row):
            if labels is None:
                continue
            unit, coder = f"u{u:03d}", f"coder{c}"
            records.extend((unit, coder, code) for code in sorted(labels))
            if not labels:
                records.append((unit, coder, ""))
    return pd.DataFrame(records, columns=["unit", "coder", "code"])


def pairable_values(rows):
    values = []
    for u in range(len(rows[0])):
        column = [row[u] for row in rows if row[u] is not None]
        if len(column) >= 2:
            values.extend(column)
    return values


@quick
@given(rows=multi_rows())
def test_masi_alpha_matches_nltk_with_the_exact_masi_distance(rows):
    values = pairable_values(rows)
    assume(len(set(values)) > 1)
    task = AnnotationTask(
        data=[
            (f"coder{c}", f"u{u:03d}", labels)
            for c, row in enumerate(rows)
            for u, labels in enumerate(row)
            if labels is not None
        ],
        distance=masi_distance,
    )
    report = agreement_report(long_multi(rows), mode="multi", replicates=0)
    assert report["masi_alpha"] == pytest.approx(task.alpha(), abs=TOLERANCE)


@quick
@given(rows=multi_rows())
def test_per_code_and_label_set_figures_match_the_krippendorff_package(rows):
    values = pairable_values(rows)
    assume(len(set(values)) > 1)
    report = agreement_report(long_multi(rows), mode="multi", replicates=0)
    set_ids = {labels: i for i, labels in enumerate(sorted(set(values), key=sorted))}
    exact = np.array(
        [[np.nan if v is None else set_ids.get(v, -1) for v in row] for row in rows], float
    )
    exact[exact == -1] = 99  # a set seen only in unpairable units
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = krippendorff.alpha(exact, level_of_measurement="nominal")
    assert_same(report["krippendorff_alpha"], expected)
    for code, figures in report["per_code"].items():
        binary = np.array(
            [[np.nan if v is None else float(code in v) for v in row] for row in rows]
        )
        if usable_for_alpha(binary):
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = krippendorff.alpha(binary, level_of_measurement="nominal")
            assert_same(figures["alpha"], expected)
        else:
            assert math.isnan(figures["alpha"])
        for pair in figures["cohen_kappa"]:
            a = int(pair["coder_a"].removeprefix("coder"))
            b = int(pair["coder_b"].removeprefix("coder"))
            both = ~np.isnan(binary[a]) & ~np.isnan(binary[b])
            if not both.any():
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = cohen_kappa_score(binary[a][both], binary[b][both])
            assert_same(pair["kappa"], expected)


@quick
@given(rows=multi_rows(missing=False))
def test_per_code_fleiss_kappa_matches_statsmodels_on_complete_data(rows):
    report = agreement_report(long_multi(rows), mode="multi", replicates=0)
    for code, figures in report["per_code"].items():
        binary = np.array([[int(code in v) for v in row] for row in rows])
        table, _ = aggregate_raters(binary.T, n_cat=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = sm_fleiss_kappa(table)
        if math.isfinite(expected):
            assert figures["fleiss_kappa"] == pytest.approx(expected, abs=TOLERANCE)
        else:
            assert figures["fleiss_kappa"] is None


def test_masi_alpha_with_label_sets_of_more_than_twelve_codes_still_matches_nltk():
    many = [f"k{i:02d}" for i in range(14)]
    rows = [
        [frozenset(many), frozenset(many[:3]), frozenset(["a"]), frozenset()],
        [frozenset(many[:13]), frozenset(many[2:5]), frozenset(["a", "b"]), frozenset()],
        [frozenset(many), None, frozenset(["b"]), frozenset(["a"])],
    ]
    task = AnnotationTask(
        data=[
            (f"coder{c}", f"u{u:03d}", labels)
            for c, row in enumerate(rows)
            for u, labels in enumerate(row)
            if labels is not None
        ],
        distance=masi_distance,
    )
    report = agreement_report(long_multi(rows), replicates=50)
    assert report["masi_alpha"] == pytest.approx(task.alpha(), abs=TOLERANCE)
    assert report["masi_alpha_ci95"] is not None
