from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coding.importers.store import PostRecord, ThreadRecord, store_thread
from coding.models import Post, Thread
from tests.factories import make_source

pytestmark = pytest.mark.django_db

T0 = datetime(2022, 5, 1, 9, 30, tzinfo=UTC)


def _record(**changes) -> ThreadRecord:
    posts = changes.pop(
        "posts",
        [
            PostRecord(11, 1, "asker", T0, "<p>How do I load <b>BERT</b>?</p>"),
            PostRecord(12, 2, "helper", T0, "<p>Use from_pretrained.</p>", is_accepted_answer=True),
        ],
    )
    return ThreadRecord(
        external_id=5,
        title="Loading BERT",
        created_at=T0,
        posts=posts,
        category="Beginners",
        tags=["bert", "pytorch"],
        **changes,
    )


def test_a_new_thread_is_stored_sanitized_with_plain_text():
    counts = store_thread(make_source(), _record())
    assert counts.summary_line() == (
        "threads: 1 new, 0 updated, 0 unchanged; posts: 2 new, 0 updated, 0 unchanged"
    )
    thread = Thread.objects.get()
    assert thread.has_accepted_answer
    assert sorted(thread.tags.values_list("name", flat=True)) == ["bert", "pytorch"]
    assert Post.objects.get(post_number=1).plain_text == "How do I load BERT?"


def test_storing_the_same_thread_again_writes_nothing():
    source = make_source()
    store_thread(source, _record())
    with CaptureQueriesContext(connection) as queries:
        counts = store_thread(source, _record())
    assert counts.writes == 0
    assert counts.threads_unchanged == 1 and counts.posts_unchanged == 2
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []


def test_an_edited_post_is_updated_in_place_and_keeps_its_row():
    source = make_source()
    store_thread(source, _record())
    before = Post.objects.get(external_id=12).pk
    edited = _record()
    edited.posts[1].html = "<p>Use AutoModel.from_pretrained.</p>"
    counts = store_thread(source, edited)
    assert (counts.posts_updated, counts.posts_unchanged, counts.posts_new) == (1, 1, 0)
    post = Post.objects.get(external_id=12)
    assert post.pk == before
    assert post.plain_text == "Use AutoModel.from_pretrained."


def test_a_post_missing_from_a_complete_record_is_marked_deleted_not_dropped():
    source = make_source()
    store_thread(source, _record())
    shorter = _record()
    shorter.posts = shorter.posts[:1]
    counts = store_thread(source, shorter)
    assert counts.posts_updated == 1
    assert Post.objects.get(external_id=12).deleted_upstream
    assert Post.objects.count() == 2


def test_posts_inserted_in_bulk_read_back_as_prepared_and_store_again_unchanged():
    from coding.importers.store import POST_FIELDS, prepare_post, store_threads

    source = make_source()
    record = _record()
    record.posts[1].updated_at = datetime(2022, 5, 2, 10, 0, 0, 123456, tzinfo=UTC)
    record.posts[1].reply_to_post_number = 1
    counts = store_threads(source, [record])
    assert counts.posts_new == 2
    for posted in record.posts:
        stored = Post.objects.get(external_id=posted.external_id)
        expected = prepare_post(posted)
        assert {k: getattr(stored, k) for k in POST_FIELDS} == expected
    assert store_threads(source, [record]).writes == 0


def test_new_threads_are_stored_alike_where_inserts_cannot_return_their_rows(monkeypatch):
    from coding.importers import store

    monkeypatch.setattr(store, "_can_return_rows", lambda model: False)
    other = _record()
    other.external_id = 6
    counts = store.store_threads(make_source(), [_record(), other])
    assert (counts.threads_new, counts.posts_new) == (2, 4)
    for thread in Thread.objects.all():
        assert sorted(thread.tags.values_list("name", flat=True)) == ["bert", "pytorch"]
        assert sorted(thread.posts.values_list("external_id", flat=True)) == [11, 12]
