"""Report tables computed from plain data, checked against hand-computed numbers."""

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.reports import (
    Basis,
    BasisStatement,
    CodeTree,
    Counts,
    ReportError,
    Term,
    ancestor_pairs,
    cooccurrence,
    counts_from_long,
    frequency,
    mentions,
    parse_basis,
    parse_terms,
    period_range,
    trend,
    trend_tests,
    trend_wide,
)

# Two groups; "ch" has two categories with subcodes, "be" one code straight below it.
TREE = CodeTree.from_rows(
    [
        {"key": "ch", "label": "Challenges", "parent": "", "color": "#555555", "order": 0},
        {"key": "ch.a", "label": "Category A", "parent": "ch", "color": "#1f77b4", "order": 1},
        {"key": "ch.a.1", "label": "A one", "parent": "ch.a", "color": "", "order": 2},
        {"key": "ch.a.2", "label": "A two", "parent": "ch.a", "color": "", "order": 3},
        {"key": "ch.b", "label": "Category B", "parent": "ch", "color": "#ff7f0e", "order": 4},
        {"key": "ch.b.1", "label": "B one", "parent": "ch.b", "color": "", "order": 5},
        {"key": "be", "label": "Benefits", "parent": "", "color": "#2ca02c", "order": 6},
        {"key": "be.x", "label": "X", "parent": "be", "color": "", "order": 7},
    ]
)

# u1 has two subcodes of one category, u2 codes in two categories, u4 has no code at all.
OBSERVATIONS = pd.DataFrame(
    [("u1", "2021-01"), ("u2", "2021-01"), ("u3", "2021-02"), ("u4", "2021-03"), ("u5", "2021-03")],
    columns=["obs", "month"],
)
APPLICATIONS = pd.DataFrame(
    [
        ("u1", "ch.a.1"),
        ("u1", "ch.a.2"),
        ("u2", "ch.a.1"),
        ("u2", "ch.b.1"),
        ("u3", "be.x"),
        ("u5", "ch.b.1"),
        ("u5", "be.x"),
    ],
    columns=["obs", "code"],
)


def _counts():
    return counts_from_long(APPLICATIONS, OBSERVATIONS, TREE)


def test_frequency_counts_a_unit_once_per_parent_and_gives_both_shares():
    table = frequency(_counts()).set_index("code")
    assert list(table.index) == ["ch", "ch.a", "ch.a.1", "ch.a.2", "ch.b", "ch.b.1", "be", "be.x"]
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
    assert table["applications"].to_dict() == {
        "ch": 5,
        "ch.a": 3,
        "ch.a.1": 2,
        "ch.a.2": 1,
        "ch.b": 2,
        "ch.b.1": 2,
        "be": 2,
        "be.x": 2,
    }
    assert table.at["ch", "share_of_units"] == pytest.approx(3 / 5)
    assert table.at["ch.a.2", "share_of_units"] == pytest.approx(1 / 5)
    assert table.at["ch", "share_of_applications"] == pytest.approx(5 / 7)
    assert table.at["ch.a.1", "share_of_applications"] == pytest.approx(2 / 7)


def test_frequency_limited_to_a_code_group_keeps_the_shares_of_the_whole():
    table = frequency(_counts(), codes=TREE.subtree("ch.b")).set_index("code")
    assert list(table.index) == ["ch.b", "ch.b.1"]
    assert table.at["ch.b", "share_of_units"] == pytest.approx(2 / 5)


def test_sql_shaped_counts_give_the_same_frequency_as_the_long_table():
    # What the SQL reader returns: per code at or above each applied code, distinct
    # observations and applications (here for the whole period, month left empty).
    nodes = pd.DataFrame(
        [
            ("ch", "", 3, 5),
            ("ch.a", "", 2, 3),
            ("ch.a.1", "", 2, 2),
            ("ch.a.2", "", 1, 1),
            ("ch.b", "", 2, 2),
            ("ch.b.1", "", 2, 2),
            ("be", "", 2, 2),
            ("be.x", "", 2, 2),
        ],
        columns=["code", "month", "units", "applications"],
    )
    from_sql = frequency(Counts(nodes, pd.Series({"": 5}), TREE))
    pd.testing.assert_frame_equal(from_sql, frequency(_counts()))


def test_every_code_id_maps_to_itself_and_each_code_above_it():
    pairs = ancestor_pairs({11: "ch.a.1", 12: "be", 13: "gone"}, TREE)
    assert pairs == [(11, "ch.a.1"), (11, "ch.a"), (11, "ch"), (12, "be"), (13, "gone")]


def test_monthly_trend_gives_raw_counts_and_shares_of_the_units_in_each_month():
    table = trend(_counts(), "month").set_index(["code", "period"])
    assert table.loc["ch", "count"].to_dict() == {"2021-01": 2, "2021-02": 0, "2021-03": 1}
    assert table.loc["ch", "units"].to_dict() == {"2021-01": 2, "2021-02": 1, "2021-03": 2}
    assert table.loc["ch", "share"].to_dict() == {"2021-01": 1.0, "2021-02": 0.0, "2021-03": 0.5}
    assert table.loc["ch.a", "count"].to_dict() == {"2021-01": 2, "2021-02": 0, "2021-03": 0}
    assert table.loc["be.x", "share"].to_dict() == {"2021-01": 0.0, "2021-02": 1.0, "2021-03": 0.5}


def test_quarterly_and_yearly_trends_add_up_the_months():
    quarter = trend(_counts(), "quarter").set_index("code")
    assert list(quarter["period"].unique()) == ["2021-Q1"]
    assert quarter.at["ch", "count"] == 3
    assert quarter.at["ch", "units"] == 5
    year = trend(_counts(), "year").set_index("code")
    assert year.at["be", "period"] == "2021"
    assert year.at["be", "share"] == pytest.approx(2 / 5)


def test_a_month_without_units_is_kept_in_the_trend_with_an_empty_share():
    observations = pd.concat(
        [OBSERVATIONS, pd.DataFrame([("u6", "2021-05")], columns=["obs", "month"])]
    )
    applications = pd.concat(
        [APPLICATIONS, pd.DataFrame([("u6", "ch.a.1")], columns=["obs", "code"])]
    )
    table = trend(counts_from_long(applications, observations, TREE), "month")
    april = table[(table["code"] == "ch.a.1") & (table["period"] == "2021-04")].iloc[0]
    assert april["count"] == 0 and april["units"] == 0 and math.isnan(april["share"])
    may = table[(table["code"] == "ch.a.1") & (table["period"] == "2021-05")].iloc[0]
    assert may["count"] == 1 and may["share"] == 1.0


def test_period_ranges_cross_years_without_gaps():
    assert period_range("2020-11", "2021-02", "month") == [
        "2020-11",
        "2020-12",
        "2021-01",
        "2021-02",
    ]
    assert period_range("2020-11", "2021-04", "quarter") == ["2020-Q4", "2021-Q1", "2021-Q2"]
    assert period_range("2019-06", "2021-01", "year") == ["2019", "2020", "2021"]


def _series(code: str, shares: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code": code,
            "label": code,
            "period": [f"2021-{m:02d}" for m in range(1, len(shares) + 1)],
            "share": shares,
        }
    )


def test_trend_test_reports_kendalls_tau_its_p_value_and_direction():
    table = pd.concat(
        [
            _series("up", [0.1, 0.2, 0.25, 0.3, 0.4, 0.5]),
            _series("down", [0.5, 0.4, 0.3, 0.2, 0.1, 0.0]),
            _series("flat", [0.2] * 6),
            _series("short", [0.1, 0.2]),
            _series("noisy", [0.2, 0.1, 0.3, 0.1, 0.2, 0.15]),
        ]
    )
    tests = trend_tests(table).set_index("code")
    # Strictly monotone, six points: S = ±15, tau = ±1, exact two-sided p = 2 / 6!.
    assert tests.at["up", "tau"] == pytest.approx(1.0)
    assert tests.at["up", "p_value"] == pytest.approx(2 / 720)
    assert tests.at["up", "direction"] == "increasing"
    assert tests.at["down", "tau"] == pytest.approx(-1.0)
    assert tests.at["down", "direction"] == "decreasing"
    assert tests.at["flat", "direction"] == "no trend"
    assert tests.at["short", "direction"] == "too few periods"
    assert tests.at["noisy", "direction"] == "no trend"


def test_trend_test_leaves_out_periods_without_units():
    table = _series("gap", [0.1, 0.2, math.nan, 0.3, 0.4, 0.5, 0.6])
    tests = trend_tests(table).set_index("code")
    assert tests.at["gap", "periods"] == 6
    assert tests.at["gap", "tau"] == pytest.approx(1.0)


def test_wide_trend_puts_codes_in_rows_and_periods_in_columns():
    wide = trend_wide(trend(_counts(), "month", codes=["ch.a", "be.x"]))
    assert list(wide.columns) == ["code", "label", "2021-01", "2021-02", "2021-03"]
    assert wide.values.tolist() == [["ch.a", "Category A", 2, 0, 0], ["be.x", "X", 0, 1, 1]]


def test_cooccurrence_counts_pairs_and_jaccard_between_codes():
    table = cooccurrence(APPLICATIONS, TREE).set_index(["code_a", "code_b"])
    assert table.at[("ch.a.1", "ch.a.1"), "both"] == 2
    assert table.at[("ch.a.1", "ch.a.2"), "both"] == 1
    assert table.at[("ch.a.1", "ch.a.2"), "jaccard"] == pytest.approx(1 / 2)
    assert table.at[("ch.a.1", "ch.b.1"), "jaccard"] == pytest.approx(1 / 3)
    assert table.at[("ch.b.1", "be.x"), "both"] == 1
    assert table.at[("ch.a.2", "ch.b.1"), "both"] == 0
    assert table.at[("ch.a.2", "ch.b.1"), "jaccard"] == 0
    assert table.at[("ch.b.1", "ch.b.1"), "jaccard"] == 1
    assert len(table) == 16


def test_cooccurrence_of_categories_counts_a_unit_once_per_category():
    table = cooccurrence(APPLICATIONS, TREE, level="categories").set_index(["code_a", "code_b"])
    assert sorted(set(table.index.get_level_values(0))) == ["be.x", "ch.a", "ch.b"]
    assert table.at[("ch.a", "ch.a"), "both"] == 2
    assert table.at[("ch.a", "ch.b"), "both"] == 1
    assert table.at[("ch.a", "ch.b"), "jaccard"] == pytest.approx(1 / 3)


def test_categories_are_the_level_below_the_groups_or_a_lone_top_level_code():
    tree = CodeTree.from_rows(
        [
            {"key": "g", "label": "Group", "parent": "", "order": 0},
            {"key": "g.c", "label": "Category", "parent": "g", "order": 1},
            {"key": "g.c.1", "label": "Sub", "parent": "g.c", "order": 2},
            {"key": "g.leaf", "label": "Leaf category", "parent": "g", "order": 3},
            {"key": "alone", "label": "Alone", "parent": "", "order": 4},
        ]
    )
    assert tree.level_keys("categories") == ["g.c", "g.leaf", "alone"]
    assert tree.level_keys("codes") == ["g.c.1", "g.leaf", "alone"]


THREADS = pd.DataFrame(
    [
        (1, "2021-01", "I fine-tuned BERT yesterday."),
        (2, "2021-01", "RoBERTa is better, and so is distilbert."),
        (3, "2021-02", "Using bert-base-uncased and GPT-2 together"),
        (4, "2021-02", "gpt2\nworks"),
    ],
    columns=["thread", "month", "text"],
)


def test_mentions_match_terms_and_aliases_case_insensitively_on_word_boundaries():
    terms = [Term("bert"), Term("gpt2", ("gpt-2", "GPT 2"))]
    table = mentions(THREADS, terms, "month").set_index(["term", "period"])
    assert table["mentions"].to_dict() == {
        ("bert", "2021-01"): 1,
        ("bert", "2021-02"): 1,
        ("gpt2", "2021-01"): 0,
        ("gpt2", "2021-02"): 2,
    }
    assert table.at[("bert", "2021-01"), "threads"] == 2
    assert table.at[("gpt2", "2021-02"), "share"] == 1.0


def test_terms_file_reads_aliases_separated_by_bars_or_commas():
    text = '# model families\nbert | BERT-base\n\ngpt2, gpt-2 | GPT 2\n"llama, 2",llama2\n'
    assert parse_terms(text) == [
        Term("bert", ("BERT-base",)),
        Term("gpt2", ("gpt-2", "GPT 2")),
        Term("llama, 2", ("llama2",)),
    ]


def test_terms_file_with_a_repeated_term_names_both_lines():
    with pytest.raises(
        ReportError, match=r"terms.txt, line 3: term 'BERT' already given on line 1"
    ):
        parse_terms("bert\ngpt2\nBERT | b\n", "terms.txt")


def test_an_empty_terms_file_is_refused():
    with pytest.raises(ReportError, match="no terms"):
        parse_terms("# nothing\n\n", "terms.txt")


def test_basis_is_read_from_its_short_form():
    assert parse_basis("gold") == Basis("gold")
    assert parse_basis("all") == Basis("all")
    assert parse_basis("coder:alice") == Basis("coder", "alice")
    with pytest.raises(ReportError, match="basis 'coder:' is not one of"):
        parse_basis("coder:")


def test_basis_statement_says_how_many_units_lack_a_gold_label():
    statement = BasisStatement(Basis("gold"), 150, 120, 118, not_relevant=2)
    assert str(statement) == (
        "gold labels for 120 of 150 units; units without a gold label (left out): 30; "
        "coder codings elsewhere: none; marked not relevant (left out): 2"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 11), st.sampled_from(["ch.a.1", "ch.a.2", "ch.b.1", "be.x"])),
        max_size=40,
    ),
    st.lists(st.sampled_from(["2021-01", "2021-02", "2021-04"]), min_size=12, max_size=12),
)
def test_tables_agree_with_a_plain_set_computation(pairs, months):
    applications = pd.DataFrame(pairs, columns=["obs", "code"])
    observations = pd.DataFrame({"obs": range(12), "month": months})
    counts = counts_from_long(applications, observations, TREE)
    # Independently: the set of observations under each code, by walking up the tree.
    under: dict[str, set[int]] = {key: set() for key in TREE.frame.index}
    for obs, code in pairs:
        while code:
            under[code].add(obs)
            code = TREE.frame.at[code, "parent"]
    table = frequency(counts).set_index("code")
    assert table["units"].to_dict() == {key: len(units) for key, units in under.items()}
    roots = table[table["depth"] == 0]
    if len(set(pairs)):
        assert roots["share_of_applications"].sum() == pytest.approx(1.0)
    months_of = dict(enumerate(months))
    by_month = trend(counts, "month").set_index(["code", "period"])["count"]
    for key, units in under.items():
        for month in sorted(set(months)):
            expected = sum(1 for obs in units if months_of[obs] == month)
            assert by_month[(key, month)] == expected
    pairs_table = cooccurrence(applications, TREE)
    for row in pairs_table.itertuples():
        both = under[row.code_a] & under[row.code_b]
        either = under[row.code_a] | under[row.code_b]
        assert row.both == len(both)
        assert row.jaccard == pytest.approx(len(both) / len(either))
