"""Published worked examples reproduce to three decimals, through the API and the command."""

from __future__ import annotations

import json
import math
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from analysis.agreement import agreement_report, alpha, masi_distance, write_long_csv

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", p. 8 (also in the
# krippendorff package's documentation): 4 coders × 12 units, missing values as NaN.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
KRIPPENDORFF_2011_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Fleiss (1971), psychiatric diagnoses of 30 patients by 6 raters (as carried by
# statsmodels' tests and R's irr::kappam.fleiss): kappa 0.430.
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip

# Cohen's kappa textbook example (Wikipedia, "Cohen's kappa", Simple example): two
# readers decide on 50 grant proposals; both yes 20, A yes B no 5, A no B yes 10, both
# no 15. p_o = 0.70, p_e = 0.50, kappa = 0.40.
COHEN_PROPOSALS = (
    [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
)


def krippendorff_table() -> pd.DataFrame:
    rows = [
        (f"unit{u + 1:02d}", f"coder{c + 1}", str(int(value)))
        for c, values in enumerate(KRIPPENDORFF_2011)
        for u, value in enumerate(values)
        if not math.isnan(value)
    ]
    return pd.DataFrame(rows, columns=["unit", "coder", "code"])


def fleiss_table() -> pd.DataFrame:
    rows = [
        (f"patient{p + 1:02d}", f"rater{r + 1}", str(value))
        for p, ratings in enumerate(FLEISS_1971)
        for r, value in enumerate(ratings)
    ]
    return pd.DataFrame(rows, columns=["unit", "coder", "code"])


def cohen_table() -> pd.DataFrame:
    rows = []
    for n, (a, b) in enumerate(COHEN_PROPOSALS):
        rows += [(f"proposal{n:02d}", "A", a), (f"proposal{n:02d}", "B", b)]
    return pd.DataFrame(rows, columns=["unit", "coder", "code"])


def run_command(table: pd.DataFrame, tmp_path: Path, *args: str) -> dict:
    path = tmp_path / "codings.csv"
    with path.open("w", newline="") as handle:
        write_long_csv(table.assign(unsure=False), handle)
    out = StringIO()
    call_command("agreement", "--input", str(path), "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("level", list(KRIPPENDORFF_2011_ALPHA))
def test_krippendorffs_own_example_reproduces_at_every_level(level):
    report = agreement_report(krippendorff_table(), level=level, replicates=0)
    assert report["mode"] == "single"
    assert round(report["krippendorff_alpha"], 3) == KRIPPENDORFF_2011_ALPHA[level]
    assert report["n_units_pairable"] == 11  # unit 12 has one value only
    assert report["n_pairable_values"] == 40
    assert round(alpha(np.array(KRIPPENDORFF_2011), level), 3) == KRIPPENDORFF_2011_ALPHA[level]


@pytest.mark.parametrize("level", list(KRIPPENDORFF_2011_ALPHA))
def test_krippendorffs_own_example_reproduces_through_the_command(level, tmp_path):
    report = run_command(krippendorff_table(), tmp_path, "--level", level)
    assert report["mode"] == "single"
    assert round(report["krippendorff_alpha"], 3) == KRIPPENDORFF_2011_ALPHA[level]
    low, high = report["alpha_ci95"]
    assert low < report["krippendorff_alpha"] < high


def test_fleiss_1971_diagnoses_give_kappa_0_430():
    report = agreement_report(fleiss_table(), replicates=0)
    assert round(report["fleiss_kappa"], 3) == 0.430
    assert report["fleiss_kappa_note"] == "30 units with 6 ratings each"


def test_fleiss_1971_diagnoses_through_the_command(tmp_path):
    report = run_command(fleiss_table(), tmp_path)
    assert round(report["fleiss_kappa"], 3) == 0.430
    assert report["n_units"] == 30
    assert report["n_coders"] == 6


def test_textbook_cohen_kappa_is_0_40():
    report = agreement_report(cohen_table(), replicates=0)
    (pair,) = report["cohen_kappa"]
    assert (pair["coder_a"], pair["coder_b"], pair["n"]) == ("A", "B", 50)
    assert round(pair["kappa"], 3) == 0.400
    assert round(pair["percent_agreement"], 3) == 0.700


def test_textbook_cohen_kappa_through_the_command(tmp_path):
    report = run_command(cohen_table(), tmp_path)
    assert round(report["cohen_kappa"][0]["kappa"], 3) == 0.400
    assert round(report["percent_agreement"], 3) == 0.700


def test_fleiss_kappa_is_null_with_a_reason_when_units_have_unequal_ratings():
    report = agreement_report(krippendorff_table(), replicates=0)
    assert report["fleiss_kappa"] is None
    assert "between 2 and 4 ratings" in report["fleiss_kappa_note"]


def test_masi_distance_follows_passonneau():
    a, b = frozenset("ab"), frozenset("abcd")
    assert masi_distance(a, a) == 0
    assert masi_distance(a, b) == pytest.approx(1 - 0.5 * 2 / 3)
    assert masi_distance(frozenset("ab"), frozenset("bc")) == pytest.approx(1 - 1 / 3 * 1 / 3)
    assert masi_distance(frozenset("a"), frozenset("b")) == 1
    assert masi_distance(frozenset(), frozenset()) == 0
    assert masi_distance(frozenset(), frozenset("a")) == 1
