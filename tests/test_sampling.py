import math
from io import StringIO
from statistics import NormalDist

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given
from hypothesis import strategies as st

from coding.models import Post, Project, Round, Tag, Unit
from coding.sampling import (
    SamplingError,
    allocate,
    choose_shared,
    draw,
    draw_round,
    population_count,
    sample_size,
)
from coding.synthetic import make_corpus
from tests.factories import make_project, make_source, make_thread, make_user
from tests.factories_projects import make_threads


def _textbook_size(population: int, confidence: float, margin: float) -> int:
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    n0 = z**2 * 0.25 / margin**2
    return math.ceil(n0 / (1 + (n0 - 1) / population))


def test_the_studys_corpus_of_11175_topics_needs_372_at_95_percent_and_5_points():
    assert sample_size(11_175, 0.95, 0.05) == 372


@given(
    population=st.integers(min_value=1, max_value=10**7),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    margin=st.sampled_from([0.01, 0.02, 0.03, 0.05, 0.1]),
)
def test_sample_size_matches_the_textbook_formula_and_never_exceeds_the_population(
    population, confidence, margin
):
    n = sample_size(population, confidence, margin)
    assert n == min(population, _textbook_size(population, confidence, margin))
    assert 1 <= n <= population


def test_sample_size_grows_with_confidence_and_shrinks_with_margin():
    assert sample_size(5000, 0.99, 0.05) > sample_size(5000, 0.95, 0.05)
    assert sample_size(5000, 0.95, 0.03) > sample_size(5000, 0.95, 0.05)
    assert sample_size(0, 0.95, 0.05) == 0
    with pytest.raises(SamplingError, match="margin"):
        sample_size(100, 0.95, 0)
    with pytest.raises(SamplingError, match="confidence"):
        sample_size(100, 1.5, 0.05)


def test_largest_remainder_gives_the_leftover_unit_to_the_largest_fraction():
    assert allocate({"a": 5, "b": 3, "c": 2}, 5) == {"a": 3, "b": 1, "c": 1}
    assert allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}


@given(
    sizes=st.dictionaries(
        st.text(min_size=1, max_size=5), st.integers(min_value=0, max_value=500), min_size=1
    ),
    data=st.data(),
)
def test_stratum_allocations_sum_to_n_and_stay_proportional(sizes, data):
    total = sum(sizes.values())
    n = data.draw(st.integers(min_value=0, max_value=total))
    quotas = allocate(sizes, n)
    assert sum(quotas.values()) == n
    for key, size in sizes.items():
        share = n * size / total if total else 0
        assert math.floor(share) <= quotas[key] <= math.ceil(share)
        assert quotas[key] <= size


def test_the_same_seed_draws_the_same_units_whatever_the_input_order():
    ids = list(range(1, 1001))
    first = draw(ids, 50, seed=42)
    assert draw(list(reversed(ids)), 50, seed=42) == first
    assert draw(ids, 50, seed=43) != first
    assert len(set(first)) == 50


def test_stratified_draw_takes_each_stratum_in_proportion():
    ids = list(range(100))
    strata = ["big" if i < 70 else "small" for i in ids]
    chosen = draw(ids, 10, seed=1, strata=strata)
    assert sum(1 for i in chosen if i < 70) == 7
    assert sum(1 for i in chosen if i >= 70) == 3


def test_shared_units_are_the_overlap_share_of_the_sample():
    assert len(choose_shared(372, 0.25, seed=5)) == 93
    assert choose_shared(372, 0.25, seed=5) == choose_shared(372, 0.25, seed=5)
    assert len(choose_shared(10, 1.0, seed=5)) == 10
    assert choose_shared(10, 0.0, seed=5) == set()


def _thread_ids(project: Project) -> set[int]:
    return set(Unit.objects.filter(project=project).values_list("thread_id", flat=True))


@pytest.mark.django_db
def test_sample_command_draws_372_of_11175_threads_and_the_same_seed_gives_the_same_sample():
    make_corpus(11_175, 1, seed=3)
    first = make_project("first", admin=make_user("lead"))
    second = make_project("second", admin=make_user("lead2"))
    out = StringIO()

    call_command(
        "sample", "first", "--confidence", "0.95", "--margin", "0.05", "--seed", "9", stdout=out
    )
    call_command("sample", "second", "--seed", "9", stdout=StringIO())

    assert out.getvalue().splitlines()[0] == "sampled 372 of 11175 units"
    assert Unit.objects.filter(project=first).count() == 372
    assert _thread_ids(first) == _thread_ids(second)
    main = Round.objects.get(project=first)
    assert (main.name, main.seed, main.params["population"]) == ("main", 9, 11_175)


@pytest.mark.django_db
def test_a_later_round_samples_only_units_not_yet_sampled():
    source = make_source()
    make_threads(200, source=source)
    project = make_project(admin=make_user("lead"))
    out = StringIO()

    call_command("sample", project.slug, "--size", "50", "--round", "calibration", stdout=out)
    call_command("sample", project.slug, "--size", "150", "--round", "main", stdout=out)

    assert "sampled 150 of 150 units" in out.getvalue()
    calibration = set(
        Unit.objects.filter(round__name="calibration").values_list("thread", flat=True)
    )
    main = set(Unit.objects.filter(round__name="main").values_list("thread", flat=True))
    assert len(calibration) == 50
    assert len(main) == 150
    assert not calibration & main
    with pytest.raises(CommandError, match="no units left"):
        call_command("sample", project.slug, "--size", "1", "--round", "extra", stdout=out)


@pytest.mark.django_db
def test_stratified_sample_by_category_keeps_the_corpus_proportions():
    make_threads(400, categories=("A", "A", "A", "B"))
    project = make_project(admin=make_user("lead"))

    call_command(
        "sample", project.slug, "--size", "40", "--stratify", "category", stdout=StringIO()
    )

    counts = {
        c: Unit.objects.filter(project=project, thread__category=c).count() for c in ("A", "B")
    }
    assert counts == {"A": 30, "B": 10}


@pytest.mark.django_db
def test_stratified_sample_by_month_sums_to_n():
    make_threads(300)
    project = make_project(admin=make_user("lead"))
    result = draw_round(project, size=37, stratify="month", seed=2)
    assert result.sampled == 37
    assert Unit.objects.filter(project=project).count() == 37
    assert result.round.params["stratify"] == "month"


@pytest.mark.django_db
def test_selection_limits_the_population_by_category_tag_window_and_accepted_answer():
    source = make_source()
    keep = make_thread("keep", source=source, external_id=1, category="Models")
    keep.has_accepted_answer = True
    keep.save()
    keep.tags.add(Tag.objects.create(name="bert"))
    make_thread("other category", source=source, external_id=2, category="Spaces")
    project = make_project(admin=make_user("lead"))
    project.selection = {
        "categories": ["Models"],
        "tags": ["bert"],
        "created_after": "2022-01-01",
        "created_before": "2022-12-31",
        "accepted_answer": True,
    }
    project.save()

    assert population_count(project) == 1
    draw_round(project, size=1, seed=1)
    assert _thread_ids(project) == {keep.pk}

    project.selection = {"created_before": "2021-12-31"}
    assert population_count(project) == 0


@pytest.mark.django_db
def test_post_level_projects_sample_posts_of_the_selected_threads():
    source = make_source()
    chosen = make_thread(
        "chosen",
        source=source,
        external_id=1,
        category="Models",
        posts=["<p>a</p>", "<p>b</p>", "<p>c</p>"],
    )
    make_thread("skipped", source=source, external_id=2, category="Spaces")
    project = make_project(admin=make_user("lead"))
    project.unit_type = Project.UnitType.POST
    project.selection = {"categories": ["Models"]}
    project.save()
    out = StringIO()

    call_command("sample", project.slug, "--size", "3", stdout=out)

    assert out.getvalue().startswith("sampled 3 of 3 units")
    units = Unit.objects.filter(project=project)
    assert set(units.values_list("post_id", flat=True)) == set(
        Post.objects.filter(thread=chosen).values_list("pk", flat=True)
    )
    assert set(units.values_list("thread_id", flat=True)) == {chosen.pk}


@pytest.mark.django_db
def test_sample_command_explains_bad_input_and_writes_nothing():
    make_threads(10)
    make_project("study", admin=make_user("lead"))
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("sample", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="only 10 are left"):
        call_command("sample", "study", "--size", "11", stdout=StringIO())
    with pytest.raises(CommandError, match="--size must be at least 1"):
        call_command("sample", "study", "--size", "0", stdout=StringIO())
    with pytest.raises(CommandError, match="margin"):
        call_command("sample", "study", "--margin", "0", stdout=StringIO())
    assert not Round.objects.exists()
    call_command("sample", "study", "--size", "2", "--round", "pilot", stdout=StringIO())
    with pytest.raises(CommandError, match="already has a round named 'pilot'"):
        call_command("sample", "study", "--size", "2", "--round", "pilot", stdout=StringIO())
    assert Unit.objects.count() == 2
