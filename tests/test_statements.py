"""Fixed statements: the same rows, values and errors as Django's own cursor and ORM,
whether queries are being logged (Django's cursor) or not (one kept raw cursor)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from coding import statements
from coding.codings import posts_for_unit
from coding.models import Post, Thread, Unit

from .factories import make_thread

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["raw", "logged"])
def path(request):
    """Run each test once on the kept raw cursor and once through Django's cursor."""
    if request.param == "logged":
        with CaptureQueriesContext(connection) as captured:
            yield captured
        assert captured.captured_queries, "the statements were not logged"
    else:
        assert not connection.queries_logged
        yield None


def test_rows_and_values_are_the_orms(path):
    thread = make_thread(posts=["<p>One 100%</p>", "<p>Two</p>"])
    found = statements.rows(
        "SELECT id, created_at, title FROM coding_thread WHERE id = %s AND title LIKE '%%BERT%%'",
        [thread.pk],
    )
    assert len(found) == 1
    made = statements.instance(Thread, ("id", "created_at", "title"), found[0])
    assert (made.pk, made.created_at, made.title) == (thread.pk, thread.created_at, thread.title)
    assert made.created_at == datetime(2022, 3, 1, 12, 0, tzinfo=UTC)
    assert made._state.adding is False
    # A field the statement did not read is deferred and read when used.
    assert made.category == "Beginners"
    assert statements.one("SELECT COUNT(*) FROM coding_post WHERE thread_id = %s", [thread.pk]) == (
        2,
    )


def test_fields_in_any_order_and_wrong_fields_refused(path):
    thread = make_thread()
    row = statements.one("SELECT title, id FROM coding_thread WHERE id = %s", [thread.pk])
    made = statements.instance(Thread, ("title", "id"), row)
    assert (made.pk, made.title) == (thread.pk, thread.title)
    with pytest.raises(ValueError, match="2 fields, 1 values"):
        statements.instance(Thread, ("title", "id"), row[:1])
    with pytest.raises(ValueError, match=r"not fields of coding\.Thread"):
        statements.instance(Thread, ("title", "nonsense"), row)


def test_errors_are_djangos_and_roll_the_transaction_back(path):
    thread = make_thread()
    post = Post.objects.filter(thread=thread).first()
    insert = (
        "INSERT INTO coding_post (thread_id, external_id, post_number, author, created_at, "
        "html, plain_text, content_hash, is_accepted_answer, deleted_upstream) "
        "VALUES (%s, %s, %s, 'x', %s, '', '', '', %s, %s)"
    )
    stamp = statements.db_datetime(post.created_at)
    with pytest.raises(IntegrityError), transaction.atomic():
        statements.execute(insert, [thread.pk, 90001, 90, stamp, False, False])
        # The same post number again breaks the thread's unique numbering.
        statements.execute(insert, [thread.pk, 90002, 90, stamp, False, False])
    assert statements.one("SELECT COUNT(*) FROM coding_post WHERE thread_id = %s", [thread.pk]) == (
        2,
    )
    with pytest.raises(TransactionManagementError), transaction.atomic():
        # Django's own rule holds as well: nothing runs in a transaction marked broken.
        transaction.set_rollback(True)
        statements.one("SELECT 1", [])


def test_execute_counts_changed_rows(path):
    thread = make_thread(posts=["<p>a</p>", "<p>b</p>", "<p>c</p>"])
    changed = statements.execute(
        "UPDATE coding_post SET author = %s WHERE thread_id = %s AND post_number > %s",
        ["someone", thread.pk, 1],
    )
    assert changed == 2
    assert sorted(Post.objects.filter(thread=thread).values_list("author", flat=True)) == [
        "someone",
        "someone",
        "user1",
    ]


def test_unit_posts_in_order_with_their_part_in_the_unit(path, users):
    from .factories import make_project

    thread = make_thread(posts=["<p>Question</p>", "<p>Answer</p>", "<p>Thanks</p>"])
    Post.objects.filter(thread=thread, post_number=2).update(is_accepted_answer=True)
    project = make_project(admin=users["admin"])
    second = Post.objects.get(thread=thread, post_number=2)
    whole = Unit(project=project, thread=thread)
    single = Unit(project=project, thread=thread, post=second)
    posts = posts_for_unit(whole)
    assert [(p.post_number, p.is_accepted_answer, p.is_unit) for p in posts] == [
        (1, False, True),
        (2, True, True),
        (3, False, True),
    ]
    assert posts[0].created_at == datetime(2022, 3, 1, 12, 0, tzinfo=UTC)
    assert posts[1].plain_text == "Answer"
    assert [(p.post_number, p.is_unit) for p in posts_for_unit(single)] == [(1, False), (2, True)]


def test_a_new_connection_gets_a_new_cursor(path):
    thread = make_thread()
    sql = "SELECT title FROM coding_thread WHERE id = %s"
    assert statements.one(sql, [thread.pk]) == (thread.title,)
    if path is None:
        # Outside a test's transaction a closed connection is reopened on the next
        # statement; here the test's transaction holds it, so drop the kept cursor's
        # connection by hand as a reconnect would.
        kept = connection._fixed_statement_cursor
        connection._fixed_statement_cursor = (object(), kept[1])
        assert statements.one(sql, [thread.pk]) == (thread.title,)
        assert connection._fixed_statement_cursor[0] is connection.connection
        assert connection._fixed_statement_cursor[1] is not kept[1]
