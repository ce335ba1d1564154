from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from coding.models import Post, Tag, Thread
from tests.factories import make_source, make_thread

pytestmark = pytest.mark.django_db


def test_thread_and_posts_round_trip_with_times_in_utc():
    source = make_source()
    thread = make_thread(
        "Tokenizer adds <pad> twice",
        source=source,
        external_id=42,
        posts=["<p>First &amp; foremost</p>", "<p>Second</p>"],
    )
    thread.tags.add(Tag.objects.create(name="tokenizers"))

    loaded = Thread.objects.get(source=source, external_id=42)
    assert loaded.title == "Tokenizer adds <pad> twice"
    assert loaded.created_at == datetime(2022, 3, 1, 12, 0, tzinfo=UTC)
    assert loaded.created_at.utcoffset().total_seconds() == 0
    assert [t.name for t in loaded.tags.all()] == ["tokenizers"]
    posts = list(loaded.posts.all())
    assert [p.post_number for p in posts] == [1, 2]
    assert posts[0].plain_text == "First & foremost"
    assert len(posts[0].content_hash) == 64


def test_a_topic_id_is_unique_within_its_source_only():
    make_thread(external_id=7, source=make_source("Forum A", "https://a.test"))
    make_thread(external_id=7, source=make_source("Forum B", "https://b.test"))
    with pytest.raises(IntegrityError), transaction.atomic():
        make_thread(external_id=7, source=make_source("Forum A", "https://a.test"))
    assert Thread.objects.count() == 2


def test_a_post_number_is_unique_within_its_thread():
    thread = make_thread(posts=["<p>one</p>"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Post.objects.create(
            thread=thread,
            external_id=999,
            post_number=1,
            created_at=thread.created_at,
            html="",
            plain_text="",
            content_hash="x",
        )


def test_two_sources_cannot_share_a_base_url_but_may_both_have_none():
    make_source("File dump 1", "")
    make_source("File dump 2", "")
    make_source("Forum", "https://forum.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_source("Same forum again", "https://forum.test")


def test_sqlite_runs_in_wal_mode_on_a_file():
    if connection.vendor != "sqlite":
        assert connection.vendor == "postgresql"
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.settings_dict["NAME"] != ":memory:"
    assert "mode=memory" not in str(connection.settings_dict["NAME"])
