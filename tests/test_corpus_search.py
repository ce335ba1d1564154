"""Full-text search stays in step with every way posts are written (ORM, bulk SQL, edits)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from coding.importers.store import PostRecord, ThreadRecord, store_thread
from coding.models import Thread
from coding.search import ensure_search_index, fts5_query, search_threads, thread_categories
from coding.synthetic import make_corpus
from tests.factories import make_source, make_thread

T0 = datetime(2022, 1, 1, tzinfo=UTC)


def found(text: str) -> list[str]:
    threads = search_threads(Thread.objects.all(), text, connection.vendor)
    return sorted(threads.values_list("title", flat=True))


def test_user_text_becomes_quoted_words_and_phrases():
    assert fts5_query('onnx "out of memory" pad*') == '"onnx" "out of memory" "pad"'
    assert fts5_query('AND ( NEAR " ^') == '"AND" "NEAR"'
    assert fts5_query("  ") == ""
    assert fts5_query(" ".join(f"w{i}" for i in range(30))).count('"') == 24


@pytest.mark.django_db
def test_threads_written_by_the_synthetic_bulk_inserts_are_searchable():
    make_corpus(30, 3, seed=3, source_name="Bulk")
    expected = set(
        Thread.objects.filter(posts__plain_text__icontains="license").values_list("pk", flat=True)
    )
    matches = search_threads(Thread.objects.all(), "license", connection.vendor)

    assert expected
    assert set(matches.values_list("pk", flat=True)) == expected


@pytest.mark.django_db
def test_an_edited_post_is_found_by_its_new_words_only():
    source = make_source()
    record = ThreadRecord(
        external_id=1,
        title="Loading weights",
        created_at=T0,
        posts=[PostRecord(11, 1, "ana", T0, "<p>The checkpoint is corrupted.</p>")],
    )
    store_thread(source, record)
    assert found("corrupted") == ["Loading weights"]

    record.posts[0].html = "<p>The checkpoint was truncated.</p>"
    store_thread(source, record)

    assert found("corrupted") == []
    assert found("truncated") == ["Loading weights"]


@pytest.mark.django_db
def test_a_renamed_or_deleted_thread_leaves_no_stale_matches():
    thread = make_thread("Gradio queue stalls", posts=["<p>The queue never drains.</p>"])
    assert found("gradio") == ["Gradio queue stalls"]
    Thread.objects.filter(pk=thread.pk).update(title="Space restarts")
    assert found("gradio") == []
    assert found("space") == ["Space restarts"]

    thread.delete()

    assert found("drains") == []
    assert found("space") == []


@pytest.mark.django_db
def test_the_search_index_survives_a_table_rebuild_by_a_later_migration():
    make_thread("Accelerate hangs", posts=["<p>Two GPUs wait forever.</p>"])
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER coding_post_search_insert")
        assert ensure_search_index(connection) is True
        make_thread("Later thread", external_id=2, posts=["<p>Deadlock at the barrier.</p>"])
        assert ensure_search_index(connection) is False
    else:
        assert ensure_search_index(connection) is False
        make_thread("Later thread", external_id=2, posts=["<p>Deadlock at the barrier.</p>"])
    assert found("forever") == ["Accelerate hangs"]
    assert found("deadlock") == ["Later thread"]


@pytest.mark.django_db
def test_renumbered_posts_stay_searchable_by_their_own_words():
    source = make_source()
    first = PostRecord(11, 1, "ana", T0, "<p>Loading fails with a pickle error.</p>")
    second = PostRecord(12, 2, "ben", T0, "<p>Try safetensors instead.</p>")
    record = ThreadRecord(external_id=1, title="Loading", created_at=T0, posts=[first, second])
    store_thread(source, record)

    second.post_number = 3
    inserted = PostRecord(13, 2, "cy", T0, "<p>Which library version?</p>")
    record.posts = [first, inserted, second]
    store_thread(source, record)

    assert found("safetensors") == ["Loading"]
    assert found("library version") == ["Loading"]
    assert found("pickle") == ["Loading"]
    Thread.objects.all().delete()
    assert found("safetensors") == found("library") == found("pickle") == []


@pytest.mark.django_db
def test_categories_are_listed_once_each_in_order():
    for n, category in enumerate(["Spaces", "Beginners", "Spaces", "", "Course"], start=1):
        make_thread(f"T{n}", external_id=n, category=category, posts=["<p>x</p>"])
    assert thread_categories(connection) == ["", "Beginners", "Course", "Spaces"]
