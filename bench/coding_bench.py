"""Coding screen under load: 16 annotators coding without pause, against gunicorn.

For each database (SQLite and PostgreSQL) this script

1. builds a 100,000-thread corpus into a throwaway database with make_synthetic_corpus
   (skipped when the database already holds it),
2. creates a project, a codebook, units and two coders' assignments per unit with bulk
   inserts,
3. starts gunicorn with bench/coding_settings.py (the product plus one floor view doing a
   single insert),
4. runs the load generator in its own process: closed-loop simulated annotators with no
   think time (open the next unit, toggle codes, quote a passage, save and go on), then
   the same number of clients against the floor view,
5. checks afterwards that every acknowledged save is in the database.

Targets: zero errors, zero lost saves, throughput at least 0.5x the floor's and p95 at
most 3x the floor's. Exits non-zero when a target is missed.

    .venv/bin/python bench/coding_bench.py [--db sqlite|postgres|both] [--duration 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
PASSWORD = "bench-password-not-secret-1"
DATA_RE = re.compile(r'<script id="coding-data" type="application/json">(.*?)</script>', re.S)


# The database side (runs in this process, with Django set up for one database) -------


def _env_for(db: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update({"DEBUG": "0", "SECRET_KEY": "bench-only-secret-key-" + "x" * 40})
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    env["DJANGO_SETTINGS_MODULE"] = "bench.coding_settings"
    if db == "sqlite":
        env["SQLITE_PATH"] = args.sqlite_path
    else:
        env["DATABASE_URL"] = args.database_url
    return env


def _manage(env: dict[str, str], *command: str) -> None:
    subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True)


def build_corpus(env: dict[str, str], threads: int, posts_per_thread: int) -> None:
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "createcachetable")
    count = (
        subprocess.run(
            [
                PYTHON,
                "manage.py",
                "shell",
                "-c",
                "from coding.models import Thread; print(Thread.objects.count())",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    if int(count) >= threads:
        print(f"  corpus present: {count} threads")
        return
    print(f"  building the corpus: {threads} threads x {posts_per_thread} posts ...")
    _manage(
        env,
        "make_synthetic_corpus",
        "--threads",
        str(threads),
        "--posts-per-thread",
        str(posts_per_thread),
        "--seed",
        "1",
    )


def setup_project(annotators: int, units_per_coder: int) -> dict:
    """Project, codebook, users, units and assignments with bulk inserts; returns the plan."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from bench.coding_urls import FLOOR_TABLE
    from coding.models import (
        Assignment,
        Code,
        Codebook,
        CodebookVersion,
        Membership,
        Project,
        Role,
        Round,
        Thread,
        Unit,
    )

    User = get_user_model()
    stamp = time.strftime("%Y%m%d%H%M%S")
    password = make_password(PASSWORD)
    with transaction.atomic():
        # Fresh coders per run, so queues and progress do not grow from run to run.
        names = [f"bench-{stamp}-{n}" for n in range(annotators)]
        existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        User.objects.bulk_create(
            User(username=n, password=password) for n in names if n not in existing
        )
        User.objects.filter(username__in=names).update(password=password)
        coders = list(User.objects.filter(username__in=names).order_by("username"))
        codebook = Codebook.objects.create(name=f"Bench codebook {stamp}")
        version = CodebookVersion.objects.create(codebook=codebook, number=1)
        Code.objects.bulk_create(
            Code(
                version=version,
                key=f"c{n}",
                name=f"Code {n}",
                order=n,
                definition=f"Definition of code {n}.",
            )
            for n in range(30)
        )
        project = Project.objects.create(
            name=f"Bench {stamp}",
            slug=f"bench-{stamp}",
            codebook_version=version,
            created_by=coders[0],
        )
        Membership.objects.bulk_create(
            Membership(project=project, user=u, role=Role.ANNOTATOR) for u in coders
        )
        round_ = Round.objects.create(project=project, name="Main")
        total = annotators * units_per_coder // 2
        thread_ids = list(Thread.objects.order_by("?").values_list("id", flat=True)[:total])
        units = Unit.objects.bulk_create(
            (
                Unit(project=project, round=round_, thread_id=t, position=i)
                for i, t in enumerate(thread_ids)
            ),
            batch_size=2000,
        )
        # Two coders per unit: coder i and coder i+1 share units, so saves of different
        # codings of one unit run side by side.
        Assignment.objects.bulk_create(
            (
                Assignment(unit=u, coder=coders[(i + k) % annotators])
                for i, u in enumerate(units)
                for k in range(min(2, annotators))
            ),
            batch_size=5000,
        )
        with connection.cursor() as cursor:
            key = "SERIAL" if connection.vendor == "postgresql" else "INTEGER"
            cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            cursor.execute(
                f"CREATE TABLE {FLOOR_TABLE} (id {key} PRIMARY KEY, at DOUBLE PRECISION)"
            )
    return {"slug": project.slug, "coders": names, "codes": [f"c{n}" for n in range(30)]}


def verify(acks: list[dict], floor_acks: int) -> dict:
    """How many acknowledged saves are not (or not as acknowledged) in the database."""
    from django.db import connection

    from bench.coding_urls import FLOOR_TABLE
    from coding.codings import codings_for_unit
    from coding.models import Coding, Unit

    latest: dict[tuple[int, str], dict] = {}
    for ack in acks:
        key = (ack["unit"], ack["coder"])
        if key not in latest or ack["revision"] > latest[key]["revision"]:
            latest[key] = ack
    lost = 0
    units = Unit.objects.in_bulk([u for u, _ in latest])
    stored = {}
    for unit in units.values():
        for coding in codings_for_unit(unit):
            stored[(unit.pk, coding.coder.username)] = coding
    for key, ack in latest.items():
        coding = stored.get(key)
        if (
            coding is None
            or coding.revision != ack["revision"]
            or coding.state["codes"] != ack["codes"]
            or len(coding.state["quotes"]) != ack["quotes"]
            or coding.status != Coding.Status.SUBMITTED
        ):
            lost += 1
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {FLOOR_TABLE}")  # noqa: S608
        floor_rows = cursor.fetchone()[0]
    return {"lost": lost, "checked": len(latest), "floor_lost": floor_acks - floor_rows}


# The load generator (its own process, 16 client threads) ---------------------------


def _annotator(base: str, plan: dict, coder: str, clock: Clock, out: dict, seed: int) -> None:
    import requests

    rng = random.Random(seed)
    session = requests.Session()
    session.get(f"{base}/accounts/login/")
    login = session.post(
        f"{base}/accounts/login/",
        data={
            "username": coder,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
    )
    if login.status_code != 302:
        out["errors"].append(f"{coder}: login failed ({login.status_code})")
        clock.wait()
        return
    headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": base + "/"}
    clock.wait()

    def timed(kind, call, *call_args, **call_kwargs):
        started = time.perf_counter()
        try:
            response = call(*call_args, **call_kwargs)
        except Exception as exc:  # a refused or dropped connection is an error, not a crash
            out["errors"].append(f"{kind}: {type(exc).__name__}")
            return None
        if clock.measuring(started):
            out["latencies"].append((kind, time.perf_counter() - started))
        return response

    # The first unit comes from the queue; each save-and-next reply names the next one.
    first = session.get(f"{base}/projects/{plan['slug']}/next/", allow_redirects=False)
    if first.status_code != 302 or "/units/" not in first.headers["Location"]:
        out["errors"].append(f"next: {first.status_code}")
        return
    url = base + first.headers["Location"]
    while not clock.over():
        page = timed("open", session.get, url)
        if page is None or page.status_code != 200:
            out["errors"].append(f"open: {getattr(page, 'status_code', None)}")
            continue
        data = json.loads(DATA_RE.search(page.text).group(1))
        codes = sorted(rng.sample(plan["codes"], rng.randint(1, 3)))
        post = data["posts"][0]
        text = post["text"]
        start = text.find(" ") + 1 if " " in text[:40] else 0
        quote = {
            "code": codes[0],
            "post": post["id"],
            "start": start,
            "end": start + 20,
            "text": text[start : start + 20],
        }
        body = {
            "base_revision": data["revision"],
            "codes": codes,
            "quotes": [quote],
            "not_relevant": False,
            "unsure": rng.random() < 0.1,
            "memo": "",
            "submit": True,
        }
        saved = timed("save", session.post, url, json=body, headers=headers)
        if saved is None or saved.status_code != 200:
            out["errors"].append(
                f"save: {getattr(saved, 'status_code', None)} {getattr(saved, 'text', '')[:200]}"
            )
            continue
        reply = saved.json()
        out["acks"].append(
            {
                "unit": data["unit"],
                "coder": coder,
                "revision": reply["revision"],
                "codes": codes,
                "quotes": 1,
            }
        )
        if "/units/" not in reply["next"]:
            out["errors"].append(f"{coder}: the queue ran out; give more --units-per-coder")
            break
        url = base + reply["next"]


def _floor_client(base: str, clock: Clock, out: dict) -> None:
    import requests

    session = requests.Session()
    clock.wait()
    while not clock.over():
        started = time.perf_counter()
        try:
            response = session.post(f"{base}/bench-floor/")
        except Exception as exc:
            out["errors"].append(f"floor: {type(exc).__name__}")
            continue
        if clock.measuring(started):
            out["latencies"].append(("floor", time.perf_counter() - started))
        if response.status_code == 200:
            out["acks"].append(1)
        else:
            out["errors"].append(f"floor: {response.status_code}")


class Clock:
    """One start for every client (after they logged in), then a warm-up that is not
    measured (fresh gunicorn workers import and compile on their first requests)."""

    def __init__(self, clients: int, warmup: float, duration: float) -> None:
        self.warmup, self.duration = warmup, duration
        self.started_at = 0.0
        self.barrier = threading.Barrier(clients, action=self._start)

    def _start(self) -> None:
        self.started_at = time.perf_counter()

    def wait(self) -> None:
        self.barrier.wait(timeout=300)

    def measuring(self, at: float) -> bool:
        return at >= self.started_at + self.warmup

    def over(self) -> bool:
        return time.perf_counter() >= self.started_at + self.warmup + self.duration


def load_generator(
    base: str, plan: dict, clients: int, warmup: float, duration: float, queue, rounds: int = 1
) -> None:
    """Run both phases and report through ``queue`` (this runs in its own process).

    With ``rounds`` > 1 the phases take turns (coding, floor, coding, floor, ...), each
    turn a share of ``duration``, so a change in the machine's other load falls on both.
    """
    results = {phase: {"latencies": [], "errors": [], "acks": []} for phase in ("coding", "floor")}
    for phase in ("coding", "floor") * rounds:
        out = results[phase]
        clock = Clock(clients, warmup, duration / rounds)
        threads = [
            threading.Thread(
                target=_annotator if phase == "coding" else _floor_client,
                args=(
                    (base, plan, plan["coders"][i], clock, out, i)
                    if phase == "coding"
                    else (base, clock, out)
                ),
            )
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    queue.put(results)


# Reporting -------------------------------------------------------------------------


def _summary(latencies: list[tuple[str, float]], duration: float) -> dict:
    values = sorted(v for _, v in latencies)
    if not values:
        return {"rps": 0.0, "p50": float("nan"), "p95": float("nan"), "n": 0}
    return {
        "rps": len(values) / duration,
        "p50": statistics.median(values) * 1000,
        "p95": values[min(len(values) - 1, int(0.95 * len(values)))] * 1000,
        "n": len(values),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str, proc: subprocess.Popen) -> None:
    import requests

    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited before it served a request")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not come up")


def run_database(db: str, args: argparse.Namespace) -> bool:
    print(f"\n== {db} ==")
    env = _env_for(db, args)
    build_corpus(env, args.threads, args.posts_per_thread)
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    plan = setup_project(args.annotators, args.units_per_coder)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            GUNICORN,
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--threads",
            str(args.worker_threads),
            "--access-logfile",
            "/dev/null",
            "--error-logfile",
            "-",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        _wait_up(base, server)
        queue = multiprocessing.get_context("spawn").Queue()
        generator = multiprocessing.get_context("spawn").Process(
            target=load_generator,
            args=(base, plan, args.annotators, args.warmup, args.duration, queue, args.rounds),
        )
        generator.start()
        results = queue.get(timeout=(args.warmup * args.rounds + args.duration) * 2 + 300)
        generator.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    checked = verify(results["coding"]["acks"], len(results["floor"]["acks"]))
    coding = _summary(results["coding"]["latencies"], args.duration)
    floor = _summary(results["floor"]["latencies"], args.duration)
    per_kind = {
        kind: _summary([x for x in results["coding"]["latencies"] if x[0] == kind], args.duration)
        for kind in ("open", "save")
    }
    errors = results["coding"]["errors"] + results["floor"]["errors"]
    throughput_ratio = coding["rps"] / floor["rps"] if floor["rps"] else 0.0
    p95_ratio = coding["p95"] / floor["p95"] if floor["n"] else float("inf")
    print(
        f"  {args.annotators} closed-loop clients, {args.duration:.0f} s per phase, "
        f"gunicorn -w {args.workers} --threads {args.worker_threads}, "
        f"{args.rounds} alternating turns each"
    )
    print(
        f"  floor (one insert): {floor['rps']:8.1f} req/s  p50 {floor['p50']:7.1f} ms  "
        f"p95 {floor['p95']:7.1f} ms"
    )
    print(
        f"  coding (all):       {coding['rps']:8.1f} req/s  p50 {coding['p50']:7.1f} ms  "
        f"p95 {coding['p95']:7.1f} ms"
    )
    for kind, s in per_kind.items():
        print(
            f"    {kind:5}             {s['rps']:8.1f} req/s  p50 {s['p50']:7.1f} ms  "
            f"p95 {s['p95']:7.1f} ms"
        )
    print(
        f"  units coded: {len(results['coding']['acks'])} "
        f"({len(results['coding']['acks']) / args.duration:.1f}/s)"
    )
    print(f"  throughput ratio (coding/floor): {throughput_ratio:.2f}  (target >= 0.5)")
    print(f"  p95 ratio (coding/floor):        {p95_ratio:.2f}  (target <= 3)")
    print(
        f"  errors: {len(errors)}  lost saves: {checked['lost']} of {checked['checked']} "
        f"checked  lost floor inserts: {checked['floor_lost']}"
    )
    for line in errors[:5]:
        print(f"    {line}")
    where = f"db={db} corpus={args.threads}threads annotators={args.annotators}"
    print(
        f"FIGURE name=coding_throughput value={coding['rps']:.1f}req/s "
        f"floor={floor['rps']:.1f}req/s ratio={throughput_ratio:.2f} target=>=0.5 "
        f"ok={'yes' if throughput_ratio >= 0.5 else 'no'} {where}"
    )
    print(
        f"FIGURE name=coding_p95 value={coding['p95']:.0f}ms floor={floor['p95']:.0f}ms "
        f"ratio={p95_ratio:.2f} target=<=3 ok={'yes' if p95_ratio <= 3 else 'no'} {where}"
    )
    print(
        f"FIGURE name=coding_lost_saves value={checked['lost']} floor=0 ratio=- target=0 "
        f"ok={'yes' if checked['lost'] == 0 and not errors else 'no'} {where}"
    )
    return (
        not errors
        and checked["lost"] == 0
        and checked["floor_lost"] == 0
        and throughput_ratio >= 0.5
        and p95_ratio <= 3
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sqlite-path", default="/tmp/coding_bench.sqlite3")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/coding_bench")
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--posts-per-thread", type=int, default=10)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--units-per-coder", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--rounds", type=int, default=3, help="turns of coding and floor phases, alternating"
    )
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=1,
        help="threads per gunicorn worker (gthread when > 1)",
    )
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if args.db in ("postgres", "both"):
        _ensure_postgres_database(args.database_url)
    ok = True
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        # Each database in a fresh interpreter, so Django is set up once per database.
        child = subprocess.run(
            [PYTHON, __file__, "--single", db, *sys.argv[1:]], cwd=ROOT, check=False
        )
        ok = ok and child.returncode == 0
    print("\nall targets met" if ok else "\ntarget missed")
    return 0 if ok else 1


def _ensure_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 2 and sys.argv[1] == "--single":
        sys.exit(0 if run_database(sys.argv[2], build_parser().parse_args(sys.argv[3:])) else 1)
    sys.exit(main())
