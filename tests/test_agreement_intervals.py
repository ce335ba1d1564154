"""Bootstrap intervals equal those of recomputing alpha on each resample of units.

The fast path never materialises a resample; these tests do, with the same seeded unit
counts, and recompute every replicate with the krippendorff package (or nltk for MASI).
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


def test_per_code_and_masi_intervals_equal_recomputing_each_resample():
    rows = random_sets(3)
    units = len(rows[0])
    report = agreement_report(long_sets(rows), replicates=REPLICATES, seed=SEED)
    weights = np.concatenate(list(bootstrap_weights(units, REPLICATES, SEED)))
    for code in "abcd":
        binary = np.array([[float(code in labels) for labels in row] for row in rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            alphas = [krippendorff.alpha(resampled(binary, w), level_of_measurement="nominal")
                      for w in weights]  # fmt: skip
        assert report["per_code"][code]["alpha_ci95"] == pytest.approx(
            reference_interval(alphas), abs=1e-9
        )
    masi_alphas = []
    for w in weights:
        data = [
            (f"c{c}", f"u{u}-{copy}", labels)
            for c, row in enumerate(rows)
            for u, labels in enumerate(row)
            for copy in range(int(w[u]))
        ]
        masi_alphas.append(AnnotationTask(data=data, distance=masi_distance).alpha())
    assert report["masi_alpha_ci95"] == pytest.approx(reference_interval(masi_alphas), abs=1e-9)


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
