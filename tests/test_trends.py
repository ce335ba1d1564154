"""Forum mentions vs Hub uploads: exact tables and Spearman figures, the trends page, reviews."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from analysis import trends
from coding.models import HubModel, ModelTypeRule
from tests.factories import make_source, make_thread, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing_and_a_cold_cache(settings):
    """The role fixture makes five accounts; a cheap hasher keeps these tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()


def _when(month: str, day: int = 10) -> datetime:
    return datetime(int(month[:4]), int(month[5:7]), day, 12, tzinfo=UTC)


def _hub(model_type: str, month: str | None, count: int = 1, *, card: bool = False) -> None:
    start = HubModel.objects.count()
    HubModel.objects.bulk_create(
        HubModel(
            repo_id=f"org/{model_type}-{start + i}",
            model_type=model_type,
            created_at=_when(month) if month else None,
            has_card_data=card,
        )
        for i in range(count)
    )


def _forum() -> None:
    """Ten threads over three months; expected counts are written beside each."""
    source = make_source()
    threads = [
        # 2021-01: bert 3, gpt2 2, t5 1, vit 0
        ("2021-01", "Fine-tuning BERT for NER", ["<p>bert-base-uncased loses accuracy</p>"]),
        ("2021-01", "Tokenizer question", ["<p>I use Bert and GPT-2 together.</p>"]),
        ("2021-01", "Generation", ["<p>gpt2 and gpt 2 and GPT2 again</p>", "<p>try t5-small</p>"]),
        ("2021-01", "DistilBERT is fast", ["<p>distilbert only, robertabase is not a name</p>"]),
        ("2021-01", "bert", ["<p>nothing else</p>"]),
        # 2021-02: bert 1, t5 2, vit 1, xlm-roberta 1 (not roberta)
        ("2021-02", "Multilingual", ["<p>xlm-roberta or BERT?</p>", "<p>Or mT5, or T5.</p>"]),
        ("2021-02", "Images", ["<p>a Vision Transformer (ViT)</p>"]),
        ("2021-02", "Summaries with t5", ["<p>fine</p>"]),
        # 2021-03: gpt2 1, llama 1, opt 1
        ("2021-03", "Chat models", ["<p>llama2 vs gpt-2, also OPT</p>"]),
        ("2021-03", "Nothing here", ["<p>just a question about optimizers and tokens</p>"]),
    ]
    for number, (month, title, posts) in enumerate(threads, start=1):
        make_thread(title, source=source, external_id=number, posts=posts, created_at=_when(month))


def test_names_match_whole_words_case_insensitively_and_the_longer_name_wins():
    matcher = trends.build_matcher(["bert", "roberta", "xlm-roberta", "gpt_neox"])
    assert matcher.types_in("I tried GPT-2, Gpt 2 and gpt2") == {"gpt2"}
    assert matcher.types_in("distilbert-base-uncased") == {"distilbert"}
    assert matcher.types_in("xlm-roberta-large") == {"xlm-roberta"}
    assert matcher.types_in("roberta-base and bert") == {"roberta", "bert"}
    assert matcher.types_in("robertabase bertology") == set()
    assert matcher.types_in("EleutherAI/gpt-neox-20b") == {"gpt_neox"}
    assert matcher.types_in("wav2vec 2.0 and Llama 2") == {"wav2vec2", "llama"}


def test_reviewers_rules_exclude_map_and_add_names():
    rules = [
        ("opt", ModelTypeRule.Action.EXCLUDE, ""),
        ("distilroberta", ModelTypeRule.Action.MAP, "roberta"),
        ("stable diffusion", ModelTypeRule.Action.COUNT, ""),
    ]
    matcher = trends.build_matcher(["opt", "roberta"], rules)
    assert matcher.types_in("OPT and distilroberta-base") == {"roberta"}
    assert matcher.types_in("Stable  Diffusion XL") == {"stable diffusion"}
    assert matcher.excluded == {"opt": "opt"}


def test_forum_mentions_per_type_and_month_are_exact():
    _forum()
    table = trends.forum_mentions_table(trends.build_matcher(["bert", "t5", "gpt2", "vit"]))
    assert table.periods == ["2021-01", "2021-02", "2021-03"]
    assert table.counts["bert"] == {"2021-01": 3, "2021-02": 1}
    assert table.counts["gpt2"] == {"2021-01": 2, "2021-03": 1}
    assert table.counts["t5"] == {"2021-01": 1, "2021-02": 2}
    assert table.counts["vit"] == {"2021-02": 1}
    assert table.counts["mt5"] == {"2021-02": 1}
    assert table.counts["xlm-roberta"] == {"2021-02": 1}
    assert table.counts["distilbert"] == {"2021-01": 1}
    assert table.counts["llama"] == {"2021-03": 1}
    assert table.counts["opt"] == {"2021-03": 1}
    assert "roberta" not in table.counts


def test_an_excluded_name_is_no_longer_counted():
    _forum()
    ModelTypeRule.objects.create(name="opt", action=ModelTypeRule.Action.EXCLUDE)
    assert "opt" not in trends.forum_mentions_table().counts


def test_hub_models_created_per_type_and_month_are_exact_and_unknown_dates_left_out():
    _hub("bert", "2021-01", 3)
    _hub("bert", "2021-03", 2)
    _hub("gpt2", "2021-02", 4)
    _hub("bert", None, 7)
    HubModel.objects.create(repo_id="org/untyped", created_at=_when("2021-02"))
    table = trends.hub_created_table()
    assert table.periods == ["2021-01", "2021-02", "2021-03"]
    assert table.counts == {"bert": {"2021-01": 3, "2021-03": 2}, "gpt2": {"2021-02": 4}}
    assert trends.wide_csv(table) == (
        "model_type,2021-01,2021-02,2021-03\nbert,3,0,2\ngpt2,0,4,0\n"
    )


def test_spearman_across_types_and_per_type_over_months_are_the_hand_computed_values():
    _forum()
    # Hub totals bert 40 > t5 20 > gpt2 10 > vit 5; forum totals bert 4 > gpt2 3 > t5 3 > vit 1.
    _hub("bert", "2021-01", 10)
    _hub("bert", "2021-02", 20)
    _hub("bert", "2021-03", 10)
    _hub("t5", "2021-01", 5)
    _hub("t5", "2021-02", 15)
    _hub("gpt2", "2021-01", 6)
    _hub("gpt2", "2021-03", 4)
    _hub("vit", "2021-02", 5)
    forum = trends.forum_mentions_table()
    hub = trends.hub_created_table()
    result = trends.forum_vs_hub(forum, hub, matched_window=False)
    assert result.shared_names == ["bert", "gpt2", "t5", "vit"]
    # Ranks forum (4, 2.5, 2.5, 1) vs hub (4, 2, 3, 1): rho = cov / (sd sd) = 4.5 / sqrt(4.5*5).
    assert result.across.n == 4
    assert result.across.rho == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    # bert over Jan-Mar: forum (3, 1, 0) vs hub (10, 20, 10) -> ranks (3,2,1) vs (1.5,3,1.5).
    assert result.over_time["bert"].rho == pytest.approx(0.0)
    # t5: forum (1, 2, 0) vs hub (5, 15, 0) -> identical ranks.
    assert result.over_time["t5"].rho == pytest.approx(1.0)
    # vit: forum (0, 1, 0) vs hub (0, 5, 0).
    assert result.over_time["vit"].rho == pytest.approx(1.0)


def test_card_shares_per_month_and_year_with_a_kendall_trend():
    _hub("bert", "2021-11", 4, card=True)
    _hub("bert", "2021-11", 6)
    _hub("bert", "2021-12", 6, card=True)
    _hub("bert", "2021-12", 4)
    _hub("t5", "2022-01", 8, card=True)
    _hub("t5", "2022-01", 2)
    _hub("t5", None, 5)
    monthly = trends.card_shares("month")
    assert [(s.period, s.models, s.with_card) for s in monthly] == [
        ("2021-11", 10, 4),
        ("2021-12", 10, 6),
        ("2022-01", 10, 8),
    ]
    assert [s.share for s in monthly] == [0.4, 0.6, 0.8]
    yearly = trends.card_shares("year")
    assert [(s.period, s.models, s.with_card) for s in yearly] == [
        ("2021", 20, 10),
        ("2022", 10, 8),
    ]
    trend = trends.trend_test([s.share for s in monthly])
    # Three rising points: all pairs concordant, tau = 1; exact two-sided p = 2 * 1/3! = 1/3.
    assert trend.tau == pytest.approx(1.0)
    assert trend.p == pytest.approx(1 / 3)
    assert trend.direction == "no significant trend"
    assert trends.trend_test([0.1, 0.2]).direction == "too few points"


def test_the_month_range_fills_quiet_months():
    assert trends.month_range("2021-11", "2022-02") == ["2021-11", "2021-12", "2022-01", "2022-02"]


# The page ---------------------------------------------------------------------------------


def test_any_logged_in_user_sees_the_trends_page_with_its_figures(client, users):
    _forum()
    _hub("bert", "2021-01", 3, card=True)
    _hub("t5", "2021-02", 2)
    _hub("gpt2", "2021-03", 1)
    client.force_login(users["alice"])
    response = client.get("/trends/")
    assert response.status_code == 200
    body = response.content.decode()
    for chart in ("hub", "forum", "totals", "cards"):
        assert f'src="/trends/charts/{chart}.svg"' in body
    assert "Spearman" in body
    assert "Import a Hub dump" not in body


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get("/trends/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_charts_are_served_as_svg_and_png(client, users):
    _forum()
    _hub("bert", "2021-01", 3, card=True)
    client.force_login(users["bob"])
    svg = client.get("/trends/charts/forum.svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert svg.content.lstrip().startswith(b"<?xml")
    png = client.get("/trends/charts/cards.png")
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert client.get("/trends/charts/nonsense.svg").status_code == 404


def test_tables_download_in_the_wide_layout_correlate_reads(client, users, tmp_path):
    from analysis.correlation import read_table

    _forum()
    _hub("bert", "2021-01", 3)
    client.force_login(users["alice"])
    response = client.get("/trends/tables/hub.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    path = tmp_path / "hub.csv"
    path.write_bytes(response.content)
    assert read_table(path).counts == {"bert": {"2021-01": 3}}


def test_the_trends_page_runs_a_fixed_number_of_queries(client, users, django_assert_num_queries):
    _forum()
    _hub("bert", "2021-01", 3)
    client.force_login(users["alice"])
    client.get("/trends/")
    _hub("t5", "2021-02", 30)
    for number in range(20, 40):
        make_thread("More about t5", external_id=number, created_at=_when("2021-02"))
    # The mention counts are computed and stored in the (database) cache: five queries.
    with django_assert_num_queries(15):
        client.get("/trends/")
    # Unchanged data: the mention counts come from the cache, no post is read again.
    with django_assert_num_queries(8):
        response = client.get("/trends/")
    assert "t5" in response.content.decode()


def test_cached_mentions_follow_new_threads_and_new_rules_at_once():
    _forum()
    assert trends.forum_mentions_table().counts["opt"] == {"2021-03": 1}
    make_thread("OPT again", external_id=99, posts=["<p>opt-350m</p>"], created_at=_when("2021-03"))
    assert trends.forum_mentions_table().counts["opt"] == {"2021-03": 2}
    ModelTypeRule.objects.create(name="opt", action=ModelTypeRule.Action.EXCLUDE)
    assert "opt" not in trends.forum_mentions_table().counts


def test_only_staff_may_open_the_review_screen(client, users):
    for name in ("admin", "alice", "outsider"):
        client.force_login(users[name])
        assert client.get("/trends/review/").status_code == 403
    client.force_login(users["staff"])
    response = client.get("/trends/review/")
    assert response.status_code == 200
    assert "opt" in response.content.decode()


def test_staff_exclude_and_map_an_ambiguous_name_and_the_counts_follow(client, users):
    _forum()
    client.force_login(users["staff"])
    response = client.post("/trends/review/", {"name": "opt", "action": "exclude", "note": "verb"})
    assert response.status_code == 302
    rule = ModelTypeRule.objects.get(name="opt")
    assert (rule.action, rule.reviewed_by, rule.note) == ("exclude", users["staff"], "verb")
    mapping = {"name": "vision transformer", "action": "map", "maps_to": "bert"}
    client.post("/trends/review/", mapping)
    table = trends.forum_mentions_table()
    assert "opt" not in table.counts
    assert table.counts["bert"] == {"2021-01": 3, "2021-02": 2}
    assert table.counts["vit"] == {"2021-02": 1}


def test_a_map_without_a_target_is_refused_with_a_message(client, users):
    client.force_login(users["staff"])
    response = client.post("/trends/review/", {"name": "opt", "action": "map", "maps_to": ""})
    assert response.status_code == 400
    assert "Choose the type" in response.content.decode()
    assert not ModelTypeRule.objects.exists()


def test_an_annotator_cannot_post_a_review(client, users):
    client.force_login(users["alice"])
    response = client.post("/trends/review/", {"name": "opt", "action": "exclude"})
    assert response.status_code == 403
    assert not ModelTypeRule.objects.exists()


def test_staff_import_a_hub_dump_from_the_page(client, users):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(users["staff"])
    assert "Import a Hub dump" in client.get("/trends/").content.decode()
    good = SimpleUploadedFile("dump.jsonl", b'{"id": "a/b", "config": {"model_type": "bert"}}\n')
    response = client.post("/trends/import/", {"file": good}, follow=True)
    assert "models: 1 new, 0 updated, 0 unchanged" in response.content.decode()
    bad = SimpleUploadedFile("dump.jsonl", b'{"id": "a/c", "likes": "many"}\n')
    response = client.post("/trends/import/", {"file": bad}, follow=True)
    assert "line 1: field &#x27;likes&#x27;" in response.content.decode()
    assert HubModel.objects.count() == 1
    client.force_login(make_user("plain"))
    assert client.post("/trends/import/", {"file": good}).status_code == 403


def test_the_review_screen_runs_a_fixed_number_of_queries(client, users, django_assert_num_queries):
    _forum()
    client.force_login(users["staff"])
    client.get("/trends/review/")
    for number in range(20, 30):
        make_thread("Is OPT any good?", external_id=number, created_at=_when("2021-02"))
        ModelTypeRule.objects.create(name=f"name{number}", action=ModelTypeRule.Action.EXCLUDE)
    with django_assert_num_queries(8):
        response = client.get("/trends/review/")
    body = response.content.decode()
    # Three examples per name, oldest first: the first forum thread, then two of the new ones.
    assert body.count("Is OPT any good?") == 2
    assert "Chat models" in body


def test_a_model_created_in_the_last_second_of_a_month_counts_in_that_month():
    HubModel.objects.create(
        repo_id="org/late",
        model_type="bert",
        created_at=datetime(2021, 1, 31, 23, 59, 59, tzinfo=UTC),
    )
    HubModel.objects.create(
        repo_id="org/early", model_type="bert", created_at=datetime(2021, 2, 1, 0, 0, tzinfo=UTC)
    )
    assert trends.hub_created_table().counts == {"bert": {"2021-01": 1, "2021-02": 1}}
    assert [s.period for s in trends.card_shares("year")] == ["2021"]


def test_correlate_on_the_pages_two_tables_gives_the_pages_figures(client, users, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    _forum()
    _hub("bert", "2021-01", 10)
    _hub("t5", "2021-02", 15)
    _hub("gpt2", "2021-03", 4)
    _hub("vit", "2021-02", 5)
    _hub("llama", "2021-04", 2)
    _hub("bert", "2021-04", 20)  # outside the forum's months: only the own-window totals see it
    client.force_login(users["alice"])
    for name in ("forum", "hub"):
        (tmp_path / f"{name}.csv").write_bytes(client.get(f"/trends/tables/{name}.csv").content)
    figures = trends.page_figures()
    for flag, comparison in (([], figures.own_windows), (["--matched-window"], figures.matched)):
        out = StringIO()
        call_command(
            "correlate", str(tmp_path / "forum.csv"), str(tmp_path / "hub.csv"), *flag, stdout=out
        )
        across = comparison.across
        assert f"n={across.n} rho={across.rho:.4f} p={across.p:.3g}" in out.getvalue()
    assert figures.own_windows.across.rho != figures.matched.across.rho


def test_a_refused_review_sent_by_htmx_comes_back_as_the_row_with_its_message(client, users):
    client.force_login(users["staff"])
    response = client.post(
        "/trends/review/",
        {"name": "opt", "action": "map", "maps_to": "nonsense"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<tr id="review-opt"')
    assert "Choose the type" in body
    assert not ModelTypeRule.objects.exists()
