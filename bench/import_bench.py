"""Live forum import speed against the fake Discourse server, beside a raw bulk insert.

The fake server (tests/fake_discourse.py, in its own process) serves 1,000 topics with
12,000 posts, 20 of them long topics of 130 posts (several post chunks each). With no
rate limit, ``DiscourseImport`` imports everything into a throwaway SQLite file (or, with
--postgres, a throwaway PostgreSQL database). Reported:

- HTTP requests per 1,000 posts, beside the fewest the API allows (list pages, one
  request per topic, one per further chunk of 20 posts);
- posts per second end to end (target on SQLite: at least 2,000), beside the raw
  bulk-insert rate of the same rows (``executemany`` and multi-row INSERTs into the same
  tables, one transaction each; the faster is the peer) in the same run;
- the share of time spent fetching (HTTP), parsing (JSON and topic parsing), sanitizing
  (nh3 and plain text) and writing (the database);
- a second run: zero writes and list pages only;
- every topic and post stored, and runs of ``import_discourse`` killed at random points
  then re-run to the end (against a second server process serving the same forum)
  ending with the same corpus as the uninterrupted import.

The machine may be shared, so the CPU time of the importing process (both its threads)
and of the server process is printed beside wall-clock time, with the load average.
The product runs with its production settings (DEBUG off); ``--debug`` runs with
DEBUG on, which also records every query.

Run: .venv/bin/python bench/import_bench.py [--topics N --posts N] [--postgres URL]
     [--kills N] [--debug]
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_POSTS_PER_SECOND = 2000
LONG_TOPICS, LONG_SIZE = 20, 130


def setup_django(database: str, debug: bool = False) -> None:
    if database.startswith("postgres"):
        os.environ["DATABASE_URL"] = database
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["SQLITE_PATH"] = database
    os.environ["DEBUG"] = "1" if debug else "0"
    if not debug:
        os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_import(base_url: str, server_pid: int):
    """One import run with its phases timed; sanitizing is timed inside the store.

    Besides wall-clock time: the CPU time of this process (writer and prefetch thread),
    of each thread, of sanitizing, and of the server process.
    """
    from coding.importers import discourse, store
    from coding.importers.discourse import DiscourseImport, ImportOptions, create_run

    original, original_run = store.prepare_post, discourse._Prefetcher.run
    spent = {"sanitize": 0.0, "sanitize_cpu": 0.0, "prefetch_cpu": 0.0}

    def prepare_post(record):
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(record)
        finally:
            spent["sanitize"] += time.perf_counter() - started
            spent["sanitize_cpu"] += time.thread_time() - cpu

    def prefetch_run(fetcher):
        try:
            original_run(fetcher)
        finally:
            spent["prefetch_cpu"] = time.thread_time()

    store.prepare_post, discourse._Prefetcher.run = prepare_post, prefetch_run
    try:
        run = create_run(ImportOptions(base_url=base_url, rate=0))
        importer = DiscourseImport(run)
        server_cpu, cpu, writer_cpu = cpu_seconds(server_pid), own_cpu(), time.thread_time()
        started = time.perf_counter()
        counts = importer.execute()
        elapsed = time.perf_counter() - started
        spent["writer_cpu"] = time.thread_time() - writer_cpu
        spent["process_cpu"] = own_cpu() - cpu
        spent["server_cpu"] = cpu_seconds(server_pid) - server_cpu
    finally:
        store.prepare_post, discourse._Prefetcher.run = original, original_run
    return importer, counts, elapsed, spent


def raw_bulk_insert(base_url: str, source_name: str, multi_row: bool) -> tuple[float, int]:
    """Insert the imported rows again under another source, in one transaction: with
    ``executemany`` (one row per statement) or with multi-row INSERTs (as many rows per
    statement as SQLite's 999 parameters allow; 500 on PostgreSQL)."""
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
    imported = ForumSource.objects.get(base_url=base_url)
    threads = list(Thread.objects.filter(source=imported).values_list("id", *thread_fields))
    posts = list(
        Post.objects.filter(thread__source=imported).values_list("thread_id", *post_fields)
    )
    target = ForumSource.objects.create(name=source_name, base_url="")
    ops = connection.ops
    thread_table, post_table = Thread._meta.db_table, Post._meta.db_table

    def adapt(value):
        return ops.adapt_datetimefield_value(value) if hasattr(value, "tzinfo") else value

    def insert(cursor, table: str, columns: list[str], rows: list[list]) -> None:
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        if not multi_row:
            cursor.executemany(head + marks, rows)
            return
        size = 999 // len(columns) if connection.vendor == "sqlite" else 500
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            cursor.execute(head + ", ".join([marks] * len(chunk)), [v for r in chunk for v in r])

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        insert(
            cursor,
            thread_table,
            ["source_id", *thread_fields],
            [[target.pk, *(adapt(v) for v in row[1:])] for row in threads],
        )
        cursor.execute(
            f"SELECT external_id, id FROM {thread_table} WHERE source_id = %s",  # noqa: S608
            [target.pk],
        )
        new_ids = dict(cursor.fetchall())
        old_to_external = {row[0]: row[1] for row in threads}
        insert(
            cursor,
            post_table,
            ["thread_id", *post_fields],
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


def corpus(base_url: str) -> dict:
    """Everything an import stored for one forum, keyed by forum ids (its URLs aside)."""
    from coding.models import Post, Thread

    threads = Thread.objects.filter(source__base_url=base_url)
    return {
        "threads": {
            row[0]: row[1:]
            for row in threads.values_list(
                "external_id", "title", "slug", "category", "created_at", "last_posted_at",
                "bumped_at", "views", "reply_count", "like_count", "posts_count",
                "has_accepted_answer",
            )
        },
        "posts": {
            row[0]: row[1:]
            for row in Post.objects.filter(thread__source__base_url=base_url).values_list(
                "external_id", "thread__external_id", "post_number", "author", "created_at",
                "updated_at", "reply_to_post_number", "is_accepted_answer", "html",
                "plain_text", "content_hash", "deleted_upstream",
            )
        },
        "tags": sorted(
            Thread.tags.through.objects.filter(thread__source__base_url=base_url).values_list(
                "thread__external_id", "tag__name"
            )
        ),
    }  # fmt: skip


def posts_per_topic(base_url: str) -> dict[int, int]:
    from django.db.models import Count

    from coding.models import Thread

    rows = Thread.objects.filter(source__base_url=base_url).annotate(n=Count("posts"))
    return dict(rows.values_list("external_id", "n"))


def killed_and_rerun(url: str, topics: int, posts: int, kills: int, seed: int = 11):
    """``import_discourse`` in a child process, killed (SIGKILL) at random points, then
    run to the end. Returns the stored-topic counts at each kill, whether every stored
    topic always had all its posts, and the last run's exit status."""
    from tests.fake_discourse import make_forum

    forum = make_forum(topics, posts, long_topics=LONG_TOPICS, long_size=LONG_SIZE)
    sizes = {t.id: len(t.posts) for t in forum.topics.values()}
    rng = random.Random(seed)
    targets = sorted(rng.sample(range(1, topics), kills))
    command = [sys.executable, str(ROOT / "manage.py"), "import_discourse", url, "--rate", "0"]
    stored_at_kill, whole = [], True
    for target in targets:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while process.poll() is None and len(posts_per_topic(url)) < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))  # anywhere in a batch, not only just after one
        process.kill()
        process.wait()
        stored = posts_per_topic(url)
        stored_at_kill.append(len(stored))
        whole = whole and all(n == sizes[topic] for topic, n in stored.items())
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    return stored_at_kill, whole, finished.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=12000)
    parser.add_argument("--postgres", metavar="URL", help="on a throwaway PostgreSQL database")
    parser.add_argument("--kills", type=int, default=3, help="kills before the resumed run")
    parser.add_argument("--debug", action="store_true", help="run the product with DEBUG on")
    args = parser.parse_args()
    load_before = os.getloadavg()

    pg_name = f"import_bench_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="import_bench_") as tmp:
        if args.postgres:
            setup_django(postgres_database(args.postgres, pg_name, create=True), args.debug)
        else:
            setup_django(str(Path(tmp) / "bench.sqlite3"), args.debug)
        from django.db import connection

        from coding.models import Post, Thread

        server, url = start_server(args.topics, args.posts)
        try:
            importer, counts, elapsed, spent = timed_import(url, server.pid)
            load_after = os.getloadavg()
            stats = importer.client.stats
            stored = Post.objects.count()
            stored_threads = Thread.objects.count()
            requests_first = stats.requests

            again, counts_again, _elapsed_again, _ = timed_import(url, server.pid)
            rerun_requests = again.client.stats.requests
        finally:
            server.terminate()
            server.wait()
        sanitize = spent["sanitize"]
        # The same forum from a second server process: runs killed midway, then resumed.
        server, killed_url = start_server(args.topics, args.posts)
        try:
            stored_at_kill, whole, last_status = killed_and_rerun(
                killed_url, args.topics, args.posts, args.kills
            )
        finally:
            server.terminate()
            server.wait()
        same_corpus = corpus(killed_url) == corpus(url)
        raw_many = raw_bulk_insert(url, "raw copy, executemany", multi_row=False)
        raw_multi = raw_bulk_insert(url, "raw copy, multi-row", multi_row=True)
        path_seconds = write_path_alone(args.topics, args.posts)
        vendor = connection.vendor
        connection.close()
        if args.postgres:
            postgres_database(args.postgres, pg_name, create=False)

    posts_per_second = stored / elapsed
    raw_many_rate, raw_multi_rate = raw_many[1] / raw_many[0], raw_multi[1] / raw_multi[0]
    raw_rate = max(raw_many_rate, raw_multi_rate)
    # Topics are fetched by a prefetch thread while the main thread writes: "fetching"
    # is the time the writer waited for it, and the thread's own busy time is shown too.
    fetch = importer.timings.listing + importer.timings.fetch_wait
    parse = importer.timings.parse
    write = importer.timings.store - sanitize
    other = max(0.0, elapsed - fetch - parse - sanitize - write)
    floor = fewest_requests(args.topics, args.posts)
    list_pages = math.ceil((args.topics + 1) / 30)

    settings = "DEBUG on" if args.debug else "DEBUG off"
    print(
        f"Discourse import, {args.topics} topics / {stored} posts, {vendor}, no rate limit,"
        f" {settings}"
    )
    print(
        f"  load average {' '.join(f'{x:.1f}' for x in load_before)} at the start,"
        f" {' '.join(f'{x:.1f}' for x in load_after)} after the import ({os.cpu_count()} cores)"
    )
    print(f"  {counts.summary_line()}")
    print(f"  stored: {stored_threads} topics, {stored} posts")
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
        f"   (executemany {raw_many_rate:.0f}, multi-row INSERTs {raw_multi_rate:.0f};"
        f" the import runs at {posts_per_second / raw_rate:.2f}x the faster)"
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
    process_cpu = spent["process_cpu"]
    print(
        f"  CPU time: {process_cpu:.2f} s for the importing process"
        f" ({stored / process_cpu:.0f} posts per CPU second; writer thread"
        f" {spent['writer_cpu']:.2f} s, prefetch thread {spent['prefetch_cpu']:.2f} s,"
        f" sanitizing {spent['sanitize_cpu']:.2f} s), {spent['server_cpu']:.2f} s for the"
        f" server process"
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

    print(
        f"  killed runs: stopped (SIGKILL) with {', '.join(map(str, stored_at_kill))} topics"
        f" stored, {'never' if whole else 'SOMETIMES'} a partial topic; resumed run exit"
        f" {last_status}; corpus {'equals' if same_corpus else 'DIFFERS FROM'} the"
        f" uninterrupted import's"
    )

    failures = []
    if stored != args.posts or stored_threads != args.topics:
        failures.append(
            f"stored {stored_threads} topics / {stored} posts,"
            f" expected {args.topics} / {args.posts}"
        )
    if not (whole and last_status == 0 and same_corpus):
        failures.append("the killed and resumed runs did not end with the same corpus")
    if vendor == "sqlite" and posts_per_second < TARGET_POSTS_PER_SECOND:
        failures.append(f"{posts_per_second:.0f} posts/s is under {TARGET_POSTS_PER_SECOND}")
    if counts_again.writes or rerun_requests != list_pages:
        failures.append("the second run wrote or fetched more than list pages")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
