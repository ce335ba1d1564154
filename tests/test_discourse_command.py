"""``import_discourse`` as a user runs it: a real process, killed and re-run, a terminal."""

from __future__ import annotations

import io
import os
import pty
import random
import select
import signal
import subprocess
import time

import pytest
from django.core.management import CommandError, call_command

from coding.models import ForumSource, ImportRun, Post, Thread
from tests.child_process import ROOT, db_env, manage
from tests.fake_discourse import FakeDiscourse, FakeForum, make_forum


def command(*args: str) -> list[str]:
    return manage("import_discourse", *args)


def corpus(source: ForumSource) -> tuple[dict, dict]:
    """Everything an import wrote for one source, keyed by forum ids."""
    threads = {
        row[0]: row[1:]
        for row in Thread.objects.filter(source=source).values_list(
            "external_id", "title", "slug", "category", "created_at", "last_posted_at",
            "bumped_at", "views", "reply_count", "like_count", "posts_count",
            "has_accepted_answer",
        )
    }  # fmt: skip
    posts = {
        row[0]: row[1:]
        for row in Post.objects.filter(thread__source=source).values_list(
            "external_id", "thread__external_id", "post_number", "author", "created_at",
            "updated_at", "reply_to_post_number", "is_accepted_answer", "html", "plain_text",
            "content_hash", "deleted_upstream",
        )
    }  # fmt: skip
    tags = {
        t.external_id: sorted(t.tags.values_list("name", flat=True))
        for t in Thread.objects.filter(source=source)
    }
    return {"threads": threads, "tags": tags}, posts


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_at_random_points_and_rerun_ends_with_the_uninterrupted_corpus():
    forum = make_forum(90, 900, long_topics=2, long_size=110, seed=7)
    rng = random.Random(20240611)
    with FakeDiscourse(forum) as reference, FakeDiscourse(forum, delay=0.004) as fake:
        call_command("import_discourse", reference.url, "--rate", "0", stdout=io.StringIO())
        env = db_env()
        for _kill in range(3):
            stored_before = set(
                Thread.objects.filter(source__base_url=fake.url).values_list(
                    "external_id", flat=True
                )
            )
            first_request = len(fake.requests)
            reached = fake.event_after(first_request + rng.randint(10, 70))
            process = subprocess.Popen(command(fake.url, "--rate", "0"), env=env, cwd=ROOT)
            while process.poll() is None and not reached.wait(0.02):
                pass
            process.kill()
            process.wait()
            # The killed run re-fetched no topic an earlier run had finished ...
            fetched = {
                int(p.split("/")[2].removesuffix(".json"))
                for p in fake.requests[first_request:]
                if p.startswith("/t/")
            }
            assert not fetched & stored_before
            # ... and left no partial topic behind.
            for thread in Thread.objects.filter(source__base_url=fake.url):
                assert thread.posts.count() == len(forum.topics[thread.external_id].posts)

        finished = subprocess.run(
            command(fake.url, "--rate", "0"), env=env, cwd=ROOT, capture_output=True, text=True
        )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("threads: ")
    interrupted = ImportRun.objects.filter(source__base_url=fake.url)
    assert interrupted.filter(state=ImportRun.State.FAILED, message__contains="took over").count()
    assert interrupted.order_by("-pk").first().state == ImportRun.State.DONE
    expected = corpus(ForumSource.objects.get(base_url=reference.url))
    assert corpus(ForumSource.objects.get(base_url=fake.url)) == expected
    assert len(expected[1]) == 900


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_stops_cleanly_and_the_next_run_resumes():
    forum = make_forum(60, 120)
    with FakeDiscourse(forum, delay=0.02) as fake:
        process = subprocess.Popen(
            command(fake.url, "--rate", "0"), env=db_env(), cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _poll in range(3000):  # until a few topics are stored
            if Thread.objects.count() >= 3 or process.poll() is not None:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        stored = Thread.objects.count()
        fake.clear_log()
        out = io.StringIO()
        call_command("import_discourse", fake.url, "--rate", "0", stdout=out)

    assert process.returncode == 1
    assert "interrupted; finished topics are stored" in stderr
    assert "Traceback" not in stderr
    assert stdout.startswith("threads: ")
    run = ImportRun.objects.order_by("pk").first()
    assert run.state == ImportRun.State.CANCELLED and "resume" in run.message
    assert 0 < stored < 60
    assert len(fake.topic_fetches()) == 60 - stored
    assert Thread.objects.count() == 60


@pytest.mark.django_db(transaction=True)
def test_a_second_import_of_the_same_forum_is_refused_while_the_first_runs():
    forum = make_forum(40, 80)
    with FakeDiscourse(forum, delay=0.05) as fake:
        started = fake.event_after(3)
        process = subprocess.Popen(
            command(fake.url, "--rate", "0"), env=db_env(), cwd=ROOT, stdout=subprocess.DEVNULL
        )
        try:
            assert started.wait(30)
            with pytest.raises(CommandError, match=r"another import of .* is running \(run #"):
                call_command("import_discourse", fake.url, "--rate", "0")
        finally:
            process.kill()
            process.wait()


@pytest.mark.django_db
def test_the_command_prints_the_shared_summary_line():
    forum = FakeForum()
    forum.add_topic(1, posts=3)
    forum.add_topic(2, posts=2)
    out = io.StringIO()
    with FakeDiscourse(forum) as fake:
        call_command("import_discourse", fake.url, "--rate", "0", stdout=out)
        call_command("import_discourse", fake.url + "/", "--rate", "0", stdout=out)
    assert out.getvalue().splitlines() == [
        "threads: 2 new, 0 updated, 0 unchanged; posts: 5 new, 0 updated, 0 unchanged",
        "threads: 0 new, 0 updated, 0 unchanged; posts: 0 new, 0 updated, 0 unchanged",
    ]


@pytest.mark.django_db
def test_a_failed_import_exits_non_zero_with_the_reason():
    forum = FakeForum()
    forum.add_topic(1)
    with FakeDiscourse(forum) as fake:
        fake.fault("redirect_other", "/latest")
        with pytest.raises(CommandError, match="redirected to another host"):
            call_command("import_discourse", fake.url, "--rate", "0", stdout=io.StringIO())
    assert ImportRun.objects.get().state == ImportRun.State.FAILED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://forum.test"], "http:// or https://"),
        (["https://forum.test", "--since", "2022-13-01"], "not a date"),
        (["https://forum.test", "--since", "2023-01-01", "--until", "2022-01-01"], "after"),
        (["https://forum.test", "--max-topics", "0"], "at least 1"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_fetched(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_discourse", *args)
    assert not ImportRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_on_a_terminal_the_command_draws_progress_on_stderr():
    forum = FakeForum()
    for topic_id in range(1, 4):
        forum.add_topic(topic_id, posts=2)
    with FakeDiscourse(forum) as fake:
        controller, terminal = pty.openpty()
        process = subprocess.Popen(
            command(fake.url, "--rate", "0"),
            env=db_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        drawn = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        stdout = process.communicate(timeout=30)[0].decode()
        os.close(controller)
    assert process.returncode == 0
    assert "topics 3/3 · posts 6" in drawn.decode()
    assert stdout.strip() == (
        "threads: 3 new, 0 updated, 0 unchanged; posts: 6 new, 0 updated, 0 unchanged"
    )
