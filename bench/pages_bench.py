"""Pages under load on 100,000 threads / 1,000,000 posts: the corpus browser with filters
beside its same-query floor, and the agreement page, the report page and a full export,
each beside the one-insert floor.

For each database (SQLite and PostgreSQL) this script

1. builds the synthetic corpus (make_synthetic_corpus --threads 100000 --posts-per-thread
   10) into a throwaway database, skipped when the database holds it already (the corpus
   is shared with bench/coding_bench.py and bench/memory_bench.py); a corpus without a
   coded project gets one over its own threads (make_synthetic_corpus's ``--coders 3
   --coded-share 0.1`` project, written by the same function, without adding threads),
2. makes a bench account an admin of the coded project,
3. checks, once, that the corpus floor finds the same threads as /corpus/ for every
   filter set the clients ask for (the same count and the same 50 thread ids in the same
   order), and stops with the differences if it does not,
4. starts gunicorn with bench/coding_settings.py (the product plus the floor views of
   bench/coding_urls.py),
5. loads each page once without other load (the agreement page computes its report
   once and reads it from the cache until a coding changes, so only the very first run
   on a database shows the computation),
6. runs the load generator in its own process: N closed-loop clients without think time,
   one phase per page, the floors' phases first in every turn, the turns repeated so a
   change in the machine's other load falls on every page alike:
   - floor: the one-insert view, the floor of the coding loop (bench/coding_bench.py);
   - corpus floor: bench/coding_urls.py ``corpus_floor`` with the corpus browser's
     parameters: in raw SQL, only what a counted, filtered, paginated list cannot avoid
     (the COUNT and SUM of the filtered threads, then the 50 rows of the requested page,
     restricted to the full-text matches when there is a search term), rendered with a
     one-line-per-row template;
   - corpus: /corpus/ with filters (category and sort, a date window with accepted
     answers, a search within a category, a later page of a category), one at random
     per request; the corpus floor's clients ask for the same URLs, drawn the same way;
   - agreement: the project's agreement page;
   - report: the project's report page (its default tables and charts);
   - export: the full long CSV of the project's codings, read to the end.

Reported per page: throughput, p50/p95/p99 beside the one-insert floor's under the same
load, and errors; the corpus browser also beside the corpus floor's. Targets: no errors
on any page or floor; the corpus browser's p95 at most 3x the corpus floor's (against
the one-insert floor it is reported, not judged: counting and sorting a filtered set of
100,000 threads is more work than one insert whatever the page does around it).

    .venv/bin/python bench/pages_bench.py [--db sqlite|postgres|both] [--clients 16]
        [--duration 20] [--rounds 2] [--sqlite-path PATH] [--database-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_SQLITE,
    Clock,
    build_corpus,
    env_for,
    figure,
    floor_client,
    load_average,
    login,
    manage,
    run_clients,
    run_per_database,
    setup_django,
    start_gunicorn,
    stop,
    summary,
    summary_line,
)

USERNAME, PASSWORD = "bench-pages-admin", "bench-password-not-secret-3"
PAGES = ("corpus", "agreement", "report", "export")
CORPUS_P95_RATIO = 3.0
SOURCE = "Synthetic forum"


def pages_list(text: str) -> list[str]:
    pages = [p for p in text.split(",") if p]
    unknown = [p for p in pages if p not in PAGES]
    if unknown or not pages:
        raise argparse.ArgumentTypeError(
            f"unknown page {', '.join(unknown) or '(none given)'}; choose from {','.join(PAGES)}"
        )
    return pages


def ensure_coded_project(env: dict[str, str]) -> None:
    """A corpus written without ``--coders`` gets the project ``make_synthetic_corpus
    --coders 3 --coded-share 0.1`` would add (3 coders, 10 % of the source's threads), made
    by the same function but without writing threads, so the shared corpus keeps its size."""
    code = (
        "from coding.models import Coding; "
        "print(Coding.objects.filter(unit__project__slug__startswith='synthetic').count())"
    )
    if int(manage(env, "shell", "-c", code, capture=True).strip().splitlines()[-1]):
        return
    print("  adding a coded project (3 coders, 10 % of the threads) ...", flush=True)
    code = (
        "from coding.models import ForumSource; from coding.synthetic import make_coded_project; "
        f"c = make_coded_project(ForumSource.objects.get(name={SOURCE!r}), coders=3, "
        "coded_share=0.1, agreement=0.8, seed=1); "
        "print(f'  project {c.project.slug}: {c.units} units, {c.codings} submitted codings')"
    )
    print(manage(env, "shell", "-c", code, capture=True).strip().splitlines()[-1], flush=True)


def setup() -> dict:
    """The bench admin on the largest coded project; the URLs the clients ask for."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count, Max, Min

    from bench.coding_urls import CORPUS_FLOOR_URL, FLOOR_TABLE
    from coding.models import Coding, Membership, Project, Role, Thread

    project = (
        Project.objects.filter(slug__startswith="synthetic")
        .annotate(n=Count("units"))
        .order_by("-n")
        .first()
    )
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    user.set_password(PASSWORD)
    user.save()
    Membership.objects.update_or_create(project=project, user=user, defaults={"role": Role.ADMIN})
    categories = sorted(
        c for c in Thread.objects.order_by().values_list("category", flat=True).distinct() if c
    )[:6]
    span = Thread.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    first, last = span["first"], span["last"]
    middle = first + (last - first) / 2
    window = (middle.date().isoformat(), (middle.date() + (last - first) / 8).isoformat())
    corpus_urls = []
    for category in categories:
        corpus_urls += [
            ("category, by views", f"/corpus/?category={category}&sort=views"),
            (
                "dates, accepted, category",
                f"/corpus/?since={window[0]}&until={window[1]}&accepted=yes&category={category}",
            ),
            ("search, category", f"/corpus/?q=memory&category={category}"),
            ("category, page 7", f"/corpus/?category={category}&sort=posts&page=7"),
        ]
    with connection.cursor() as cursor:
        key = "SERIAL" if connection.vendor == "postgresql" else "INTEGER"
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id {key} PRIMARY KEY, at DOUBLE PRECISION)")
    slug = project.slug
    return {
        "slug": slug,
        "units": project.n,
        "codings": Coding.objects.filter(unit__project=project).count(),
        "urls": {
            "corpus": corpus_urls,
            "corpus_floor": [
                (label, url.replace("/corpus/", CORPUS_FLOOR_URL, 1)) for label, url in corpus_urls
            ],
            "agreement": [("agreement", f"/projects/{slug}/agreement/")],
            "report": [("report", f"/projects/{slug}/reports/")],
            "export": [("long CSV", f"/projects/{slug}/exports/long/")],
        },
    }


def check_corpus_floor(plan: dict) -> None:
    """Stop unless the corpus floor finds what /corpus/ shows for every filter set: the
    same count of threads and the same thread ids, in order, on the requested page."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment, teardown_test_environment

    from bench.coding_urls import parse_corpus_floor

    problems, counts = [], []
    setup_test_environment()  # so the test client keeps the page's template context
    try:
        client = Client()
        client.force_login(get_user_model().objects.get(username=USERNAME))
        for (_, url), (_, floor_url) in zip(
            plan["urls"]["corpus"], plan["urls"]["corpus_floor"], strict=True
        ):
            page, floor = client.get(url), client.get(floor_url)
            if page.status_code != 200 or floor.status_code != 200:
                problems.append(f"{url}: HTTP {page.status_code}, floor HTTP {floor.status_code}")
                continue
            shown = page.context["totals"]["threads"]
            ids = [thread.pk for thread in page.context["page"].object_list]
            floor_count, floor_ids = parse_corpus_floor(floor.content.decode())
            if (shown, ids) != (floor_count, floor_ids):
                problems.append(
                    f"{url}: page {shown} threads, ids {ids[:5]}...; "
                    f"floor {floor_count} threads, ids {floor_ids[:5]}..."
                )
            elif not ids:
                problems.append(f"{url}: no thread matches, so the comparison says nothing")
            counts.append(shown)
    finally:
        teardown_test_environment()
    if problems:
        raise SystemExit(
            "the corpus floor does not find what /corpus/ shows:\n  " + "\n  ".join(problems)
        )
    print(
        f"  corpus floor checked against /corpus/ on {len(counts)} filter sets: same counts "
        f"({min(counts):,}-{max(counts):,} threads) and the same thread ids on each page",
        flush=True,
    )


# The load generator (its own process, one thread per client) ----------------------------


def _get(session, url: str) -> tuple[int, int]:
    """Status and body size of one GET, the body read to the end (streamed exports too)."""
    with session.get(url, stream=True, timeout=600) as response:
        size = sum(len(chunk) for chunk in response.iter_content(1 << 16))
        return response.status_code, size


def _page_client(
    base: str, session, urls: list[tuple[str, str]], clock: Clock, out: dict, seed: int
) -> None:
    rng = random.Random(seed)
    clock.wait()
    while not clock.over():
        label, url = rng.choice(urls)
        started = time.perf_counter()
        try:
            status, size = _get(session, base + url)
        except Exception as exc:  # a refused or dropped connection is an error, not a crash
            out["errors"].append(f"{url}: {type(exc).__name__}")
            continue
        if status != 200:
            out["errors"].append(f"{url}: {status}")
        elif clock.measuring(started):
            out["latencies"].append((label, time.perf_counter() - started))
            out["bytes"].append(size)


def load_generator(
    base: str, plan: dict, pages: list[str], clients: int, args: dict, queue
) -> None:
    """Every page's phase after the floors', ``rounds`` times; results through ``queue``."""
    import requests

    sessions = []
    for _ in range(clients):
        session = requests.Session()
        if login(session, base, USERNAME, PASSWORD) is None:
            queue.put({"error": "login failed"})
            return
        sessions.append(session)
    phases = ["floor", *(["corpus_floor"] if "corpus" in pages else []), *pages]
    results = {p: {"latencies": [], "errors": [], "acks": [], "bytes": []} for p in phases}
    turn = args["duration"] / args["rounds"]
    for _ in range(args["rounds"]):
        for phase in phases:
            clock = Clock(clients, args["warmup"], turn)
            out = results[phase]
            if phase == "floor":
                run_clients(floor_client, [(base, clock, out)] * clients)
            else:
                urls = plan["urls"][phase]
                run_clients(
                    _page_client, [(base, sessions[i], urls, clock, out, i) for i in range(clients)]
                )
    queue.put(results)


# One database --------------------------------------------------------------------------


def run_database(db: str, args: argparse.Namespace) -> bool:
    import requests

    print(f"\n== {db} ==", flush=True)
    env = env_for(db, args.sqlite_path, args.database_url)
    build_corpus(env, args.threads, args.posts_per_thread)
    ensure_coded_project(env)
    setup_django(env)
    from coding.models import Post, Thread

    plan = setup()
    threads, posts = Thread.objects.count(), Post.objects.count()
    corpus = f"{threads}threads/{posts}posts"
    print(
        f"  corpus: {threads:,} threads, {posts:,} posts; project {plan['slug']}: "
        f"{plan['units']:,} units, {plan['codings']:,} codings",
        flush=True,
    )
    if "corpus" in args.pages:
        check_corpus_floor(plan)
    server, base = start_gunicorn(env, args.workers, args.worker_threads)
    phases = [*(["corpus_floor"] if "corpus" in args.pages else []), *args.pages]
    try:
        session = requests.Session()
        login(session, base, USERNAME, PASSWORD)
        print("  one request each, no other load:")
        for page in phases:
            url = plan["urls"][page][0][1]
            started = time.perf_counter()
            status, size = _get(session, base + url)
            elapsed = (time.perf_counter() - started) * 1000
            print(
                f"    {page.replace('_', ' '):<13} {elapsed:8.0f} ms  "
                f"{size / 1024:9.0f} KB  HTTP {status}",
                flush=True,
            )
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        options = {"duration": args.duration, "warmup": args.warmup, "rounds": args.rounds}
        generator = context.Process(
            target=load_generator, args=(base, plan, args.pages, args.clients, options, queue)
        )
        generator.start()
        wait = (len(phases) + 1) * (args.duration + args.warmup * args.rounds) * 4 + 600
        results = queue.get(timeout=wait)
        generator.join()
    finally:
        stop(server)
    if "error" in results:
        print(f"  {results['error']}")
        return False

    load = load_average()
    floor = summary([t for _, t in results["floor"]["latencies"]], args.duration)
    print(
        f"  {args.clients} closed-loop clients, gunicorn -w {args.workers} --threads "
        f"{args.worker_threads}, {args.duration:.0f} s per page in {args.rounds} turns "
        f"(floors first in each); load average {load}"
    )
    print("  " + summary_line("floor (one insert):", floor))
    ok = not results["floor"]["errors"]
    where = {"db": db, "corpus": corpus, "clients": args.clients, "load": load}
    query_floor = None
    if "corpus" in args.pages:
        out = results["corpus_floor"]
        query_floor = summary([t for _, t in out["latencies"]], args.duration)
        print("  " + summary_line("corpus floor:", query_floor) + _errors(out))
        ok = ok and not out["errors"]
    for page in args.pages:
        out = results[page]
        s = summary([t for _, t in out["latencies"]], args.duration)
        size = sum(out["bytes"]) / len(out["bytes"]) / 1024 if out["bytes"] else 0
        judged = page == "corpus"
        # The corpus browser is judged against its own floor; every page is also shown
        # beside the one-insert floor.
        floors = [("corpus floor", query_floor, page), ("one insert", floor, "corpus/insert-floor")]
        floors = floors if judged else [("one insert", floor, page)]
        text = [f"{size:,.0f} KB each"]
        for name, base_summary, _ in floors:
            ratio = _ratios(s, base_summary)
            text.append(
                f"vs {name}: {ratio['rps']:.3f}x req/s, p50 {ratio['p50']:.1f}x, "
                f"p95 {ratio['p95']:.1f}x, p99 {ratio['p99']:.1f}x"
            )
        print("  " + summary_line(f"{page}:", s) + "  " + "; ".join(text) + _errors(out))
        labels = sorted({label for label, _ in out["latencies"]})
        for label in labels if len(labels) > 1 else []:
            part = summary([t for k, t in out["latencies"] if k == label], args.duration)
            line = "    " + summary_line(label, part, width=28)
            if judged:
                floor_part = summary(
                    [t for k, t in results["corpus_floor"]["latencies"] if k == label],
                    args.duration,
                )
                ratio = _ratios(part, floor_part)
                line += (
                    f"  floor p50 {floor_part['p50']:6.1f} ms  p95 {floor_part['p95']:6.1f} ms"
                    f"  p95 ratio {ratio['p95']:.1f}x"
                )
            print(line)
        for line in out["errors"][:3]:
            print(f"      {line}")
        page_ok = not out["errors"]
        for index, (_, base_summary, name) in enumerate(floors):
            ratio = _ratios(s, base_summary)
            target_met = ratio["p95"] <= CORPUS_P95_RATIO
            if judged and index == 0:
                page_ok = page_ok and target_met
            figure(
                f"pages_throughput[{name}]",
                f"{s['rps']:.2f}req/s",
                f"{base_summary['rps']:.1f}req/s",
                f"{ratio['rps']:.3f}",
                "-",
                None,
                **where,
            )
            for q in ("p50", "p95", "p99"):
                target = q == "p95" and judged and index == 0
                figure(
                    f"pages_{q}[{name}]",
                    f"{s[q]:.0f}ms",
                    f"{base_summary[q]:.0f}ms",
                    f"{ratio[q]:.1f}",
                    f"<={CORPUS_P95_RATIO:g}" if target else "-",
                    target_met if target else None,
                    **where,
                )
        ok = ok and page_ok
        figure(
            f"pages_errors[{page}]",
            str(len(out["errors"])),
            "0",
            "-",
            "0",
            not out["errors"],
            **where,
        )
    print(f"  floor errors: {len(results['floor']['errors'])}")
    if query_floor is not None:
        figure(
            "pages_errors[corpus-floor]",
            str(len(results["corpus_floor"]["errors"])),
            "0",
            "-",
            "0",
            not results["corpus_floor"]["errors"],
            **where,
        )
    return ok


def _ratios(s: dict, floor: dict) -> dict[str, float]:
    """Each figure of ``s`` over the floor's (throughput: the page's share of the floor's)."""
    ratios = {
        q: s[q] / floor[q] if floor["n"] and floor[q] else float("inf")
        for q in ("p50", "p95", "p99")
    }
    ratios["rps"] = s["rps"] / floor["rps"] if floor["rps"] else 0.0
    return ratios


def _errors(out: dict) -> str:
    return f"; errors {len(out['errors'])}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sqlite-path", default=DEFAULT_SQLITE)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--posts-per-thread", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16, help="closed-loop clients")
    parser.add_argument(
        "--pages",
        type=pages_list,
        default=list(PAGES),
        help="pages to load, from " + ",".join(PAGES),
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per page")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each turn")
    parser.add_argument("--rounds", type=int, default=2, help="turns over the pages")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-threads", type=int, default=1, help="threads per worker")
    return parser


if __name__ == "__main__":
    sys.exit(run_per_database(__file__, build_parser, run_database))
