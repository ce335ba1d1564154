"""Live forum import speed against the fake Discourse server, beside a raw bulk insert.

The fake server (tests/fake_discourse.py, in its own process) serves 1,000 topics with
12,000 posts, 20 of them long topics of 130 posts (several post chunks each). With no
rate limit, ``DiscourseImport`` imports everything into a throwaway SQLite file (or, with
--postgres, a throwaway PostgreSQL database). Reported:

- HTTP requests per 1,000 posts, beside the fewest the API allows (list pages, one
  request per topic, one per further chunk of 20 posts);
- posts per second end to end (target on SQLite: at least 2,000), beside the raw
  bulk-insert rate of the same rows (``executemany`` into the same tables, one
  transaction) in the same run;
- the share of time spent fetching (HTTP), parsing (JSON and topic parsing), sanitizing
  (nh3 and plain text) and writing (the database);
- a second run: zero writes and list pages only.

Run: .venv/bin/python bench/import_bench.py [--topics N --posts N] [--postgres URL]
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_POSTS_PER_SECOND = 2000
LONG_TOPICS, LONG_SIZE = 20, 130


def setup_django(database: str) -> None:
    if database.startswith("postgres"):
        os.environ["DATABASE_URL"] = database
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["SQLITE_PATH"] = database
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_server(topics: int, posts: int) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [
            sys.executable, str(ROOT / "tests" / "fake_discourse.py"), "--topics", str(topics),
            "--posts", str(posts), "--long-topics", str(LONG_TOPICS),
            "--long-size", str(LONG_SIZE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    return server, server.stdout.readline().strip()


def fewest_requests(topics: int, posts: int) -> int:
    """List pages, one request per topic and one per further chunk of 20 posts."""
    from tests.fake_discourse import make_forum

    forum = make_forum(topics, posts, long_topics=LONG_TOPICS, long_size=LONG_SIZE)
    chunks = sum(math.ceil(max(0, len(t.posts) - 20) / 20) for t in forum.topics.values())
    return math.ceil((topics + 1) / 30) + topics + chunks


def timed_import(base_url: str):
    """One import run with its phases timed; sanitizing is timed inside the store."""
    from coding.importers import store
    from coding.importers.discourse import DiscourseImport, ImportOptions, create_run

    original = store.prepare_post
    spent = {"sanitize": 0.0}

    def prepare_post(record):
        started = time.perf_counter()
        try:
            return original(record)
        finally:
            spent["sanitize"] += time.perf_counter() - started

    store.prepare_post = prepare_post
    try:
        run = create_run(ImportOptions(base_url=base_url, rate=0))
        importer = DiscourseImport(run)
        started = time.perf_counter()
        counts = importer.execute()
        elapsed = time.perf_counter() - started
    finally:
        store.prepare_post = original
    return importer, counts, elapsed, spent["sanitize"]


def raw_bulk_insert(source_name: str) -> tuple[float, int]:
    """Insert the imported rows again under another source with ``executemany``."""
    from django.db import connection, transaction

    from coding.models import ForumSource, Post, Thread

    thread_fields = [
        "external_id", "title", "slug", "url", "category", "created_at", "last_posted_at",
        "bumped_at", "views", "reply_count", "like_count", "posts_count",
        "has_accepted_answer", "imported_at", "refreshed_at",
    ]  # fmt: skip
    post_fields = [
        "external_id", "post_number", "author", "created_at", "updated_at",
        "reply_to_post_number", "is_accepted_answer", "html", "plain_text", "content_hash",
        "deleted_upstream",
    ]  # fmt: skip
    imported = ForumSource.objects.exclude(base_url="").get()
    threads = list(Thread.objects.filter(source=imported).values_list("id", *thread_fields))
    posts = list(
        Post.objects.filter(thread__source=imported).values_list("thread_id", *post_fields)
    )
    target = ForumSource.objects.create(name=source_name, base_url="")
    ops = connection.ops
    thread_table, post_table = Thread._meta.db_table, Post._meta.db_table

    def adapt(value):
        return ops.adapt_datetimefield_value(value) if hasattr(value, "tzinfo") else value

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        columns = ", ".join(["source_id", *thread_fields])
        marks = ", ".join(["%s"] * (len(thread_fields) + 1))
        cursor.executemany(
            f"INSERT INTO {thread_table} ({columns}) VALUES ({marks})",  # noqa: S608
            [[target.pk, *(adapt(v) for v in row[1:])] for row in threads],
        )
        cursor.execute(
            f"SELECT external_id, id FROM {thread_table} WHERE source_id = %s",  # noqa: S608
            [target.pk],
        )
        new_ids = dict(cursor.fetchall())
        old_to_external = {row[0]: row[1] for row in threads}
        columns = ", ".join(["thread_id", *post_fields])
        marks = ", ".join(["%s"] * (len(post_fields) + 1))
        cursor.executemany(
            f"INSERT INTO {post_table} ({columns}) VALUES ({marks})",  # noqa: S608
            [[new_ids[old_to_external[row[0]]], *(adapt(v) for v in row[1:])] for row in posts],
        )
    return time.perf_counter() - started, len(posts)


def postgres_database(url: str, name: str, create: bool) -> str:
    """A throwaway database next to the one in ``url`` (dropped first, created if asked)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def write_path_alone(topics: int, posts: int) -> float:
    """The same topics parsed in memory and stored through ``store_threads`` in batches,
    with no network and no prefetch thread: the ceiling of the importer's write side."""
    from django.db import transaction

    from coding.importers.discourse import BATCH_TOPICS, parse_topic
    from coding.importers.store import store_threads
    from coding.models import ForumSource
    from tests.fake_discourse import make_forum

    forum = make_forum(topics, posts, long_topics=LONG_TOPICS, long_size=LONG_SIZE)
    names = {c["id"]: c["name"] for c in forum.categories}
    records = [
        parse_topic(forum.topic_json(t), [p.as_json(t.id) for p in t.posts[20:]], names)
        for t in forum.topics.values()
    ]
    source = ForumSource.objects.create(name="write path alone", base_url="")
    started = time.perf_counter()
    for start in range(0, len(records), BATCH_TOPICS):
        with transaction.atomic():
            store_threads(source, records[start : start + BATCH_TOPICS])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=12000)
    parser.add_argument("--postgres", metavar="URL", help="on a throwaway PostgreSQL database")
    args = parser.parse_args()

    pg_name = f"import_bench_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="import_bench_") as tmp:
        if args.postgres:
            setup_django(postgres_database(args.postgres, pg_name, create=True))
        else:
            setup_django(str(Path(tmp) / "bench.sqlite3"))
        from django.db import connection

        from coding.models import Post

        server, url = start_server(args.topics, args.posts)
        try:
            importer, counts, elapsed, sanitize = timed_import(url)
            stats = importer.client.stats
            stored = Post.objects.count()
            requests_first = stats.requests

            again, counts_again, _elapsed_again, _ = timed_import(url)
            rerun_requests = again.client.stats.requests
        finally:
            server.terminate()
            server.wait()
        raw_seconds, raw_posts = raw_bulk_insert("raw copy")
        path_seconds = write_path_alone(args.topics, args.posts)
        vendor = connection.vendor
        connection.close()
        if args.postgres:
            postgres_database(args.postgres, pg_name, create=False)

    posts_per_second = stored / elapsed
    raw_rate = raw_posts / raw_seconds
    # Topics are fetched by a prefetch thread while the main thread writes: "fetching"
    # is the time the writer waited for it, and the thread's own busy time is shown too.
    fetch = importer.timings.listing + importer.timings.fetch_wait
    parse = importer.timings.parse
    write = importer.timings.store - sanitize
    other = max(0.0, elapsed - fetch - parse - sanitize - write)
    floor = fewest_requests(args.topics, args.posts)
    list_pages = math.ceil((args.topics + 1) / 30)

    print(f"Discourse import, {args.topics} topics / {stored} posts, {vendor}, no rate limit")
    print(f"  {counts.summary_line()}")
    print(
        f"  HTTP requests per 1,000 posts: {1000 * requests_first / stored:8.1f}"
        f"   (fewest possible {1000 * floor / stored:.1f}; ratio {requests_first / floor:.2f})"
    )
    print(
        f"  posts per second:              {posts_per_second:8.0f}"
        f"   (target {TARGET_POSTS_PER_SECOND};"
        f" ratio {posts_per_second / TARGET_POSTS_PER_SECOND:.2f})"
    )
    print(
        f"  raw bulk insert, same rows:    {raw_rate:8.0f} posts/s"
        f"   (import runs at {posts_per_second / raw_rate:.2f}x the raw insert rate)"
    )
    print(
        f"  write path alone, same topics:{stored / path_seconds:9.0f} posts/s"
        f"   (store_threads with sanitizing, no network; the import runs at"
        f" {posts_per_second * path_seconds / stored:.2f}x of it)"
    )
    print(
        f"  time: {elapsed:.2f} s in all; the prefetch thread was busy fetching"
        f" {importer.fetcher.busy:.2f} s of it (JSON decoding: {stats.decode_seconds:.2f} s)"
    )
    for name, seconds in [
        ("fetching (lists; waiting on topics)", fetch),
        ("parsing (JSON, topics)", parse),
        ("sanitizing (nh3, plain text)", sanitize),
        ("writing (database)", write),
        ("other (progress, bookkeeping)", other),
    ]:
        print(f"    {name:36} {seconds:6.2f} s  {100 * seconds / elapsed:5.1f}%")
    print(
        f"  second run: {counts_again.writes} writes, {rerun_requests} requests"
        f" (list pages: {list_pages})"
    )

    failures = []
    if stored != args.posts:
        failures.append(f"stored {stored} posts, expected {args.posts}")
    if vendor == "sqlite" and posts_per_second < TARGET_POSTS_PER_SECOND:
        failures.append(f"{posts_per_second:.0f} posts/s is under {TARGET_POSTS_PER_SECOND}")
    if counts_again.writes or rerun_requests != list_pages:
        failures.append("the second run wrote or fetched more than list pages")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
