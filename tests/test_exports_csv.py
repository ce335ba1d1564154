import io
import json
from io import StringIO

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from analysis.exports import ExportOptions, csv_lines, long_rows, wide_rows
from coding.models import Coding
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db


def _export(project, fmt, *extra, tmp_path=None) -> str:
    out = tmp_path / f"{fmt}.csv"
    call_command(
        "export_codings",
        project.slug,
        "--format",
        fmt,
        "--output",
        str(out),
        *extra,
        stdout=StringIO(),
    )
    return out.read_bytes().decode("utf-8")


def _read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def test_long_csv_reproduces_every_coding_in_the_database(users, tmp_path):
    project = make_coded_project(users)
    df = _read(_export(project, "long", "--no-formula-guard", tmp_path=tmp_path))

    assert list(df.columns[:3]) == ["unit", "coder", "code"]
    exported = {
        (int(r.unit), r.coder): (
            set(filter(None, df[(df.unit == r.unit) & (df.coder == r.coder)].code)),
            r.memo,
        )
        for r in df.itertuples()
    }
    stored = {}
    for coding in Coding.objects.filter(unit__project=project).prefetch_related(
        "applications__code"
    ):
        codes = {a.code.key for a in coding.applications.all()}
        if coding.not_relevant:
            codes.add("__not_relevant__")
        stored[(coding.unit_id, coding.coder.username)] = (codes, coding.memo)
    assert exported == stored
    quoted = df[df.quotes != ""].iloc[0]
    quote = json.loads(quoted.quotes)[0]
    assert quote["text"] == "Loading fails 😭 wit"  # 19 code points; the emoji is one
    assert (quote["start"], quote["end"]) == (0, 19)
    assert set(df[df.code == ""].coder) == {"bob"}


def test_wide_csv_matches_the_long_one(users, tmp_path):
    project = make_coded_project(users)
    long = _read(_export(project, "long", "--no-formula-guard", tmp_path=tmp_path))
    wide = _read(_export(project, "wide", tmp_path=tmp_path))

    for row in wide.itertuples(index=False):
        record = (
            row._asdict() if hasattr(row, "_asdict") else dict(zip(wide.columns, row, strict=True))
        )
        for column, value in zip(wide.columns, row, strict=True):
            if ":" not in column or column.startswith("gold:"):
                continue
            coder, code = column.split(":", 1)
            applied = ((long.unit == row[0]) & (long.coder == coder) & (long.code == code)).any()
            coded = ((long.unit == row[0]) & (long.coder == coder)).any()
            assert value == ("" if not coded else str(int(applied))), (column, record)
    assert wide.loc[wide.unit == long.unit.iloc[0], "gold:install"].item() == "1"


def test_formula_guard_protects_text_cells_but_never_numbers_or_ids(users, tmp_path):
    project = make_coded_project(users)
    df = _read(_export(project, "long", tmp_path=tmp_path))

    memos = set(df.memo)
    assert {
        "'=cmd|' /C calc'!A0",
        "'+1+1",
        "'@SUM(A1:A9)",
        "'-2+3",
        "'\tindented",
        "'\rreturn",
    } <= memos
    assert all(u.isdigit() for u in df.unit)
    assert all(t.isdigit() for t in df.thread_id)
    raw = _read(_export(project, "long", "--no-formula-guard", tmp_path=tmp_path))
    assert "=cmd|' /C calc'!A0" in set(raw.memo)


def test_pseudonyms_are_stable_and_the_key_file_maps_them_back(users, tmp_path):
    project = make_coded_project(users)
    first = _read(_export(project, "long", "--pseudonymize", tmp_path=tmp_path))
    key = _read((tmp_path / "long.csv.key.csv").read_text())
    second = _read(_export(project, "long", "--pseudonymize", tmp_path=tmp_path))

    assert list(first.coder) == list(second.coder)
    assert not {"alice", "bob"} & set(first.coder)
    assert dict(zip(key.pseudonym, key.name, strict=True)).keys() >= set(first.coder)
    assert set(key.name) >= {"alice", "bob"}


def test_excel_option_writes_a_bom_and_no_text_drops_memos(users, tmp_path):
    project = make_coded_project(users)
    text = _export(project, "long", "--excel", "--no-text", tmp_path=tmp_path)
    assert text.startswith("\ufeffunit,coder,code")
    assert set(_read(text.lstrip("\ufeff")).memo) == {""}


def test_gold_and_corpus_exports(users, tmp_path):
    project = make_coded_project(users)
    gold = _read(_export(project, "gold", tmp_path=tmp_path))
    assert sorted(gold.code) == ["install", "memory"]
    assert set(gold.adjudicator) == {"padmin"}
    corpus = _read(_export(project, "corpus", tmp_path=tmp_path))
    assert len(corpus) == 9
    assert corpus.text.iloc[0].startswith("Loading fails")
    only_gold = _read(_export(project, "corpus", "--gold-only", "--no-text", tmp_path=tmp_path))
    assert len(only_gold) == 3 and "text" not in only_gold.columns


def test_exports_stream_in_chunks_with_a_constant_number_of_queries(
    users, django_assert_max_num_queries
):
    project = make_coded_project(users)
    with django_assert_max_num_queries(12):
        text = "".join(csv_lines(long_rows(project, ExportOptions()), ExportOptions()))
    assert len(pd.read_csv(io.StringIO(text))) == 8
    with django_assert_max_num_queries(12):
        assert len(list(wide_rows(project, ExportOptions()))) == 4


def test_unknown_project_is_a_clear_error():
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("export_codings", "nope", "--format", "long")


def test_coder_names_in_headers_and_agreement_columns_are_guarded_too():
    rows = [["unit", "-dash:install", "coder_a", "coder_b"], [1, 1, "@ann", "+bob"]]
    guarded = "".join(csv_lines([list(r) for r in rows], ExportOptions(guard=True)))
    assert guarded == "unit,'-dash:install,coder_a,coder_b\r\n1,1,'@ann,'+bob\r\n"
    # A cell that looks guarded already gets one more apostrophe, so the import's taking
    # one off gives it back as it was.
    memo = "".join(csv_lines([["memo"], ["'-ish' he said"]], ExportOptions(guard=True)))
    assert memo == "memo\r\n''-ish' he said\r\n"
    raw = "".join(csv_lines([list(r) for r in rows], ExportOptions(guard=False)))
    assert raw == "unit,-dash:install,coder_a,coder_b\r\n1,1,@ann,+bob\r\n"


def test_the_pseudonym_key_is_guarded_like_the_exports(users):
    project = make_coded_project(users)
    options = ExportOptions(pseudonymize=True, guard=True)
    options.name("user", "=HYPERLINK(1)", project)
    key = "".join(csv_lines(options.key_rows(), options))
    assert ",user,'=HYPERLINK(1)\r\n" in key
    assert "\r\n'" not in key  # pseudonyms themselves never start with a formula sign
