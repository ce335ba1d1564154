"""Behaviour that only PostgreSQL can show: row locks between real connections."""

import threading
import time

import pytest
from django.db import connection, transaction

from coding.models import Thread
from tests.factories import make_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_database_is_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 130000


def test_select_for_update_makes_a_second_writer_wait_for_the_first():
    thread = make_thread(title="original")
    order: list[str] = []
    locked = threading.Event()

    def first() -> None:
        with transaction.atomic():
            Thread.objects.select_for_update().get(pk=thread.pk)
            locked.set()
            time.sleep(0.5)
            Thread.objects.filter(pk=thread.pk).update(title="first")
            order.append("first committed")
        connection.close()

    def second() -> None:
        locked.wait(10)
        with transaction.atomic():
            row = Thread.objects.select_for_update().get(pk=thread.pk)
            order.append(f"second read {row.title}")
            Thread.objects.filter(pk=thread.pk).update(title="second")
        connection.close()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)

    assert order == ["first committed", "second read first"]
    thread.refresh_from_db()
    assert thread.title == "second"
