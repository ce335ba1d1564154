"""Peak memory of each gunicorn worker and of db_worker during a long forum import, while
the web workers also serve pages, beside the same processes' memory idle after start.

For each database (SQLite and PostgreSQL) this script

1. copies the shared 100,000-thread corpus (built with make_synthetic_corpus when
   missing, with the coded project bench/pages_bench.py uses) into a throwaway database,
   so the imported forum never enters the shared corpus,
2. starts, each in its own process: the fake Discourse server (tests/fake_discourse.py)
   with 5,000 topics and 60,000 posts (20 topics of 130 posts), gunicorn with several
   workers, and ``manage.py db_worker``,
3. reads every process's resident memory (VmRSS in /proc) idle once it has started and
   each web worker has answered health checks (asleep, and steady for three seconds):
   the floor,
4. queues the import as the staff import page does (``start_discourse_import``: the
   django-tasks task db_worker runs), with no rate limit so the worker is never idle; with
   ``--via-page RATE`` it posts the page's form instead (whose rate is at most 10
   requests per second, so 5,000 topics take over eight minutes),
5. runs a page load in its own process until the import ends: closed-loop clients asking
   for the corpus browser with filters, thread pages, the import's progress page, the
   agreement and report pages and the project's full long CSV export,
6. samples every process's VmRSS every 0.2 s and reads the kernel's peak (VmHWM) at the
   end; for db_worker also its memory at a quarter of the import, to show whether memory
   grows with the length of the import.

Targets: the import finishes with every topic and no page errors; every process peaks
under 512 MB; db_worker's peak in the second half of the import at most 1.25x its memory
at a quarter (memory does not grow with the number of topics imported).

    .venv/bin/python bench/memory_bench.py [--db sqlite|postgres|both] [--topics 5000]
        [--posts 60000] [--workers 4] [--clients 4] [--via-page RATE] [--sqlite-path PATH]
        [--database-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_SQLITE,
    PYTHON,
    ROOT,
    build_corpus,
    children,
    csrf_token,
    env_for,
    figure,
    load_average,
    login,
    memory_kb,
    run_per_database,
    setup_django,
    start_gunicorn,
    stop,
)
from bench.pages_bench import ensure_coded_project

USERNAME, PASSWORD = "bench-memory-staff", "bench-password-not-secret-4"
PEAK_LIMIT_MB = 512
FLAT_RATIO = 1.25


def copy_database(db: str, args: argparse.Namespace) -> str:
    """A throwaway copy of the shared corpus: a file path or a database URL."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    if db == "sqlite":
        target = f"{args.sqlite_path}.memory-{stamp}"
        source, copy = sqlite3.connect(args.sqlite_path), sqlite3.connect(target)
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
        return target
    import psycopg

    name = f"{args.database_url.rsplit('/', 1)[1]}_memory_{stamp}"
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    template = args.database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return args.database_url.rsplit("/", 1)[0] + "/" + name


def drop_database(db: str, where: str) -> None:
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(where + suffix).unlink(missing_ok=True)
        return
    import psycopg

    admin = where.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{where.rsplit("/", 1)[1]}" WITH (FORCE)')


def setup() -> dict:
    """A staff account that is also an admin of the coded project; the pages to load."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from coding.models import Membership, Project, Role, Thread

    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    user.set_password(PASSWORD)
    user.is_staff = True
    user.save()
    project = (
        Project.objects.filter(slug__startswith="synthetic")
        .annotate(n=Count("units"))
        .order_by("-n")
        .first()
    )
    Membership.objects.update_or_create(project=project, user=user, defaults={"role": Role.ADMIN})
    categories = sorted(
        c for c in Thread.objects.order_by().values_list("category", flat=True).distinct() if c
    )[:4]
    thread_ids = list(Thread.objects.order_by("?").values_list("id", flat=True)[:50])
    urls = [f"/corpus/?category={c}&sort=views" for c in categories]
    urls += [f"/corpus/?q=memory&category={c}" for c in categories]
    urls += [f"/threads/{t}/" for t in thread_ids[:8]]
    urls += [f"/projects/{project.slug}/agreement/", f"/projects/{project.slug}/reports/"]
    return {"user": user, "urls": urls, "export": f"/projects/{project.slug}/exports/long/"}


# The page load (its own process, one thread per client) ----------------------------------


def _client(base: str, urls: list[str], stop_event, out: dict, seed: int) -> None:
    import requests

    rng = random.Random(seed)
    session = requests.Session()
    if login(session, base, USERNAME, PASSWORD) is None:
        out["errors"].append("login failed")
        return
    while not stop_event.is_set():
        url = rng.choice(urls)
        try:
            with session.get(base + url, stream=True, timeout=600) as response:
                for _ in response.iter_content(1 << 16):
                    pass
        except Exception as exc:  # a refused or dropped connection is an error, not a crash
            out["errors"].append(f"{url}: {type(exc).__name__}")
            continue
        out["requests"] += 1
        if response.status_code != 200:
            out["errors"].append(f"{url}: {response.status_code}")


def page_load(base: str, urls: list[str], clients: int, stop_event, queue) -> None:
    import threading

    out = {"requests": 0, "errors": []}
    threads = [
        threading.Thread(target=_client, args=(base, urls, stop_event, out, n))
        for n in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(out)


# One database ----------------------------------------------------------------------------


def idle_memory(processes: dict[str, int], settle: float) -> dict[str, int]:
    """Each process's RSS once all have finished starting: after ``settle`` seconds, the
    first reading where every process sleeps (none is runnable, as one still loading the
    app is on a busy machine) and has kept its RSS within 1 MB for three seconds."""

    def sleeping(pid: int) -> bool:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S"

    time.sleep(settle)
    readings = [{name: memory_kb(pid)["VmRSS"] for name, pid in processes.items()}]
    for _ in range(120):
        time.sleep(1)
        readings = [*readings[-3:], {n: memory_kb(pid)["VmRSS"] for n, pid in processes.items()}]
        steady = len(readings) == 4 and all(
            max(r[n] for r in readings) - min(r[n] for r in readings) <= 1024 for n in processes
        )
        if steady and all(sleeping(pid) for pid in processes.values()):
            break
    return readings[-1]


def start_from_page(base: str, forum_url: str, rate: float) -> int:
    """Queue the import through the staff import page's form; the new run's id."""
    import requests

    session = requests.Session()
    if login(session, base, USERNAME, PASSWORD) is None:
        raise SystemExit("the staff account could not log in")
    token = csrf_token(session.get(f"{base}/imports/").text)
    response = session.post(
        f"{base}/imports/",
        data={
            "base_url": forum_url,
            "rate": str(rate),
            "csrfmiddlewaretoken": token,
        },
        headers={"Referer": f"{base}/imports/"},
        allow_redirects=False,
    )
    found = re.search(r"/imports/(\d+)/$", response.headers.get("Location", ""))
    if response.status_code != 302 or not found:
        raise SystemExit(f"the import page refused the import: HTTP {response.status_code}")
    return int(found.group(1))


def start_fake_forum(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [
            PYTHON, str(ROOT / "tests" / "fake_discourse.py"), "--topics", str(args.topics),
            "--posts", str(args.posts), "--long-topics", "20", "--long-size", "130",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    url = server.stdout.readline().strip()
    if not url:
        stop(server)
        raise SystemExit("the fake forum did not start (see above)")
    return server, url


def run_database(db: str, args: argparse.Namespace) -> bool:
    with tempfile.TemporaryFile("w+") as worker_log:
        return _run_database(db, args, worker_log)


def _run_database(db: str, args: argparse.Namespace, worker_log) -> bool:
    import requests

    print(f"\n== {db} ==", flush=True)
    shared = env_for(db, args.sqlite_path, args.database_url)
    build_corpus(shared, args.threads, args.posts_per_thread)
    ensure_coded_project(shared)
    started = time.perf_counter()
    copy = copy_database(db, args)
    print(f"  throwaway copy of the corpus: {copy} ({time.perf_counter() - started:.0f} s)")
    env = env_for(db, copy, copy, IMPORT_ALLOW_PRIVATE_HOSTS="1")
    forum = server = worker = None
    try:
        setup_django(env)
        from django.db import connections

        from coding.importers.discourse import ImportOptions
        from coding.models import ImportRun, Post, Thread
        from coding.tasks import start_discourse_import

        threads, posts = Thread.objects.count(), Post.objects.count()
        forum, forum_url = start_fake_forum(args)
        plan = setup()
        server, base = start_gunicorn(env, args.workers, 1)
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "db_worker", "--interval", "0.5", "--no-reload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=worker_log,
            start_new_session=True,
        )
        processes = {f"gunicorn worker {n + 1}": pid for n, pid in enumerate(children(server.pid))}
        processes["db_worker"] = worker.pid
        # Every worker answers a few health checks first: a worker's first request imports
        # the URLconf and the views (about 150 MB), which is start-up, not load.
        with ThreadPoolExecutor(4 * args.workers) as pool:
            list(
                pool.map(
                    lambda _: requests.get(f"{base}/healthz", timeout=60), range(16 * args.workers)
                )
            )
        floor = idle_memory(processes, args.settle)
        peak = dict(floor)

        context = multiprocessing.get_context("spawn")
        stop_event, queue = context.Event(), context.Queue()
        urls = plan["urls"] + [plan["export"]] * args.exports
        load = context.Process(target=page_load, args=(base, urls, args.clients, stop_event, queue))
        load.start()
        began = time.perf_counter()
        if args.via_page:
            run = ImportRun.objects.get(pk=start_from_page(base, forum_url, args.via_page))
        else:
            run = start_discourse_import(ImportOptions(base_url=forum_url, rate=0), plan["user"])
        quarter = None
        second_half_peak = 0
        deadline = time.monotonic() + args.timeout
        checked = 0.0
        while time.monotonic() < deadline:
            for name, pid in processes.items():
                try:
                    peak[name] = max(peak[name], memory_kb(pid)["VmRSS"])
                except FileNotFoundError:
                    print(f"  {name} (pid {pid}) exited during the run")
                    return False
            if time.monotonic() - checked >= 1:
                checked = time.monotonic()
                run.refresh_from_db()
                if run.topics_total and quarter is None and run.topics_done >= run.topics_total / 4:
                    quarter = memory_kb(worker.pid)["VmRSS"]
                if run.topics_total and run.topics_done >= run.topics_total / 2:
                    second_half_peak = max(second_half_peak, memory_kb(worker.pid)["VmRSS"])
                if not run.is_active:
                    break
            time.sleep(0.2)
        elapsed = time.perf_counter() - began
        hwm = {name: memory_kb(pid)["VmHWM"] for name, pid in processes.items()}
        stop_event.set()
        served = queue.get(timeout=900)
        load.join()
        run.refresh_from_db()
        connections.close_all()  # the throwaway database is dropped next
    finally:
        for process in (worker, server, forum):
            if process is not None:
                stop(process)
        drop_database(db, copy)

    loadavg = load_average()
    done = run.state == ImportRun.State.DONE and run.topics_done == args.topics
    if not done:
        worker_log.seek(0)
        print("  db_worker's last lines:\n" + "".join(worker_log.readlines()[-15:]))
    imported = run.summary_line()
    print(
        f"  corpus {threads:,} threads, {posts:,} posts; gunicorn -w {args.workers}, one "
        f"db_worker; page load: {args.clients} closed-loop clients; load average {loadavg}"
    )
    print(
        f"  import of {args.topics:,} topics ({args.posts:,} posts) from the fake forum: "
        f"{run.state} in {elapsed:.0f} s; {imported}"
    )
    print(
        f"  pages served during the import: {served['requests']}, errors: {len(served['errors'])}"
    )
    for line in served["errors"][:5]:
        print(f"    {line}")
    print(
        f"  {'process':<20}{'idle after start':>18}{'peak (sampled)':>16}{'VmHWM':>10}{'ratio':>8}"
    )
    ok = done and not served["errors"]
    where = {"db": db, "corpus": f"{threads}threads", "load": loadavg}
    for name in processes:
        top = max(peak[name], hwm[name])
        ratio = top / floor[name]
        within = top / 1024 < PEAK_LIMIT_MB
        ok = ok and within
        print(
            f"  {name:<20}{floor[name] / 1024:15.0f} MB{peak[name] / 1024:13.0f} MB"
            f"{hwm[name] / 1024:7.0f} MB{ratio:7.2f}x"
        )
        figure(
            f"memory_peak[{name.replace(' ', '_')}]",
            f"{top / 1024:.0f}MB",
            f"{floor[name] / 1024:.0f}MB",
            f"{ratio:.2f}",
            f"<{PEAK_LIMIT_MB}MB",
            within,
            **where,
        )
    if quarter and second_half_peak:
        flat = second_half_peak / quarter
        ok = ok and flat <= FLAT_RATIO
        print(
            f"  db_worker: {quarter / 1024:.0f} MB at a quarter of the import, peak "
            f"{second_half_peak / 1024:.0f} MB in its second half: {flat:.2f}x "
            f"(target <= {FLAT_RATIO})"
        )
        figure(
            "memory_db_worker_growth",
            f"{second_half_peak / 1024:.0f}MB",
            f"{quarter / 1024:.0f}MB",
            f"{flat:.2f}",
            f"<={FLAT_RATIO}",
            flat <= FLAT_RATIO,
            **where,
        )
    else:
        print("  db_worker: the import was too short to sample a quarter and a second half")
        ok = False
    figure(
        "memory_import_done",
        f"{run.topics_done}topics",
        f"{args.topics}topics",
        "-",
        "all",
        done,
        seconds=f"{elapsed:.0f}",
        **where,
    )
    return ok


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sqlite-path", default=DEFAULT_SQLITE)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--posts-per-thread", type=int, default=10)
    parser.add_argument("--topics", type=int, default=5000, help="topics of the fake forum")
    parser.add_argument("--posts", type=int, default=60000, help="posts of the fake forum")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop page clients")
    parser.add_argument(
        "--exports", type=int, default=1, help="weight of the full export among the pages"
    )
    parser.add_argument(
        "--via-page",
        type=float,
        default=0,
        metavar="RATE",
        help="queue the import by posting the staff import page's form at RATE requests/s "
        "(the form allows 0.05-10); by default it is queued as the page does, without a "
        "rate limit",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle before the floor")
    parser.add_argument("--timeout", type=float, default=1800, help="longest import wait")
    return parser


if __name__ == "__main__":
    sys.exit(run_per_database(__file__, build_parser, run_database))
