"""Importing a live forum: paging, long topics, incremental re-runs, refresh, filters, runs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from coding.importers.discourse import (
    DiscourseImport,
    ImportBusy,
    ImportOptions,
    create_run,
    run_import,
)
from coding.models import ImportRun, Post, Thread
from tests.fake_discourse import FakeDiscourse, FakeForum, make_forum

pytestmark = pytest.mark.django_db

FAST = {"backoff": 0.01, "timeout": 2}


@pytest.fixture
def forum() -> FakeForum:
    return make_forum(70, 600, long_topics=2, long_size=130)


@pytest.fixture
def fake(forum):
    with FakeDiscourse(forum) as server:
        yield server


def _import(fake: FakeDiscourse, **options):
    options.setdefault("rate", 0)
    return run_import(ImportOptions(base_url=fake.url, **options), client_options=FAST)


def test_every_topic_and_post_is_stored_across_list_pages_and_post_chunks(fake, forum):
    run, counts = _import(fake)

    assert run.state == ImportRun.State.DONE
    assert counts.summary_line() == (
        "threads: 70 new, 0 updated, 0 unchanged; posts: 600 new, 0 updated, 0 unchanged"
    )
    assert set(Thread.objects.values_list("external_id", flat=True)) == set(forum.topics)
    stored = set(Post.objects.values_list("external_id", flat=True))
    assert stored == {p.id for t in forum.topics.values() for p in t.posts}
    long_topic = next(t for t in forum.topics.values() if len(t.posts) == 130)
    thread = Thread.objects.get(external_id=long_topic.id)
    assert list(thread.posts.values_list("post_number", flat=True)) == list(range(1, 131))
    # 130 posts: the topic's first 20, then 110 more in chunks of 20.
    chunks = [p for p in fake.requests if p.startswith(f"/t/{long_topic.id}/posts.json")]
    assert len(chunks) == 6
    assert sum(1 for p in fake.requests if p.startswith("/latest")) == 3
    assert run.topics_total == run.topics_done == 70
    assert run.requests_made == len(fake.requests)


def test_a_rerun_of_an_unchanged_forum_writes_nothing_and_fetches_only_list_pages(fake):
    _import(fake)
    fake.clear_log()

    run, counts = _import(fake)

    assert counts.writes == 0
    assert counts.threads_unchanged == 0  # nothing was even fetched
    assert fake.requests == ["/latest.json", "/latest.json?page=1", "/latest.json?page=2"]
    assert run.topics_total == 0


def test_a_new_reply_bumps_its_topic_and_only_that_topic_is_fetched_again(fake, forum):
    _import(fake)
    forum.add_post(5, html="<p>A new answer: set <code>fp16=True</code>.</p>")
    fake.clear_log()

    _run, counts = _import(fake)

    assert fake.topic_fetches() == ["/t/5.json"]
    assert counts.posts_new == 1 and counts.threads_updated == 1
    assert Thread.objects.get(external_id=5).posts.last().plain_text.startswith("A new answer")


def test_an_edit_that_does_not_bump_is_found_only_by_refresh(fake, forum):
    _import(fake)
    post = forum.topics[7].posts[0]
    forum.edit_post(post.id, "<p>Edited quietly.</p>", bump=False)

    _run, counts = _import(fake)
    assert counts.writes == 0
    assert Post.objects.get(external_id=post.id).plain_text != "Edited quietly."

    _run, counts = _import(fake, refresh=True)
    assert counts.posts_updated == 1
    assert Post.objects.get(external_id=post.id).plain_text == "Edited quietly."


def test_an_edit_that_bumps_is_found_by_a_plain_rerun(fake, forum):
    _import(fake)
    post = forum.topics[9].posts[-1]
    forum.edit_post(post.id, "<p>Edited with a bump.</p>", bump=True)

    _run, counts = _import(fake)

    assert counts.posts_updated == 1
    assert Post.objects.get(external_id=post.id).plain_text == "Edited with a bump."


def test_a_deleted_post_is_marked_but_kept_with_its_row(fake, forum):
    _import(fake)
    victim = forum.topics[11].posts[-1] if len(forum.topics[11].posts) > 1 else None
    if victim is None:
        forum.add_post(11)
        _import(fake)
        victim = forum.topics[11].posts[-1]
    row_id = Post.objects.get(external_id=victim.id).pk
    forum.delete_post(victim.id)

    _run, counts = _import(fake, refresh=True, since=forum.topics[11].created_at.date())

    post = Post.objects.get(pk=row_id)
    assert post.deleted_upstream
    assert counts.posts_updated == 1


@pytest.mark.parametrize("shape", ["names", "objects"])
def test_both_tag_shapes_give_the_same_tags(shape):
    forum = FakeForum(tag_shape=shape)
    forum.add_topic(1, tags=["bert", "pytorch"])
    with FakeDiscourse(forum) as fake:
        _import(fake)
    tags = Thread.objects.get(external_id=1).tags.values_list("name", flat=True)
    assert sorted(tags) == ["bert", "pytorch"]


@pytest.mark.parametrize("shape", ["old", "new"])
def test_both_accepted_answer_shapes_mark_the_answer(shape):
    forum = FakeForum(accepted_shape=shape)
    forum.add_topic(1, posts=4, accepted_post=3)
    with FakeDiscourse(forum) as fake:
        _import(fake)
    thread = Thread.objects.get(external_id=1)
    assert thread.has_accepted_answer
    assert list(
        thread.posts.filter(is_accepted_answer=True).values_list("post_number", flat=True)
    ) == [3]


def test_a_mega_topic_without_a_post_stream_is_read_by_post_number():
    forum = FakeForum()
    forum.mega_topic_posts = 50
    forum.add_topic(1, posts=75)
    with FakeDiscourse(forum) as fake:
        _run, counts = _import(fake)

    assert counts.posts_new == 75
    numbers = Thread.objects.get(external_id=1).posts.values_list("post_number", flat=True)
    assert list(numbers) == list(range(1, 76))
    paging = [p for p in fake.requests if "post_number=" in p]
    assert len(paging) == 4  # after posts 20, 40 and 60, then an empty page


def test_a_category_import_includes_its_subcategories_and_names_them(fake, forum):
    _import(fake, categories=["transformers"])

    wanted = {t.id for t in forum.topics.values() if t.category_id in {2, 3}}
    assert set(Thread.objects.values_list("external_id", flat=True)) == wanted
    assert set(Thread.objects.values_list("category", flat=True)) == {"Transformers", "Tokenizers"}
    assert fake.requests[0] == "/site.json"
    assert fake.requests[1] == "/c/transformers/2.json"


def test_a_tag_import_takes_only_that_tags_topics(fake, forum):
    _import(fake, tags=["peft"])

    wanted = {t.id for t in forum.topics.values() if "peft" in t.tags}
    assert wanted
    assert set(Thread.objects.values_list("external_id", flat=True)) == wanted
    assert fake.requests[0] == "/tag/peft.json"


def test_the_created_window_and_max_topics_limit_what_is_imported(fake, forum):
    since = forum.topics[20].created_at.date()
    until = forum.topics[40].created_at.date()

    _import(fake, since=since, until=until)
    created = {t.created_at.date() for t in Thread.objects.all()}
    assert created and min(created) >= since and max(created) <= until
    expected = {t.id for t in forum.topics.values() if since <= t.created_at.date() <= until}
    assert set(Thread.objects.values_list("external_id", flat=True)) == expected

    Thread.objects.all().delete()
    fake.clear_log()
    _import(fake, max_topics=5)
    assert Thread.objects.count() == 5
    assert fake.requests[0] == "/latest.json" and "/latest.json?page=1" not in fake.requests


def test_an_unknown_category_fails_with_a_clear_message(fake):
    run, _counts = _import(fake, categories=["no-such-category"])

    assert run.state == ImportRun.State.FAILED
    assert "no category 'no-such-category'" in run.message


def test_a_cancel_request_stops_the_run_between_topics(fake):
    run = create_run(ImportOptions(base_url=fake.url, rate=0))

    def cancel_once_some_are_done(progress):
        if progress.topics_done:
            ImportRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    DiscourseImport(run, on_progress=cancel_once_some_are_done, client_options=FAST).execute()

    run.refresh_from_db()
    assert run.state == ImportRun.State.CANCELLED
    assert 0 < Thread.objects.count() == run.topics_done < 70
    # The run's topics are whole: every stored thread has all its posts.
    for thread in Thread.objects.all():
        assert thread.posts.count() == thread.posts_count


def test_a_second_run_of_a_forum_is_refused_while_the_first_is_alive(fake):
    first = create_run(ImportOptions(base_url=fake.url))

    with pytest.raises(ImportBusy, match=f"run #{first.pk}"):
        create_run(ImportOptions(base_url=fake.url, tags=["bert"]))


def test_a_run_whose_heartbeat_stopped_is_taken_over(fake):
    first = create_run(ImportOptions(base_url=fake.url))
    ImportRun.objects.filter(pk=first.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10),
        params={**first.params, "worker": {"host": "elsewhere", "pid": 1}},
    )

    second = create_run(ImportOptions(base_url=fake.url))

    first.refresh_from_db()
    assert first.state == ImportRun.State.FAILED
    assert "took over" in first.message
    assert second.is_active


def test_a_run_whose_process_died_is_taken_over_at_once(fake):
    first = create_run(ImportOptions(base_url=fake.url))
    worker = {**first.params["worker"], "pid": 2**22 + 12345}
    ImportRun.objects.filter(pk=first.pk).update(params={**first.params, "worker": worker})

    second = create_run(ImportOptions(base_url=fake.url))

    assert ImportRun.objects.get(pk=first.pk).state == ImportRun.State.FAILED
    assert second.is_active


def test_an_interrupted_refresh_resumes_after_the_last_finished_topic(fake, forum):
    _import(fake)
    options = ImportOptions(base_url=fake.url, rate=0, refresh=True)
    run = create_run(options)

    def stop_once_some_are_done(progress):
        if progress.topics_done:
            ImportRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    DiscourseImport(run, on_progress=stop_once_some_are_done, client_options=FAST).execute()
    run.refresh_from_db()
    assert 0 < run.topics_done < 70
    fake.clear_log()

    resumed, _counts = run_import(options, client_options=FAST)

    assert resumed.params["resumes"] == run.pk
    fetched = {int(p.split("/")[2].removesuffix(".json")) for p in fake.topic_fetches()}
    assert fetched == set(sorted(forum.topics)[run.topics_done :])


def test_options_survive_the_round_trip_through_run_params():
    options = ImportOptions(
        base_url="https://forum.test",
        categories=["beginners", "5"],
        tags=["bert"],
        since=date(2021, 1, 1),
        until=date(2023, 12, 31),
        max_topics=50,
        rate=0.5,
        refresh=True,
    )
    assert ImportOptions.from_params(options.to_params()) == options


def test_storing_topics_in_batches_gives_what_storing_them_one_by_one_gives(forum):
    from coding.importers.discourse import parse_topic
    from coding.importers.store import store_thread, store_threads
    from tests.factories import make_source

    names = {1: "Beginners", 2: "Transformers", 3: "Tokenizers"}
    records = [
        parse_topic(forum.topic_json(t), [p.as_json(t.id) for p in t.posts[20:]], names)
        for t in list(forum.topics.values())[:12]
    ]
    one_by_one, batched = make_source("one", "https://one.test"), make_source("b", "https://b.test")
    for record in records[:3]:
        store_thread(one_by_one, record)
    store_threads(batched, records[:3])
    records[1].posts[0].html = "<p>Edited.</p>"

    for record in records:
        store_thread(one_by_one, record)
    counts = store_threads(batched, [*records, records[4]])

    assert counts.threads_new == 9 and counts.posts_updated == 1

    def rows(source):
        return sorted(
            Post.objects.filter(thread__source=source).values_list(
                "thread__external_id", "external_id", "post_number", "content_hash",
                "plain_text", "is_accepted_answer", "thread__title", "thread__category",
            )
        )  # fmt: skip

    assert rows(batched) == rows(one_by_one)
    tags = {
        source.name: sorted(
            Thread.tags.through.objects.filter(thread__source=source).values_list(
                "thread__external_id", "tag__name"
            )
        )
        for source in (one_by_one, batched)
    }
    assert tags["one"] == tags["b"] and tags["one"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_started_at_the_same_moment_never_both_start():
    import threading

    from django.db import connection

    from coding.importers.discourse import source_for

    source_for("https://forum.test")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def start() -> None:
        try:
            barrier.wait()
            create_run(ImportOptions(base_url="https://forum.test"))
            outcomes.append("started")
        except ImportBusy:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refused", "refused", "refused", "started"]
    assert ImportRun.objects.filter(state__in=ImportRun.ACTIVE_STATES).count() == 1
