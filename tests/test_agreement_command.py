"""`manage.py agreement`: a project's codings and their long CSV give the same figures."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.agreement import NOT_RELEVANT, to_codings, write_long_csv
from analysis.codings import long_table, project_codings
from coding.models import Coding
from tests.factories_codings import make_codebook, make_coded_project


def run(*args: str) -> dict:
    out = StringIO()
    call_command("agreement", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def export(project, path: Path, **filters) -> Path:
    with path.open("w", newline="") as handle:
        write_long_csv(long_table(project, **filters), handle)
    return path


@pytest.mark.django_db
def test_project_figures_equal_those_of_its_long_csv(users, tmp_path):
    project = make_coded_project(users)
    from_project = run("--project", project.slug, "--bootstrap", "200")
    from_csv = run("--input", str(export(project, tmp_path / "long.csv")), "--bootstrap", "200")
    assert from_project == from_csv
    assert from_project["mode"] == "multi"
    assert from_project["alpha_ci95"] is not None
    assert set(from_project["per_code"]) >= {"load-error", "split", NOT_RELEVANT}


@pytest.mark.django_db
def test_round_and_category_figures_equal_those_of_their_csv(users, tmp_path):
    project = make_coded_project(users)
    main = project.rounds.get(name="main")
    from_project = run("--project", project.slug, "--round", "main", "--depth", "1")
    csv_path = export(project, tmp_path / "main.csv", round=main, depth=1)
    assert from_project == run("--input", str(csv_path))
    assert set(from_project["per_code"]) == {"loading", "training", "datasets", NOT_RELEVANT}
    assert from_project["n_units"] == 7


@pytest.mark.django_db
def test_long_table_holds_submitted_codings_not_relevant_and_empty_codings(users):
    project = make_coded_project(users)
    table = long_table(project, round=project.rounds.get(name="main"))
    rows = set(table[["unit", "coder", "code"]].itertuples(index=False, name=None))
    units = sorted({int(u) for u in table["unit"]})
    fourth, sixth = str(units[3]), str(units[5])
    assert (fourth, "alice", "") in rows  # coded, no code applies
    assert (sixth, "bob", NOT_RELEVANT) in rows
    draft = Coding.objects.get(status=Coding.Status.DRAFT)
    assert not ((table["unit"] == str(draft.unit_id)) & (table["coder"] == "alice")).any()
    assert table["unsure"].sum() == 1


@pytest.mark.django_db
def test_category_level_gives_a_unit_a_category_when_any_of_its_codes_lies_in_it(users):
    project = make_coded_project(users)
    table = long_table(project, round=project.rounds.get(name="main"), depth=1)
    second = str(sorted({int(u) for u in table["unit"]})[1])
    alice = table[(table["unit"] == second) & (table["coder"] == "alice")]
    assert list(alice["code"]) == ["training"]  # fine-tune and lr both roll up once
    top = long_table(project, round=project.rounds.get(name="main"), depth=0)
    assert set(top["code"]) == {"models", "data", "", NOT_RELEVANT}


@pytest.mark.django_db
def test_codebook_version_filter_keeps_only_codings_of_that_version(users):
    project = make_coded_project(users)
    newer = make_codebook(number=2)
    unit = project.units.first()
    Coding.objects.filter(unit=unit).update(codebook_version=newer)
    report = run("--project", project.slug, "--codebook-version", "2", "--bootstrap", "0")
    assert report["n_units"] == 1
    everything = run("--project", project.slug, "--bootstrap", "0")
    older = run("--project", project.slug, "--codebook-version", "1", "--bootstrap", "0")
    assert older["n_units"] == everything["n_units"] - 1


@pytest.mark.django_db
def test_round_filter_reads_only_that_round(users):
    project = make_coded_project(users)
    report = run("--project", project.slug, "--round", "pilot")
    assert report["n_units"] == 2
    assert report["per_code"]["split"]["percent_agreement"] == 1.0
    assert report["per_code"]["stream"]["percent_agreement"] == 0.0


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [None, 0, 1])
@pytest.mark.parametrize("round_name", [None, "main"])
@pytest.mark.parametrize("dense_ids", [4, 0])
def test_codings_read_as_arrays_equal_those_of_the_long_table(
    users, depth, round_name, dense_ids, monkeypatch
):
    monkeypatch.setattr("analysis.codings.DENSE_IDS", dense_ids)  # 0: the subquery path
    project = make_coded_project(users)
    filters = {"depth": depth}
    if round_name:
        filters["round"] = project.rounds.get(name=round_name)
    read = project_codings(project, **filters)
    expected = to_codings(long_table(project, **filters))
    for field in expected.__dataclass_fields__:
        assert np.array_equal(
            np.asarray(getattr(read, field)).astype(str),
            np.asarray(getattr(expected, field)).astype(str),
        ), field


@pytest.mark.django_db
def test_codings_read_as_arrays_of_a_project_without_submitted_codings_are_empty(users):
    project = make_coded_project(users)
    Coding.objects.filter(unit__project=project).update(status=Coding.Status.DRAFT)
    assert len(project_codings(project).unit) == 0
    with pytest.raises(CommandError, match="no submitted codings"):
        run("--project", project.slug)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "codings.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unit,coder\n1,a\n", "line 1: missing column code (or value)"),
        ("unit,coder,code\n1,a,x\n2,b\n", "line 3: expected 3 fields, found 2"),
        ("unit,coder,code\n1,a,x\n,b,y\n", "line 3: the unit is empty"),
        ("unit,coder,code\n1,a,x\n1, ,y\n", "line 3: the coder is empty"),
        ("unit,coder,code,unsure\n1,a,x,maybe\n", "line 2: unsure must be 0 or 1"),
        ("", "the file is empty"),
        ("unit,coder,code\n", "no codings after the header"),
    ],
)
def test_bad_csv_gets_a_clear_error_naming_the_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(CommandError, match=re.escape(message)) as caught:
        run("--input", path)
    assert str(caught.value).startswith(path)


def test_ordinal_level_on_words_is_refused_with_the_value(tmp_path):
    path = write(tmp_path, "unit,coder,value\n1,a,low\n1,b,high\n2,a,low\n2,b,low\n")
    with pytest.raises(CommandError, match="numeric values; found 'high'"):
        run("--input", path, "--level", "ordinal")


def test_auto_mode_picks_single_only_without_several_or_empty_values(tmp_path):
    single = write(tmp_path, "unit,coder,value\n1,a,x\n1,b,x\n2,a,y\n2,b,x\n")
    assert run("--input", single)["mode"] == "single"
    multi = tmp_path / "multi.csv"
    multi.write_text("unit,coder,code\n1,a,x\n1,b,x\n1,b,y\n2,a,y\n2,b,x\n")
    assert run("--input", str(multi))["mode"] == "multi"
    empty = tmp_path / "empty.csv"
    empty.write_text("unit,coder,code\n1,a,x\n1,b,\n2,a,y\n2,b,x\n")
    report = run("--input", str(empty))
    assert report["mode"] == "multi"
    assert report["per_code"]["x"]["prevalence"] == 0.5


def test_forcing_single_mode_on_multi_label_data_names_the_coder_and_unit(tmp_path):
    path = write(tmp_path, "unit,coder,code\n1,a,x\n1,b,x\n1,b,y\n")
    with pytest.raises(CommandError, match="coder b gave unit 1 several values"):
        run("--input", path, "--mode", "single")


@pytest.mark.django_db
def test_unknown_project_and_round_are_named(users):
    with pytest.raises(CommandError, match="no project 'nope'"):
        run("--project", "nope")
    project = make_coded_project(users)
    with pytest.raises(CommandError, match="no round 'final' in study"):
        run("--project", project.slug, "--round", "final")


def test_round_needs_a_project(tmp_path):
    path = write(tmp_path, "unit,coder,code\n1,a,x\n1,b,x\n")
    with pytest.raises(CommandError, match="--round needs --project"):
        run("--input", path, "--round", "main")


def test_plain_output_says_which_mode_it_used(tmp_path):
    path = write(tmp_path, "unit,coder,code\n1,a,x\n1,b,x\n1,b,y\n2,a,y\n2,b,y\n")
    out = StringIO()
    call_command("agreement", "--input", path, "--bootstrap", "0", stdout=out)
    text = out.getvalue()
    assert "mode: multi (asked: auto)" in text
    assert "MASI alpha:" in text
    assert "Cohen's kappa a / b:" in text
