import io
import json
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command

from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db


def _agreement_json(*args) -> dict:
    out = StringIO()
    call_command("agreement", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_long_export_fed_to_agreement_gives_the_same_figures_as_the_project(users, tmp_path):
    project = make_coded_project(users)
    path = tmp_path / "long.csv"
    call_command(
        "export_codings",
        project.slug,
        "--format",
        "long",
        "--no-formula-guard",
        "--output",
        str(path),
        stdout=StringIO(),
    )

    from_file = _agreement_json("--input", str(path), "--mode", "multi")
    from_project = _agreement_json("--project", project.slug, "--mode", "multi")

    assert from_file == from_project
    assert from_file["n_units"] == 3 and from_file["n_coders"] == 2


def test_agreement_export_holds_the_overall_pair_and_per_code_figures(users, tmp_path):
    project = make_coded_project(users)
    path = tmp_path / "agreement.csv"
    call_command(
        "export_codings",
        project.slug,
        "--format",
        "agreement",
        "--output",
        str(path),
        stdout=StringIO(),
    )
    table = pd.read_csv(io.StringIO(path.read_bytes().decode()), keep_default_na=False, dtype=str)
    project_figures = _agreement_json("--project", project.slug, "--mode", "multi")

    overall = table[
        (table.level == "code") & (table.figure == "percent_agreement") & (table.code == "")
    ]
    assert float(overall.value.item()) == pytest.approx(project_figures["percent_agreement"])
    pair = table[(table.level == "code") & (table.figure == "cohen_kappa")]
    assert {pair.coder_a.item(), pair.coder_b.item()} == {"alice", "bob"}
    per_code = table[(table.level == "code") & (table.figure == "alpha")]
    assert set(per_code.code) == set(project_figures["per_code"])
    assert set(table.level) == {"code", "category"}
