"""`correlate`: Spearman between two count tables in the layouts people keep them in."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from scipy import stats

from analysis.correlation import normalize_period, read_table_text

# Forum mentions in the study's layout: empty first header, periods as first days of months.
FORUM = """\
,2021-01-01,2021-02-01,2021-03-01,2021-04-01,2021-05-01
bert,10.0,8.0,9.0,7.0,6.0
gpt2,1.0,3.0,2.0,5.0,4.0
t5,2.0,2.0,3.0,4.0,6.0
whisper,0.0,0.0,1.0,,2.0
vit,4.0,1.0,0.0,2.0,3.0
clip,1.0,0.0,0.0,0.0,1.0
"""

# Hub uploads in the study's layout: more months, totals columns, a nameless and a SUM row.
HUB = """\
,2020-12,2021-01,2021-02,2021-03,2021-04,2021-05,2021-06,sum,cumulative sum
bert,50,40,45,60,70,90,100,455,455
gpt2,5,10,30,20,60,50,80,255,710
t5,1,4,4,8,12,20,30,79,789
whisper,,,,2,5,9,40,56,845
vit,0,9,3,1,6,7,2,28,873
llama,,,,,,,7,7,880
,1,1,,,,,,2,882
SUM,57,64,82,91,153,176,259,882,882
"""

FORUM_MONTHS = ["2021-01", "2021-02", "2021-03", "2021-04", "2021-05"]
HUB_MONTHS = ["2020-12", *FORUM_MONTHS, "2021-06"]
SHARED = ["bert", "gpt2", "t5", "vit", "whisper"]


def _frame(text: str) -> dict[str, dict[str, float]]:
    """An independent reading of the test tables: every cell, empty as 0."""
    rows = list(csv.reader(StringIO(text)))
    header = rows[0]
    return {
        row[0]: {h[:7]: float(v or 0) for h, v in zip(header[1:], row[1:], strict=False)}
        for row in rows[1:]
    }


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("correlate", *args, stdout=out)
    return out.getvalue()


def test_totals_across_names_match_scipy_over_each_tables_own_periods(tmp_path):
    forum, hub = _frame(FORUM), _frame(HUB)
    x = [sum(forum[n][m] for m in FORUM_MONTHS) for n in SHARED]
    y = [sum(hub[n][m] for m in HUB_MONTHS) for n in SHARED]
    expected = stats.spearmanr(x, y)
    output = _run(_write(tmp_path, "forum.csv", FORUM), _write(tmp_path, "hub.csv", HUB))
    assert (
        f"across names (totals over each table's own periods): n=5 "
        f"rho={expected.statistic:.4f} p={expected.pvalue:.3g}" in output
    )


def test_matched_window_sums_totals_over_the_shared_months_only(tmp_path):
    forum, hub = _frame(FORUM), _frame(HUB)
    x = [sum(forum[n][m] for m in FORUM_MONTHS) for n in SHARED]
    y = [sum(hub[n][m] for m in FORUM_MONTHS) for n in SHARED]
    expected = stats.spearmanr(x, y)
    own = stats.spearmanr(x, [sum(hub[n][m] for m in HUB_MONTHS) for n in SHARED])
    assert expected.statistic != own.statistic  # the two windows really differ here
    output = _run(
        _write(tmp_path, "forum.csv", FORUM),
        _write(tmp_path, "hub.csv", HUB),
        "--matched-window",
    )
    assert (
        f"across names (totals over shared periods): n=5 "
        f"rho={expected.statistic:.4f} p={expected.pvalue:.3g}" in output
    )


def test_per_name_rho_over_time_uses_the_shared_months_and_matches_scipy(tmp_path):
    forum, hub = _frame(FORUM), _frame(HUB)
    output_path = tmp_path / "out.csv"
    _run(
        _write(tmp_path, "forum.csv", FORUM),
        _write(tmp_path, "hub.csv", HUB),
        "--output",
        str(output_path),
    )
    rows = {r["name"]: r for r in csv.DictReader(output_path.open())}
    for name in SHARED:
        expected = stats.spearmanr(
            [forum[name][m] for m in FORUM_MONTHS], [hub[name][m] for m in FORUM_MONTHS]
        )
        assert rows[name]["n"] == "5"
        assert float(rows[name]["rho"]) == pytest.approx(expected.statistic, abs=1e-12)
        assert float(rows[name]["p"]) == pytest.approx(expected.pvalue, rel=1e-9)
    assert rows["bert"]["total_a"] == "40"
    assert rows["bert"]["total_b"] == "455"


def test_ignored_columns_and_rows_and_unshared_names_are_listed(tmp_path):
    output = _run(_write(tmp_path, "forum.csv", FORUM), _write(tmp_path, "hub.csv", HUB))
    assert "ignored columns: sum, cumulative sum" in output
    assert "ignored rows: line 8: no name; line 9: total row 'SUM'" in output
    assert "only in " + str(tmp_path / "forum.csv") + ": clip" in output
    assert "only in " + str(tmp_path / "hub.csv") + ": llama" in output
    assert "shared periods: 5 (2021-01 to 2021-05)" in output


def test_a_long_table_gives_the_same_figures_as_its_wide_form(tmp_path):
    forum = _frame(FORUM)
    long_lines = ["name,period,count"]
    for name, row in forum.items():
        long_lines += [f"{name},{month},{int(value)}" for month, value in row.items() if value]
    wide = _run(_write(tmp_path, "forum.csv", FORUM), _write(tmp_path, "hub.csv", HUB))
    long = _run(
        _write(tmp_path, "forum_long.csv", "\n".join(long_lines) + "\n"),
        _write(tmp_path, "hub.csv", HUB),
    )

    def figures(text: str) -> list[str]:
        return [line for line in text.splitlines() if "rho=" in line]

    assert figures(long) == figures(wide)
    assert "long table" in long


def test_a_constant_series_is_reported_as_undefined_not_as_a_number(tmp_path):
    a = "name,2021-01,2021-02,2021-03\nbert,1,1,1\nt5,1,2,3\ngpt2,0,4,1\n"
    b = "name,2021-01,2021-02,2021-03\nbert,1,2,3\nt5,3,2,1\ngpt2,1,1,2\n"
    output = _run(_write(tmp_path, "a.csv", a), _write(tmp_path, "b.csv", b))
    assert "bert  n=3 rho=undefined (a constant series)" in output
    assert "t5    n=3 rho=-1.0000" in output


def test_a_cell_that_is_not_a_number_names_file_line_and_column(tmp_path):
    bad = FORUM.replace("gpt2,1.0,3.0", "gpt2,1.0,three")
    path = _write(tmp_path, "forum.csv", bad)
    with pytest.raises(CommandError, match=r"forum.csv, line 3, column '2021-02-01': 'three'"):
        _run(path, _write(tmp_path, "hub.csv", HUB))


def test_a_table_without_periods_is_refused_and_no_output_is_written(tmp_path):
    path = _write(tmp_path, "codes.csv", "code,definition\nbug,Something broke\n")
    out = tmp_path / "out.csv"
    with pytest.raises(CommandError, match="no period columns"):
        _run(path, _write(tmp_path, "hub.csv", HUB), "--output", str(out))
    assert not out.exists()


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match=r"nope\.csv: no such file"):
        _run(str(tmp_path / "nope.csv"), _write(tmp_path, "hub.csv", HUB))


def test_a_repeated_name_in_a_wide_table_is_refused():
    with pytest.raises(ValueError, match="line 3: name 'bert' already on line 2"):
        read_table_text("name,2021-01\nbert,1\nbert,2\n", "t.csv")


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("2021-03", "2021-03"),
        ("2021-3", "2021-03"),
        ("2021-03-01", "2021-03"),
        ("2021-03-01 00:00:00", "2021-03"),
        ("2021-03-15", "2021-03-15"),
        ("2021-Q2", "2021-Q2"),
        ("2021", "2021"),
        ("sum", None),
        ("2021-13", None),
        ("Cumulative ratio", None),
    ],
)
def test_period_headers_are_recognized(text, period):
    assert normalize_period(text) == period


def test_tables_without_a_name_in_common_are_refused(tmp_path):
    a = _write(tmp_path, "a.csv", "name,2021-01\nbert,1\n")
    b = _write(tmp_path, "b.csv", "name,2021-01\nt5,1\n")
    with pytest.raises(CommandError, match="have no names in common"):
        _run(a, b)
