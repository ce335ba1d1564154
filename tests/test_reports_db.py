"""Report tables read from a coded project in the database, on each basis."""

from datetime import date

import pandas as pd
import pytest

from analysis.reports import (
    Basis,
    Filters,
    ReportError,
    Term,
    check_coder,
    cooccurrence,
    counts_from_long,
    frequency,
    mentions,
    read_applications,
    read_counts,
    read_statement,
    read_thread_texts,
    read_tree,
    trend,
)
from coding.models import Post, Project, Round, Unit
from tests.factories import make_thread
from tests.factories_reports import make_report_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study(users):
    return make_report_project(users)


def _units(table: pd.DataFrame) -> dict:
    return table.set_index("code")["units"].to_dict()


def test_gold_basis_counts_gold_units_once_per_parent(study):
    project, _ = study
    table = frequency(read_counts(project, Basis("gold"))).set_index("code")
    assert table["units"].to_dict() == {
        "ch": 3,
        "ch.a": 2,
        "ch.a.1": 2,
        "ch.a.2": 1,
        "ch.b": 2,
        "ch.b.1": 2,
        "be": 2,
        "be.x": 2,
    }
    assert table["applications"].to_dict()["ch"] == 5
    # Five decided, relevant gold labels; seven codes applied on them.
    assert table.at["ch", "share_of_units"] == pytest.approx(3 / 5)
    assert table.at["ch", "share_of_applications"] == pytest.approx(5 / 7)


def test_gold_basis_statement_counts_units_without_gold_reopened_and_not_relevant(study):
    project, _ = study
    assert str(read_statement(project, Basis("gold"), Filters())) == (
        "gold labels for 6 of 8 units; units without a gold label (left out): 2, "
        "of which re-opened: 1; coder codings elsewhere: none; "
        "marked not relevant (left out): 1"
    )


def test_one_coders_basis_counts_only_their_submitted_relevant_codings(study):
    project, _ = study
    counts = read_counts(project, Basis("coder", "alice"))
    assert counts.observations == 3
    assert _units(frequency(counts)) == {
        "ch": 2,
        "ch.a": 2,
        "ch.a.1": 2,
        "ch.a.2": 0,
        "ch.b": 1,
        "ch.b.1": 1,
        "be": 1,
        "be.x": 1,
    }
    assert str(read_statement(project, Basis("coder", "alice"), Filters())) == (
        "alice's submitted codings for 4 of 8 units; units without one (left out): 4; "
        "marked not relevant (left out): 1"
    )


def test_all_coders_basis_counts_each_submitted_coding_and_never_drafts(study):
    project, _ = study
    counts = read_counts(project, Basis("all"))
    table = frequency(counts).set_index("code")
    assert counts.observations == 5
    assert table["units"].to_dict() == {
        "ch": 3,
        "ch.a": 3,
        "ch.a.1": 3,
        "ch.a.2": 1,
        "ch.b": 1,
        "ch.b.1": 1,
        "be": 2,
        "be.x": 2,
    }
    assert table.at["ch", "applications"] == 5
    assert table.at["ch.a.1", "share_of_applications"] == pytest.approx(3 / 7)
    assert str(read_statement(project, Basis("all"), Filters())) == (
        "all coders' submitted codings: 5 codings by 2 coders of 4 of 8 units, each coding "
        "counted; units without a submitted coding (left out): 4; "
        "marked not relevant (left out): 1"
    )


def test_an_unknown_coder_is_refused_with_the_members_named(study):
    project, _ = study
    with pytest.raises(ReportError, match=r"no coder named 'carol'.*members: alice, bob, padmin"):
        check_coder(project, Basis("coder", "carol"))


def test_monthly_trend_dates_units_by_their_thread_in_utc(study):
    project, _ = study
    table = trend(read_counts(project, Basis("gold")), "month").set_index(["code", "period"])
    # u2 was posted at 23:30 UTC on 31 January: January, whatever the server's zone.
    assert table.loc["ch.b", "count"].to_dict() == {"2021-01": 1, "2021-02": 0, "2021-03": 1}
    assert table.loc["ch", "units"].to_dict() == {"2021-01": 2, "2021-02": 1, "2021-03": 2}
    assert table.loc["be.x", "share"].to_dict() == {"2021-01": 0.0, "2021-02": 1.0, "2021-03": 0.5}


def test_filters_narrow_the_units_by_date_category_and_round(study):
    project, _ = study
    since = read_counts(project, Basis("gold"), Filters(since=date(2021, 2, 1)))
    assert since.observations == 3
    assert _units(frequency(since))["ch.a"] == 0
    until = read_counts(project, Basis("gold"), Filters(until=date(2021, 1, 31)))
    assert until.observations == 2
    research = read_counts(project, Basis("gold"), Filters(category="Research"))
    assert research.observations == 1
    assert _units(frequency(research))["be.x"] == 1
    second = read_counts(project, Basis("gold"), Filters(round="Second"))
    assert second.observations == 2
    assert _units(frequency(second))["ch.b.1"] == 1
    statement = read_statement(project, Basis("gold"), Filters(round="Second"))
    assert statement.units_total == 2


def test_sql_aggregation_equals_the_long_table_computation(study):
    project, _ = study
    for basis in (Basis("gold"), Basis("all"), Basis("coder", "bob")):
        counts = read_counts(project, basis)
        tree, _ = read_tree(project)
        observations = pd.DataFrame(
            [(obs, month) for obs, month in _observation_months(project, basis)],
            columns=["obs", "month"],
        )
        long = counts_from_long(read_applications(project, basis), observations, tree)
        pd.testing.assert_frame_equal(frequency(counts), frequency(long))
        pd.testing.assert_frame_equal(trend(counts, "quarter"), trend(long, "quarter"))


def _observation_months(project: Project, basis: Basis):
    from coding.models import Coding, GoldLabel

    if basis.kind == "gold":
        rows = GoldLabel.objects.filter(
            unit__project=project, is_open=False, not_relevant=False
        ).values_list("id", "unit__thread__created_at")
    else:
        codings = Coding.objects.filter(
            unit__project=project, status="submitted", not_relevant=False
        )
        if basis.kind == "coder":
            codings = codings.filter(coder__username=basis.coder)
        rows = codings.values_list("id", "unit__thread__created_at")
    return [(obs, f"{when:%Y-%m}") for obs, when in rows]


def test_cooccurrence_from_gold_labels(study):
    project, _ = study
    tree, _ = read_tree(project)
    table = cooccurrence(read_applications(project, Basis("gold")), tree)
    pairs = table.set_index(["code_a", "code_b"])
    assert pairs.at[("ch.a.1", "ch.a.2"), "both"] == 1
    assert pairs.at[("ch.a.1", "ch.a.2"), "jaccard"] == pytest.approx(1 / 2)
    assert pairs.at[("ch.b.1", "be.x"), "jaccard"] == pytest.approx(1 / 3)
    assert pairs.at[("be.x", "be.x"), "both"] == 2


def test_mentions_read_every_post_of_each_units_thread(study):
    project, _ = study
    texts = read_thread_texts(project)
    assert len(texts) == 8
    table = mentions(texts, [Term("bert"), Term("gpt2", ("gpt-2",)), Term("llama 2")], "month")
    got = table.set_index(["term", "period"])["mentions"].to_dict()
    assert got[("bert", "2021-01")] == 1
    assert got[("bert", "2021-02")] == 1
    assert got[("gpt2", "2021-02")] == 1
    assert got[("gpt2", "2021-03")] == 1
    assert got[("llama 2", "2021-03")] == 1


def test_post_units_are_dated_by_their_post(users):
    project, units = make_report_project(users, slug="posts-study")
    project.unit_type = Project.UnitType.POST
    project.save()
    thread = make_thread(
        "Old thread",
        source=units["u1"].thread.source,
        external_id=99,
        created_at=units["u1"].thread.created_at,
    )
    late = Post.objects.filter(thread=thread, post_number=2).get()
    late.created_at = late.created_at.replace(year=2021, month=6)
    late.save()
    Unit.objects.filter(project=project).update(post=None)
    Unit.objects.create(
        project=project,
        round=Round.objects.get(project=project, name="Main"),
        thread=thread,
        post=late,
        position=50,
    )
    from tests.factories_reports import _gold

    _gold(Unit.objects.get(post=late), [], users["admin"])
    counts = read_counts(project, Basis("gold"))
    assert counts.totals.to_dict() == {"2021-01": 2, "2021-02": 1, "2021-03": 2, "2021-06": 1}
