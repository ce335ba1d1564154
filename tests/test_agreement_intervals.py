"""Bootstrap intervals agree with recomputing alpha on each resample of units.

The fast paths never materialise a resample; these tests do. Single-valued data use the
same seeded unit counts, so the intervals are equal. Multi-label figures draw pattern
counts instead of units (the same distribution, other random numbers), so their
intervals are compared with a brute-force bootstrap within Monte Carlo error.
"""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from nltk.metrics.agreement import AnnotationTask

from analysis.agreement import agreement_report, bootstrap_weights, masi_distance

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
REPLICATES = 60
SEED = 7


def random_single(seed: int, units: int = 30, coders: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 5, size=units)
    data = np.where(rng.random((coders, units)) < 0.75, truth, rng.integers(1, 5, (coders, units)))
    data = data.astype(float)
    data[rng.random((coders, units)) < 0.15] = np.nan
    data[:, 0] = [1, 2, 3]  # every unit below is pairable by construction
    for u in range(units):
        if (~np.isnan(data[:, u])).sum() < 2:
            data[:2, u] = truth[u]
    return data


def long(data: np.ndarray) -> pd.DataFrame:
    rows = [
        (f"u{u:03d}", f"c{c}", str(int(v)))
        for c, row in enumerate(data)
        for u, v in enumerate(row)
        if not np.isnan(v)
    ]
    return pd.DataFrame(rows, columns=["unit", "coder", "code"])


def resampled(data: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.repeat(data, counts.astype(int), axis=1)


def reference_interval(alphas: list[float]) -> list[float]:
    finite = np.array([a for a in alphas if np.isfinite(a)])
    return list(np.percentile(finite, [2.5, 97.5]))


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_single_valued_interval_equals_recomputing_each_resample(level):
    data = random_single(1)
    report = agreement_report(long(data), level=level, replicates=REPLICATES, seed=SEED)
    weights = np.concatenate(list(bootstrap_weights(data.shape[1], REPLICATES, SEED)))
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = [
            krippendorff.alpha(resampled(data, w), level_of_measurement=level) for w in weights
        ]
    assert report["alpha_ci95"] == pytest.approx(reference_interval(alphas), abs=1e-9)
    low, high = report["alpha_ci95"]
    assert low <= report["krippendorff_alpha"] <= high


def random_sets(seed: int, units: int = 25, coders: int = 3) -> list[list[frozenset]]:
    rng = np.random.default_rng(seed)
    codes = np.array(list("abcd"))
    rows = []
    for _ in range(coders):
        rows.append([frozenset(codes[rng.random(4) < 0.35].tolist()) for _ in range(units)])
    return rows


def long_sets(rows: list[list[frozenset]]) -> pd.DataFrame:
    records = []
    for c, row in enumerate(rows):
        for u, labels in enumerate(row):
            records += [(f"u{u:03d}", f"c{c}", code) for code in sorted(labels)] or [
                (f"u{u:03d}", f"c{c}", "")
            ]
    return pd.DataFrame(records, columns=["unit", "coder", "code"])


LARGE_B = 4000
# Two independent percentile estimates from 4,000 replicates each differ by well under a
# tenth of the interval's width; holding the expected disagreement fixed or not moves the
# label-set intervals here by more than that.
MONTE_CARLO = 0.1


def brute_force(rows: list[list[frozenset]], alpha_of, seed: int = 99) -> np.ndarray:
    """alpha_of(resampled rows) for LARGE_B resamples of units drawn one by one."""
    rng = np.random.default_rng(seed)
    units = len(rows[0])
    alphas = []
    for _ in range(LARGE_B):
        drawn = rng.integers(0, units, size=units)
        alphas.append(alpha_of([[row[u] for u in drawn] for row in rows]))
    return np.array(alphas)


def assert_same_distribution(interval: list[float], reference: np.ndarray) -> None:
    expected = reference_interval(list(reference))
    width = expected[1] - expected[0]
    assert interval == pytest.approx(expected, abs=MONTE_CARLO * width)


def test_per_code_intervals_match_recomputing_alpha_on_resampled_units():
    rows = random_sets(3)
    report = agreement_report(long_sets(rows), replicates=LARGE_B, seed=SEED)
    for code in "ab":

        def alpha_of(resampled, code=code):
            binary = np.array([[float(code in labels) for labels in row] for row in resampled])
            with np.errstate(divide="ignore", invalid="ignore"):
                return krippendorff.alpha(binary, level_of_measurement="nominal")

        assert_same_distribution(
            report["per_code"][code]["alpha_ci95"], brute_force(rows, alpha_of)
        )


def fixed_expected(rows: list[list[frozenset]], distance) -> tuple[float, float]:
    """(expected disagreement per pair of values, alpha) of the full data, by brute force."""
    values = [labels for row in rows for labels in row]
    n = len(values)
    expected = sum(distance(a, b) for a in values for b in values) / (n * (n - 1))
    return expected, 1 - observed(rows, distance) / expected


def observed(rows: list[list[frozenset]], distance) -> float:
    """Observed disagreement per pairable value (every unit here has all coders)."""
    m = len(rows)
    total = sum(
        distance(a, b) / (m - 1)
        for u in range(len(rows[0]))
        for i, a in enumerate(row[u] for row in rows)
        for j, b in enumerate(row[u] for row in rows)
        if i != j
    )
    return total / (m * len(rows[0]))


def test_label_set_intervals_match_resampling_units_with_the_expected_disagreement_fixed():
    rows = random_sets(3)
    report = agreement_report(long_sets(rows), replicates=LARGE_B, seed=SEED)
    task = AnnotationTask(
        data=[
            (f"c{c}", f"u{u}", labels) for c, row in enumerate(rows) for u, labels in enumerate(row)
        ],
        distance=masi_distance,
    )

    def exact(a, b):
        return float(a != b)

    for distance, figure, interval in (
        (masi_distance, report["masi_alpha"], report["masi_alpha_ci95"]),
        (exact, report["krippendorff_alpha"], report["alpha_ci95"]),
    ):
        expected, alpha = fixed_expected(rows, distance)
        assert alpha == pytest.approx(figure, abs=1e-9)
        reference = brute_force(
            rows, lambda resampled, d=distance, e=expected: 1 - observed(resampled, d) / e
        )
        assert_same_distribution(interval, reference)
    assert report["masi_alpha"] == pytest.approx(task.alpha(), abs=1e-9)


def test_intervals_are_reproducible_with_the_seed_and_change_with_it():
    data = long(random_single(2))
    first = agreement_report(data, replicates=200, seed=11)
    again = agreement_report(data, replicates=200, seed=11)
    other = agreement_report(data, replicates=200, seed=12)
    assert first["alpha_ci95"] == again["alpha_ci95"]
    assert first["alpha_ci95"] != other["alpha_ci95"]


def test_no_interval_without_replicates():
    report = agreement_report(long(random_single(4)), replicates=0)
    assert report["alpha_ci95"] is None
    assert report["krippendorff_alpha"] is not None
