"""The task worker killed in the middle of a web-started import, then started again.

Nothing is half-written: every stored thread has all its posts and the run's progress
matches what is stored. The page shows the run as stopped; resuming marks it failed with
the reason and a new run continues after the last stored topic to the full corpus.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter

import pytest
from django.db.models import Count

from coding.importers.discourse import ImportOptions
from coding.models import ImportRun, Thread
from coding.tasks import start_discourse_import
from tests.child_process import ROOT, db_env, manage
from tests.fake_discourse import FakeDiscourse, FakeForum

TOPICS = 60
POSTS = 3

pytestmark = pytest.mark.django_db(transaction=True)


def _worker() -> subprocess.Popen:
    return subprocess.Popen(
        manage("db_worker", "--interval", "0.1", "--no-reload"),
        env=db_env(IMPORT_ALLOW_PRIVATE_HOSTS="1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"waited {seconds} s for {what}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _assert_whole_threads() -> None:
    sizes = Counter(Thread.objects.annotate(n=Count("posts")).values_list("n", flat=True))
    assert set(sizes) <= {POSTS}, f"threads with a partial set of posts: {sizes}"


def test_a_worker_killed_mid_import_leaves_whole_threads_and_the_import_resumes(
    client, users, settings
):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = True
    forum = FakeForum()
    for topic_id in range(1, TOPICS + 1):
        forum.add_topic(topic_id, posts=POSTS)
    client.force_login(users["staff"])
    with FakeDiscourse(forum, delay=0.05) as fake:
        run = start_discourse_import(ImportOptions(base_url=fake.url, rate=0), users["staff"])
        worker = _worker()
        try:
            _wait_for(lambda: ImportRun.objects.get(pk=run.pk).topics_done > 0, "a first batch")
            worker.kill()
            worker.wait(timeout=30)
        finally:
            _stop(worker)

        run.refresh_from_db()
        stored = Thread.objects.count()
        stored_ids = set(Thread.objects.values_list("external_id", flat=True))
        requests_before = len(fake.requests)
        assert 0 < stored < TOPICS, "kill came too late to test anything"
        _assert_whole_threads()
        assert run.topics_done == stored
        assert run.is_active  # nobody finished it ...
        page = client.get(f"/imports/{run.pk}/").content.decode()
        assert "it was probably stopped" in page and "Run again and resume" in page

        worker = _worker()
        try:
            response = client.post(f"/imports/{run.pk}/resume/")
            assert response.status_code == 302
            new = ImportRun.objects.exclude(pk=run.pk).get()
            _wait_for(lambda: not ImportRun.objects.get(pk=new.pk).is_active, "the resumed run")
        finally:
            _stop(worker)

        resumed_topics = {
            int(match.group(1))
            for path in fake.requests[requests_before:]
            if (match := re.match(r"/t/(\d+)", path))
        }

    run.refresh_from_db()
    new.refresh_from_db()
    assert run.state == ImportRun.State.FAILED
    assert "Interrupted" in run.message
    assert new.state == ImportRun.State.DONE, new.message
    assert Thread.objects.count() == TOPICS
    _assert_whole_threads()
    # The resumed run fetched only what the killed one had not stored.
    assert resumed_topics and not resumed_topics & stored_ids
