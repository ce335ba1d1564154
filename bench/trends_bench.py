"""Hub import and forum-mention counting beside plain floors, same data, same run.

A throwaway SQLite file under /tmp gets a synthetic forum (``--threads`` threads of about
6 posts, written with the product's bulk synthetic-corpus writer) and a synthetic Hub dump
of ``--models`` models (JSONL in the Hub's listing shape). Then:

(a) ``import_hub --from-file`` path (``import_dump``: parse and validate every line, then
    write in batches) into an empty table, beside the floor: ``json.loads`` of every line
    and one ``bulk_create`` of ready-made rows. Target: at most 3x the floor.
(b) the same dump again (every model unchanged, nothing written), beside the same floor.
    Target: at most 2x the floor.
(c) forum mentions per model type and month (``forum_mentions_table``: the title and every
    post's plain text through the whole-word alias matcher), beside two floors: reading the
    same texts from the database and lower-casing each (target: at most 6x), and reading
    them and splitting each into words with one ``re.findall(r"\\w+")``, the least any
    whole-word matching must do (target: at most 1.5x).
(d) everything the trends page computes (``page_figures``) with a cold cache, beside (c)
    alone. Target: at most 1.5x (c): counting mentions is the page's only heavy step.
(e) the same with the mention counts cached (a chart or a reload after the first view),
    beside the floor of one raw SQL query grouping the Hub models by type, month (SQLite's
    own strftime) and card status. Target: at most 3x the floor.

(c) to (e) are the best of five runs.

The imports run once each on fresh tables.
Run: .venv/bin/python bench/trends_bench.py [--threads N] [--models M]
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["bert", "gpt2", "t5", "roberta", "distilbert", "wav2vec2", "vit", "whisper", "llama"]


def setup_django(database: str) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ["SQLITE_PATH"] = database
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def write_dump(path: Path, models: int) -> None:
    rng = random.Random(3)
    with path.open("w") as handle:
        for i in range(models):
            model_type = rng.choice(TYPES)
            day = rng.randint(0, 1200)
            item = {
                "id": f"bench-{i % 997}/{model_type}-{i}",
                "author": f"bench-{i % 997}",
                "createdAt": f"{2020 + day // 365}-{1 + (day % 365) // 31:02d}-{1 + day % 28:02d}"
                "T10:00:00.000Z",
                "lastModified": "2023-06-01T00:00:00.000Z",
                "pipeline_tag": "fill-mask",
                "library_name": "transformers",
                "tags": ["transformers", model_type, "en"],
                "downloads": rng.randint(0, 10000),
                "likes": rng.randint(0, 50),
                "config": {"model_type": model_type},
            }
            if rng.random() < 0.6:
                item["cardData"] = {"license": "mit"}
            handle.write(json.dumps(item) + "\n")


def floor_import(path: Path) -> float:
    from coding.importers.hub import parse_model
    from coding.models import HubModel

    started = time.perf_counter()
    rows = []
    with path.open() as handle:
        for line in handle:
            record = parse_model(json.loads(line))
            rows.append(HubModel(repo_id=record.repo_id, **record.values()))
    HubModel.objects.bulk_create(rows, batch_size=500)
    return time.perf_counter() - started


def best(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20000)
    parser.add_argument("--models", type=int, default=50000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trends-bench-"))
    setup_django(str(folder / "bench.sqlite3"))

    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    from analysis import trends
    from coding.importers.hub import import_dump
    from coding.models import HubModel, Post, Thread
    from coding.synthetic import make_corpus

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    dump = folder / "hub.jsonl"
    write_dump(dump, args.models)
    make_corpus(args.threads, 6, seed=5)
    posts = Post.objects.count()
    print(f"data: {args.threads} threads, {posts} posts; {args.models} Hub models")

    results = []

    floor = floor_import(dump)
    HubModel.objects.all().delete()
    started = time.perf_counter()
    counts = import_dump(dump)
    fresh = time.perf_counter() - started
    assert counts.new == args.models, counts
    results.append(("(a) import dump, new", fresh, floor, 3.0))
    started = time.perf_counter()
    counts = import_dump(dump)
    again = time.perf_counter() - started
    assert counts.unchanged == args.models, counts
    results.append(("(b) import dump, unchanged", again, floor, 2.0))

    def read_texts() -> None:
        for _id, title, _created in Thread.objects.values_list("id", "title", "created_at"):
            title.lower()
        for _id, text in Post.objects.values_list("thread_id", "plain_text").iterator(2000):
            text.lower()

    def read_words() -> None:
        words = re.compile(r"\w+")
        for _id, title, _created in Thread.objects.values_list("id", "title", "created_at"):
            words.findall(title)
        for _id, text in Post.objects.values_list("thread_id", "plain_text").iterator(2000):
            words.findall(text)

    def cold(fn):
        def run() -> None:
            cache.clear()
            fn()

        return run

    matcher = trends.current_matcher()
    mentions = best(cold(lambda: trends.forum_mentions_table(matcher)))
    results.append(("(c) mentions vs lower()", mentions, best(read_texts), 6.0))
    results.append(("(c) mentions vs word split", mentions, best(read_words), 1.5))
    results.append(("(d) trends page, cold cache", best(cold(trends.page_figures)), mentions, 1.5))

    def raw_groups() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT model_type, strftime('%Y-%m', created_at), has_card_data, COUNT(*) "
                "FROM coding_hubmodel GROUP BY 1, 2, 3"
            )
            cursor.fetchall()

    trends.page_figures()
    results.append(("(e) trends page, cached", best(trends.page_figures), best(raw_groups), 3.0))

    failed = False
    for label, ours, peer, target in results:
        ratio = ours / peer
        verdict = "ok" if ratio <= target else "MISSED"
        failed |= ratio > target
        print(
            f"{label:<28} {ours:8.2f} s  floor {peer:8.2f} s  "
            f"ratio {ratio:5.2f} (target <= {target}) {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
