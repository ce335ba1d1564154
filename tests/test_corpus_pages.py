"""The corpus list (search, filters, sorting, pages) and the thread page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from coding.importers.store import PostRecord, ThreadRecord, store_thread
from coding.models import Thread
from tests.factories import make_project, make_source, make_user

pytestmark = pytest.mark.django_db

T0 = datetime(2021, 1, 10, 12, 0, tzinfo=UTC)


def add_thread(
    source,
    topic_id: int,
    title: str,
    *,
    category: str = "Beginners",
    tags: tuple[str, ...] = (),
    bodies: tuple[str, ...] = ("<p>A question.</p>", "<p>An answer.</p>"),
    created_at: datetime = T0,
    accepted: int = 0,
    views: int = 0,
) -> Thread:
    posts = [
        PostRecord(
            external_id=topic_id * 100 + n,
            post_number=n,
            author=f"user{n}",
            created_at=created_at + timedelta(hours=n),
            html=body,
            reply_to_post_number=1 if n == 3 else None,
            is_accepted_answer=n == accepted,
        )
        for n, body in enumerate(bodies, start=1)
    ]
    record = ThreadRecord(
        external_id=topic_id,
        title=title,
        created_at=created_at,
        posts=posts,
        slug=f"topic-{topic_id}",
        category=category,
        tags=list(tags),
        views=views,
    )
    store_thread(source, record)
    return Thread.objects.get(source=source, external_id=topic_id)


@pytest.fixture
def corpus():
    forum = make_source("HF forum", "https://discuss.example.org")
    other = make_source("Other forum", "")
    return {
        "onnx": add_thread(
            forum,
            1,
            "Exporting to ONNX fails",
            category="Transformers",
            tags=("onnx",),
            bodies=("<p>The exporter raises a shape error.</p>", "<p>Upgrade the library.</p>"),
            created_at=datetime(2020, 5, 1, tzinfo=UTC),
            accepted=2,
            views=500,
        ),
        "memory": add_thread(
            forum,
            2,
            "Training stops early",
            category="Beginners",
            tags=("memory", "cuda"),
            bodies=("<p>CUDA out of memory after 300 steps.</p>", "<p>Use a smaller batch.</p>"),
            created_at=datetime(2022, 7, 1, tzinfo=UTC),
            views=20,
        ),
        "tokenizer": add_thread(
            other,
            3,
            "Tokenizers pad on the left",
            category="Course",
            tags=("tokenizers",),
            bodies=("<p>Why is padding on the left?</p>",),
            created_at=datetime(2023, 2, 1, tzinfo=UTC),
            views=70,
        ),
    }


def reader():
    """A signed-in user with no project: every user may browse the corpus."""
    return get_user_model().objects.create(username="reader")


def titles(response) -> list[str]:
    return [t.title for t in response.context["page"].object_list]


def test_the_corpus_page_needs_a_login(client):
    response = client.get("/corpus/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_every_role_sees_every_thread_with_counts(client, users, corpus):
    make_project("study", admin=users["admin"], annotators=[users["alice"], users["bob"]])
    for user in users.values():
        client.force_login(user)
        assert titles(client.get("/corpus/")) == titles(client.get("/corpus/", {"page": "1"}))
    client.force_login(users["outsider"])
    response = client.get("/corpus/")

    assert response.status_code == 200
    assert titles(response) == [
        "Tokenizers pad on the left",
        "Training stops early",
        "Exporting to ONNX fails",
    ]
    body = response.content.decode()
    assert "<strong>3</strong> threads" in body
    assert "<strong>5</strong> posts" in body


def test_search_finds_words_in_post_text_and_in_titles(client, corpus):
    client.force_login(reader())
    assert titles(client.get("/corpus/", {"q": "shape error"})) == ["Exporting to ONNX fails"]
    assert titles(client.get("/corpus/", {"q": "onnx"})) == ["Exporting to ONNX fails"]
    assert titles(client.get("/corpus/", {"q": "smaller batch"})) == ["Training stops early"]
    assert titles(client.get("/corpus/", {"q": "batch onnx"})) == []


def test_search_matches_word_forms_and_quoted_phrases(client, corpus):
    client.force_login(reader())
    assert titles(client.get("/corpus/", {"q": "tokenizer"})) == ["Tokenizers pad on the left"]
    assert titles(client.get("/corpus/", {"q": '"smaller batch"'})) == ["Training stops early"]
    assert titles(client.get("/corpus/", {"q": '"batch smaller"'})) == []


def test_search_syntax_characters_never_cause_an_error(client, corpus):
    client.force_login(reader())
    for text in ['"', "AND OR NOT", "*", "title:onnx)", "NEAR(a b", "'; DROP TABLE coding_post"]:
        assert client.get("/corpus/", {"q": text}).status_code == 200
    assert titles(client.get("/corpus/", {"q": "onnx)*"})) == ["Exporting to ONNX fails"]
    assert Thread.objects.count() == 3


def test_filters_by_source_category_tag_dates_and_accepted_answer(client, corpus):
    client.force_login(reader())
    other = corpus["tokenizer"].source_id
    assert titles(client.get("/corpus/", {"source": other})) == ["Tokenizers pad on the left"]
    assert titles(client.get("/corpus/", {"category": "Beginners"})) == ["Training stops early"]
    assert titles(client.get("/corpus/", {"tag": "cuda"})) == ["Training stops early"]
    assert titles(client.get("/corpus/", {"since": "2022-07-01", "until": "2022-07-01"})) == [
        "Training stops early"
    ]
    assert titles(client.get("/corpus/", {"until": "2021-12-31"})) == ["Exporting to ONNX fails"]
    assert titles(client.get("/corpus/", {"accepted": "yes"})) == ["Exporting to ONNX fails"]
    assert len(titles(client.get("/corpus/", {"accepted": "no"}))) == 2
    assert titles(client.get("/corpus/", {"q": "padding", "category": "Course"})) == [
        "Tokenizers pad on the left"
    ]


def test_sorting_uses_only_the_offered_orders(client, corpus):
    client.force_login(reader())
    assert titles(client.get("/corpus/", {"sort": "views"}))[0] == "Exporting to ONNX fails"
    assert titles(client.get("/corpus/", {"sort": "oldest"}))[0] == "Exporting to ONNX fails"
    assert titles(client.get("/corpus/", {"sort": "posts"}))[-1] == "Tokenizers pad on the left"

    response = client.get("/corpus/", {"sort": "title; DROP TABLE coding_thread"})
    assert response.status_code == 200
    assert titles(response)[0] == "Tokenizers pad on the left"  # newest first
    assert "Sort: Select a valid choice" in response.content.decode()


def test_unknown_filter_values_are_reported_and_ignored(client, corpus):
    client.force_login(reader())
    response = client.get(
        "/corpus/",
        {"category": "No such category", "source": "x", "tag": "nope", "since": "yesterday"},
    )
    assert response.status_code == 200
    assert len(titles(response)) == 3
    body = response.content.decode()
    assert "Category: Select a valid choice. No such category is not one of" in body
    assert "From: Enter a valid date." in body

    response = client.get("/corpus/", {"since": "2023-01-01", "until": "2020-01-01"})
    assert "The end of the date window is before its start." in response.content.decode()


def test_an_htmx_request_gets_only_the_results_fragment(client, corpus):
    client.force_login(reader())
    response = client.get("/corpus/", {"q": "onnx"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="corpus-results"')
    assert "<html" not in body
    assert "Exporting to ONNX fails" in body
    # The browser's back button must not show the fragment as the page.
    assert "HX-Request" in response["Vary"]
    assert "HX-Request" in client.get("/corpus/", {"q": "onnx"})["Vary"]


def test_long_result_lists_are_split_into_pages_that_keep_the_filters(client):
    forum = make_source()
    for i in range(1, 56):
        add_thread(forum, i, f"Thread {i:02d}", bodies=("<p>x</p>",), created_at=T0 + timedelta(i))
    client.force_login(reader())

    first = client.get("/corpus/", {"category": "Beginners"})
    second = client.get("/corpus/", {"category": "Beginners", "page": 2})

    assert len(titles(first)) == 50 and titles(first)[0] == "Thread 55"
    assert titles(second) == [f"Thread {i:02d}" for i in range(5, 0, -1)]
    assert "?category=Beginners&amp;page=2" in first.content.decode()
    assert titles(client.get("/corpus/", {"page": "999"})) == titles(second)
    # A number below 1 or no number at all asks for the first page, not the last.
    for page in ("0", "-3", "two", ""):
        assert titles(client.get("/corpus/", {"page": page})) == titles(first), page


def test_a_search_with_no_letters_or_digits_says_so_instead_of_seeming_to_match(client, corpus):
    client.force_login(reader())
    for text in ("🤗", "?!", "--", "<>"):
        response = client.get("/corpus/", {"q": text})
        body = response.content.decode()
        assert response.status_code == 200
        assert len(titles(response)) == 3
        shown = text.replace("<", "&lt;").replace(">", "&gt;")
        assert f"Search: “{shown}” has no letters or digits to search for (ignored)" in body
    assert "no letters or digits" not in client.get("/corpus/", {"q": "onnx 🤗"}).content.decode()
    assert titles(client.get("/corpus/", {"q": "onnx 🤗"})) == ["Exporting to ONNX fails"]


def _grow(source, start: int, count: int) -> None:
    for i in range(start, start + count):
        add_thread(source, i, f"Grown thread {i} about onnx", tags=(f"tag{i % 7}", "onnx"))


@pytest.mark.parametrize("params", [{}, {"q": "onnx", "tag": "onnx", "sort": "views"}])
def test_the_corpus_page_makes_the_same_number_of_queries_at_any_size(
    client, django_assert_num_queries, params
):
    # session with user, sources, categories, tags, totals, page, tags of the page
    source = make_source()
    client.force_login(reader())
    _grow(source, 1, 3)
    with django_assert_num_queries(7):
        assert client.get("/corpus/", params).status_code == 200
    _grow(source, 100, 60)
    with django_assert_num_queries(7):
        response = client.get("/corpus/", params)
    assert len(titles(response)) == 50


def test_the_thread_page_shows_posts_in_order_with_replies_answer_and_original_links(client):
    forum = make_source("HF forum", "https://discuss.example.org")
    thread = add_thread(
        forum,
        42,
        "Exporting to ONNX fails",
        tags=("onnx",),
        bodies=("<p>First</p>", "<p>Second</p>", "<p>Third replies to the first</p>"),
        accepted=2,
    )
    client.force_login(reader())

    response = client.get(f"/threads/{thread.pk}/")

    body = response.content.decode()
    assert body.index("First") < body.index("Second") < body.index("Third replies")
    assert '<a href="#post-1" class="reply-to">in reply to #1</a>' in body
    assert body.count("Accepted answer") == 1
    assert 'class="post accepted"' in body
    assert 'href="https://discuss.example.org/t/topic-42/42/3"' in body
    assert 'href="https://discuss.example.org/t/topic-42/42"' in body
    assert '<span class="tag">onnx</span>' in body
    assert 'href="/corpus/"' in body


def test_the_thread_page_makes_the_same_number_of_queries_for_long_threads(
    client, django_assert_num_queries
):
    forum = make_source()
    short = add_thread(forum, 1, "Short", bodies=("<p>a</p>",))
    long = add_thread(
        forum, 2, "Long", tags=("a", "b"), bodies=tuple("<p>x</p>" for _ in range(40))
    )
    client.force_login(reader())
    with django_assert_num_queries(4):
        client.get(f"/threads/{short.pk}/")
    with django_assert_num_queries(4):
        client.get(f"/threads/{long.pk}/")


def test_a_missing_thread_is_not_found(client):
    client.force_login(make_user("alice"))
    assert client.get("/threads/999/").status_code == 404


def test_a_thread_url_that_is_not_a_web_link_is_not_offered(client):
    thread = add_thread(make_source(), 5, "Odd link", bodies=("<p>x</p>",))
    Thread.objects.filter(pk=thread.pk).update(url="javascript:alert(1)")
    client.force_login(reader())

    body = client.get(f"/threads/{thread.pk}/").content.decode()

    assert "javascript:" not in body
    assert "open on the forum" not in body
