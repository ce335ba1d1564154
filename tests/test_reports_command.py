"""`report`: a project's report tables as CSV, with the basis stated."""

import csv
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analysis.correlation import read_table
from tests.factories_reports import make_report_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study(users):
    return make_report_project(users)


def _run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("report", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(StringIO(text)))


def test_frequency_csv_goes_to_stdout_and_the_basis_to_stderr(study):
    out, err = _run("report-study", "--kind", "frequency")
    rows = {r["code"]: r for r in _rows(out)}
    assert rows["ch"]["units"] == "3"
    assert rows["ch"]["share_of_units"] == "0.6"
    assert rows["ch.a.1"]["applications"] == "2"
    assert rows["be"]["share_of_applications"] == "0.285714"
    assert "basis: gold labels for 6 of 8 units" in err


def test_frequency_on_one_coders_codings_written_to_a_file(study, tmp_path):
    target = tmp_path / "alice.csv"
    out, _ = _run(
        "report-study", "--kind", "frequency", "--basis", "coder:alice", "--output", target
    )
    assert "basis: alice's submitted codings for 4 of 8 units" in out
    assert f"written: {target} (8 rows)" in out
    rows = {r["code"]: r for r in _rows(target.read_text())}
    assert rows["ch.a.1"]["units"] == "2"
    assert rows["ch.a.2"]["units"] == "0"


def test_quarterly_trend_for_a_round_reads_as_a_count_table_for_correlate(study, tmp_path):
    target = tmp_path / "trend.csv"
    out, _ = _run(
        "report-study",
        "--kind",
        "trend",
        "--by",
        "quarter",
        "--round",
        "Second",
        "--output",
        target,
    )
    assert "trend tests (Kendall's tau of the share against time, p < 0.05)" in out
    rows = {(r["code"], r["period"]): r for r in _rows(target.read_text())}
    assert rows[("ch.b.1", "2021-Q1")]["count"] == "1"
    assert rows[("ch.b.1", "2021-Q1")]["units"] == "2"
    table = read_table(str(target))
    assert table.counts["be.x"] == {"2021-Q1": 1.0}


def test_cooccurrence_on_all_codings(study):
    out, err = _run("report-study", "--kind", "cooccurrence", "--basis", "all")
    rows = {(r["code_a"], r["code_b"]): r for r in _rows(out)}
    assert rows[("ch.a.1", "ch.a.1")]["both"] == "3"
    assert rows[("ch.a.1", "ch.a.2")]["jaccard"] == "0.333333"
    assert "all coders' submitted codings: 5 codings" in err


def test_mentions_read_a_terms_file_with_aliases(study, tmp_path):
    terms = tmp_path / "models.txt"
    terms.write_text("# families\nbert\ngpt2 | gpt-2\n", encoding="utf-8")
    out, _ = _run("report-study", "--kind", "mentions", "--terms", terms)
    rows = {(r["term"], r["period"]): r for r in _rows(out)}
    assert rows[("gpt2", "2021-02")]["mentions"] == "1"
    assert rows[("gpt2", "2021-02")]["threads"] == "3"
    assert rows[("bert", "2021-01")]["mentions"] == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--kind", "frequency"), "no project with slug 'nope'"),
        (("report-study", "--kind", "frequency", "--basis", "coders"), "basis 'coders' is not"),
        (("report-study", "--kind", "frequency", "--basis", "coder:zed"), "no coder named 'zed'"),
        (("report-study", "--kind", "trend", "--round", "Pilot"), "no round named 'Pilot'"),
        (("report-study", "--kind", "mentions"), "--kind mentions needs --terms FILE"),
        (("report-study", "--kind", "mentions", "--terms", "/nonexistent.txt"), "no such file"),
        (("report-study", "--kind", "trend", "--terms", "x.txt"), "--terms is only for"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(study, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        _run(*args)


def test_a_terms_file_with_a_repeated_term_names_the_line(study, tmp_path):
    terms = tmp_path / "models.txt"
    terms.write_text("bert\nbert | b\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"models\.txt, line 2: term 'bert' already given"):
        _run("report-study", "--kind", "mentions", "--terms", terms)


def test_a_failed_report_writes_no_file(study, tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(CommandError):
        _run("report-study", "--kind", "trend", "--round", "Pilot", "--output", target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
