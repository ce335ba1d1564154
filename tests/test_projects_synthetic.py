from io import StringIO

import krippendorff
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from coding.models import Assignment, CodeApplication, Coding, CodingEvent, Project, Thread, Unit
from coding.progress import project_progress
from tests.factories_projects import make_codebook_version

pytestmark = pytest.mark.django_db


def _alpha(project: Project) -> float:
    """Nominal Krippendorff's alpha over the project's codings, one code per coding."""
    rows = CodeApplication.objects.filter(coding__unit__project=project).values_list(
        "coding__coder_id", "coding__unit_id", "code_id"
    )
    coders = sorted({r[0] for r in rows})
    units = sorted({r[1] for r in rows})
    matrix = np.full((len(coders), len(units)), np.nan)
    for coder, unit, code in rows:
        matrix[coders.index(coder), units.index(unit)] = code
    return krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")


def test_coders_option_creates_a_fully_coded_project_of_the_requested_share():
    make_codebook_version(codes=6)
    out = StringIO()

    call_command(
        "make_synthetic_corpus",
        "--threads", "200", "--posts-per-thread", "2",
        "--coders", "3", "--coded-share", "0.25", "--agreement", "0.7", "--seed", "4",
        stdout=out,
    )  # fmt: skip

    project = Project.objects.get(slug="synthetic")
    assert "project synthetic: 50 units, 150 submitted codings by 3 coders" in out.getvalue()
    assert Unit.objects.filter(project=project).count() == 50
    assert project.memberships.filter(role="annotator").count() == 3
    per_unit = Unit.objects.filter(project=project).annotate(n=Count("codings"))
    assert set(per_unit.values_list("n", flat=True)) == {3}
    assert not Coding.objects.exclude(status="submitted").exists()
    assert not Assignment.objects.exclude(status="done").exists()
    assert CodingEvent.objects.filter(action="submit").count() == 150
    progress = project_progress(project)
    assert (progress.totals.assigned, progress.totals.done) == (150, 150)
    assert [(m.user.username, m.done) for m in progress.members if m.role == "annotator"] == [
        ("coder1", 50),
        ("coder2", 50),
        ("coder3", 50),
    ]


@pytest.mark.parametrize("agreement", [0.3, 0.9])
def test_agreement_option_controls_krippendorffs_alpha(agreement):
    make_codebook_version(codes=8)
    call_command(
        "make_synthetic_corpus",
        "--threads", "400", "--posts-per-thread", "1",
        "--coders", "2", "--coded-share", "1", "--agreement", str(agreement), "--seed", "11",
        stdout=StringIO(),
    )  # fmt: skip
    alpha = _alpha(Project.objects.get(slug="synthetic"))
    assert abs(alpha - agreement) < 0.1


def test_a_second_coded_project_gets_its_own_slug_and_the_default_codebook_is_used_if_none():
    call_command(
        "make_synthetic_corpus", "--threads", "20", "--coders", "2", stdout=StringIO()
    )  # fmt: skip
    call_command(
        "make_synthetic_corpus", "--threads", "20", "--coders", "2", stdout=StringIO()
    )  # fmt: skip
    slugs = set(Project.objects.values_list("slug", flat=True))
    assert slugs == {"synthetic", "synthetic-2"}
    assert Project.objects.get(slug="synthetic").codebook_version is not None


def test_bad_coder_options_are_refused_before_anything_is_written():
    for args, message in [
        (["--coders", "0"], "--coders must be at least 1"),
        (["--coders", "2", "--coded-share", "0"], "--coded-share must be above 0"),
        (["--coders", "2", "--agreement", "1.5"], "--agreement must be between 0 and 1"),
        (["--agreement", "0.5"], "need --coders"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("make_synthetic_corpus", "--threads", "5", *args, stdout=StringIO())
    assert not Project.objects.exists()
    assert not Thread.objects.exists()
