"""Writers in several threads at once: nothing is lost and nobody sees 'database is locked'."""

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from coding.models import Post, Thread
from tests.factories import make_thread

pytestmark = pytest.mark.django_db(transaction=True)


def _write_posts(thread_id: int, writer: int, count: int, errors: list[BaseException]) -> None:
    try:
        for n in range(count):
            with transaction.atomic():
                # Read, then write: the pattern that deadlocks under DEFERRED transactions.
                last = Post.objects.filter(thread_id=thread_id).count()
                Post.objects.create(
                    thread_id=thread_id,
                    external_id=writer * 10_000 + n,
                    post_number=writer * 10_000 + n + 1,
                    author=f"w{writer}",
                    created_at="2022-01-01T00:00:00Z",
                    html="<p>x</p>",
                    plain_text=f"after {last}",
                    content_hash="h",
                )
    except BaseException as exc:
        errors.append(exc)
    finally:
        connection.close()


def test_eight_concurrent_writers_all_land():
    thread = make_thread(posts=[])
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=_write_posts, args=(thread.pk, w, 25, errors)) for w in range(8)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    close_old_connections()

    assert errors == []
    assert Post.objects.filter(thread=thread).count() == 8 * 25
    assert Thread.objects.count() == 1
