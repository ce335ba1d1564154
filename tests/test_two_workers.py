"""Two task workers on one database: every queued import runs once, never twice."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
from django_tasks_db.models import DBTaskResult

from coding.importers.discourse import ImportOptions
from coding.models import ImportRun, Thread
from coding.tasks import start_discourse_import
from tests.child_process import ROOT, db_env, manage
from tests.fake_discourse import FakeDiscourse, FakeForum

FORUMS = 6
TOPICS = 4


def _forum() -> FakeForum:
    forum = FakeForum()
    for topic_id in range(1, TOPICS + 1):
        forum.add_topic(topic_id, posts=3)
    return forum


def _worker(n: int) -> subprocess.Popen:
    return subprocess.Popen(
        manage("db_worker", "--interval", "0.1", "--no-reload", "--worker-id", f"worker-{n}"),
        env=db_env(IMPORT_ALLOW_PRIVATE_HOSTS="1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_finished(runs: list[ImportRun], workers: list[subprocess.Popen]) -> None:
    finished = {ImportRun.State.DONE, ImportRun.State.FAILED, ImportRun.State.CANCELLED}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = set(
            ImportRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("state", flat=True)
        )
        if states <= finished:
            return
        for worker in workers:
            if worker.poll() is not None:
                pytest.fail(f"a worker exited early: {worker.stderr.read()[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"imports still running after 120 s: {states}")


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_queued_imports_and_none_runs_twice(users):
    # Slow answers make each import last a second or more, so one worker alone could not
    # finish the queue before the other has started.
    servers = [FakeDiscourse(_forum(), delay=0.25).start() for _ in range(FORUMS)]
    workers: list[subprocess.Popen] = []
    try:
        runs = [
            start_discourse_import(ImportOptions(base_url=s.url, rate=0), users["staff"])
            for s in servers
        ]
        workers = [_worker(1), _worker(2)]
        _wait_until_finished(runs, workers)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for server in servers:
            server.stop()

    for run in ImportRun.objects.filter(pk__in=[r.pk for r in runs]):
        assert run.state == ImportRun.State.DONE, run.message
        assert run.summary_line() == (
            f"threads: {TOPICS} new, 0 updated, 0 unchanged; "
            f"posts: {TOPICS * 3} new, 0 updated, 0 unchanged"
        )
    assert Thread.objects.count() == FORUMS * TOPICS
    # Each forum's topics were fetched by one import only: a second run of the same
    # import would ask for every topic again.
    for server in servers:
        topics = Counter(p.split("?")[0] for p in server.requests if p.startswith("/t/"))
        assert len(topics) == TOPICS and set(topics.values()) == {1}, topics
    tasks = list(DBTaskResult.objects.filter(id__in=[r.task_id for r in runs]))
    assert len(tasks) == FORUMS
    assert all(t.status == "SUCCESSFUL" and len(t.worker_ids) == 1 for t in tasks)
    assert {t.return_value for t in tasks} == {ImportRun.State.DONE}
    # Both workers took part, so the runs above were shared out, not queued behind one.
    assert {t.worker_ids[0] for t in tasks} == {"worker-1", "worker-2"}
