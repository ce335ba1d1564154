"""Coding screen under load: 8, 16 and 32 annotators coding without pause, against gunicorn.

For each database (SQLite and PostgreSQL) this script

1. builds a 100,000-thread corpus into a throwaway database with make_synthetic_corpus
   (skipped when the database already holds it),
2. creates a project, a codebook, units and two coders' assignments per unit with bulk
   inserts (enough coders for the largest level),
3. starts gunicorn with bench/coding_settings.py (the product plus one floor view doing a
   single insert),
4. for each level of concurrency, runs the load generator in its own process:
   closed-loop simulated annotators with no think time (open the next unit, toggle codes,
   quote a passage, save and go on), taking turns with the same number of clients
   against the floor view,
5. checks after each level that every save acknowledged at that level is in the
   database with its revision, codes, quote and status.

Targets: at every level zero errors and zero lost saves; at 16 clients (``--judged-at``)
throughput at least 0.5x the floor's and p95 at most 3x the floor's. Exits non-zero when
a target is missed.

    .venv/bin/python bench/coding_bench.py [--db sqlite|postgres|both] [--clients 8,16,32]
        [--duration 30] [--sqlite-path PATH] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_SQLITE,
    Clock,
    CpuMeter,
    build_corpus,
    cookies_as_header,
    env_for,
    figure,
    floor_client,
    load_average,
    login,
    run_clients,
    run_per_database,
    setup_django,
    start_gunicorn,
    stop,
    summary,
    summary_line,
)

PASSWORD = "bench-password-not-secret-1"
DATA_RE = re.compile(r'<script id="coding-data" type="application/json">(.*?)</script>', re.S)
THROUGHPUT_RATIO, P95_RATIO = 0.5, 3.0


# The database side (runs in this process, with Django set up for one database) -------


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


def settle() -> None:
    """What a PostgreSQL server's autovacuum does after a bulk write (some servers, like
    one set up for CI, run without it): the new rows' statistics and visibility map,
    so the planner knows the tables and index-only scans skip the heap."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) coding_assignment, coding_unit, coding_queuecount, "
            "coding_coding, coding_codeapplication, coding_membership, coding_project"
        )


def empty_floor_table() -> None:
    from django.db import connection

    from bench.coding_urls import FLOOR_TABLE

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FLOOR_TABLE}")  # noqa: S608


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


# The load generator (its own process, one thread per client) ----------------------


def _annotator(base: str, plan: dict, coder: str, clock: Clock, out: dict, seed: int) -> None:
    import requests

    rng = random.Random(seed)
    session = requests.Session()
    token = login(session, base, coder, PASSWORD)
    if token is None:
        out["errors"].append(f"{coder}: login failed")
        clock.wait()
        return
    cookies_as_header(session)
    headers = {"X-CSRFToken": token, "Referer": base + "/"}
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
        page = timed("open", session.get, url, allow_redirects=False)
        if page is None or page.status_code != 200:
            out["errors"].append(f"open: {getattr(page, 'status_code', None)}")
            continue
        if page.cookies:
            # The cookies go as a fixed header (cookies_as_header): one set now would be
            # kept in the jar and never sent.
            out["errors"].append(f"open: the server set a cookie: {sorted(page.cookies.keys())}")
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
        if saved.cookies:
            out["errors"].append(f"save: the server set a cookie: {sorted(saved.cookies.keys())}")
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


def load_generator(
    base: str,
    plan: dict,
    clients: int,
    warmup: float,
    duration: float,
    queue,
    rounds: int = 1,
    meter: tuple[int, int | None] | None = None,
) -> None:
    """Run both phases and report through ``queue`` (this runs in its own process).

    With ``rounds`` > 1 the phases take turns (coding, floor, coding, floor, ...), each
    turn a share of ``duration``, so a change in the machine's other load falls on both.
    With ``meter`` (gunicorn's pid, PostgreSQL's port or None) the CPU time each phase
    costs the server, the database and this process is measured as well.
    """
    results = {phase: {"latencies": [], "errors": [], "acks": []} for phase in ("coding", "floor")}
    meters = {phase: CpuMeter(*meter) for phase in results} if meter else {}
    for phase in ("coding", "floor") * rounds:
        out = results[phase]
        clock = Clock(clients, warmup, duration / rounds)
        measuring = meters[phase].during(clock) if meters else None
        if phase == "coding":
            run_clients(
                _annotator, [(base, plan, plan["coders"][i], clock, out, i) for i in range(clients)]
            )
        else:
            run_clients(floor_client, [(base, clock, out)] * clients)
        if measuring is not None:
            measuring.join()
    for phase, m in meters.items():
        results[phase]["cpu"] = m.spent
    queue.put(results)


def run_level(
    base: str, plan: dict, clients: int, db: str, args: argparse.Namespace, server_pid: int
) -> bool:
    """One level of concurrency: the load generator in its own process, then the check."""
    empty_floor_table()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    generator = context.Process(
        target=load_generator,
        args=(
            base,
            plan,
            clients,
            args.warmup,
            args.duration,
            queue,
            args.rounds,
            (server_pid, urlsplit(args.database_url).port or 5432 if db == "postgres" else None),
        ),
    )
    generator.start()
    results = queue.get(timeout=(args.warmup * args.rounds + args.duration) * 4 + 600)
    generator.join()
    load = load_average()

    checked = verify(results["coding"]["acks"], len(results["floor"]["acks"]))
    coding = summary([t for _, t in results["coding"]["latencies"]], args.duration)
    floor = summary([t for _, t in results["floor"]["latencies"]], args.duration)
    per_kind = {
        kind: summary([t for k, t in results["coding"]["latencies"] if k == kind], args.duration)
        for kind in ("open", "save")
    }
    errors = results["coding"]["errors"] + results["floor"]["errors"]
    throughput_ratio = coding["rps"] / floor["rps"] if floor["rps"] else 0.0
    p95_ratio = coding["p95"] / floor["p95"] if floor["n"] else float("inf")
    judged = clients in args.judged_at
    print(
        f"  -- {clients} closed-loop clients, {args.duration:.0f} s per phase in "
        f"{args.rounds} alternating turns; load average {load} --"
    )
    print("  " + summary_line("floor (one insert):", floor))
    print("  " + summary_line("coding (all):", coding))
    for kind, s in per_kind.items():
        print("    " + summary_line(kind, s, width=22))
    units = len(results["coding"]["acks"])
    print(f"  units coded: {units} ({units / args.duration:.1f}/s)")
    aim = "" if judged else ", reported only"
    print(
        f"  throughput ratio (coding/floor): {throughput_ratio:.2f}  "
        f"(target >= {THROUGHPUT_RATIO}{aim})"
    )
    print(f"  p95 ratio (coding/floor):        {p95_ratio:.2f}  (target <= {P95_RATIO:g}{aim})")
    print(
        f"  errors: {len(errors)}  lost saves: {checked['lost']} of {checked['checked']} "
        f"checked  lost floor inserts: {checked['floor_lost']}"
    )
    for line in errors[:5]:
        print(f"    {line}")
    where = {"db": db, "corpus": f"{args.threads}threads", "clients": clients, "load": load}
    cpu = {
        phase: CpuMeter.per_request_of(results[phase]["cpu"], s["n"])
        for phase, s in (("coding", coding), ("floor", floor))
    }
    for phase in ("floor", "coding"):
        c = cpu[phase]
        print(
            f"  CPU per {phase} request: server {c['server']:.2f} ms + database "
            f"{c['database']:.2f} ms + load generator {c['client']:.2f} ms = {c['total']:.2f} ms"
        )
    cpu_ratio = cpu["floor"]["total"] / cpu["coding"]["total"] if cpu["coding"]["total"] else 0
    print(
        f"  floor/coding CPU per request: {cpu_ratio:.2f} (the throughput ratio when the "
        "cores are the bottleneck)"
    )
    figure(
        f"coding_cpu_per_request[clients={clients}]",
        f"{cpu['coding']['total']:.2f}ms",
        f"{cpu['floor']['total']:.2f}ms",
        f"{cpu_ratio:.2f}",
        "-",
        None,
        **where,
    )
    figure(
        f"coding_throughput[clients={clients}]",
        f"{coding['rps']:.1f}req/s",
        f"{floor['rps']:.1f}req/s",
        f"{throughput_ratio:.2f}",
        f">={THROUGHPUT_RATIO}" if judged else "-",
        throughput_ratio >= THROUGHPUT_RATIO if judged else None,
        **where,
    )
    for q in ("p50", "p95", "p99"):
        ratio = coding[q] / floor[q] if floor["n"] else float("inf")
        target = q == "p95" and judged
        figure(
            f"coding_{q}[clients={clients}]",
            f"{coding[q]:.0f}ms",
            f"{floor[q]:.0f}ms",
            f"{ratio:.2f}",
            f"<={P95_RATIO:g}" if target else "-",
            ratio <= P95_RATIO if target else None,
            **where,
        )
    figure(
        f"coding_lost_saves[clients={clients}]",
        str(checked["lost"]),
        "0",
        "-",
        "0",
        checked["lost"] == 0 and checked["floor_lost"] == 0 and not errors,
        checked=checked["checked"],
        errors=len(errors),
        **where,
    )
    return (
        not errors
        and checked["lost"] == 0
        and checked["floor_lost"] == 0
        and (not judged or (throughput_ratio >= THROUGHPUT_RATIO and p95_ratio <= P95_RATIO))
    )


def run_database(db: str, args: argparse.Namespace) -> bool:
    print(f"\n== {db} ==", flush=True)
    env = env_for(db, args.sqlite_path, args.database_url)
    build_corpus(env, args.threads, args.posts_per_thread)
    setup_django(env)
    plan = setup_project(max(args.clients), args.units_per_coder)
    settle()
    server, base = start_gunicorn(env, args.workers, args.worker_threads)
    print(
        f"  gunicorn -w {args.workers} --threads {args.worker_threads}; levels: "
        + ", ".join(map(str, args.clients))
        + " clients",
        flush=True,
    )
    ok = True
    try:
        for clients in args.clients:
            ok = run_level(base, plan, clients, db, args, server.pid) and ok
    finally:
        stop(server)
    return ok


def _levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sqlite-path", default=DEFAULT_SQLITE)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--posts-per-thread", type=int, default=10)
    parser.add_argument(
        "--clients",
        type=_levels,
        default=[8, 16, 32],
        help="levels of concurrency, closed-loop annotators (e.g. 8,16,32)",
    )
    parser.add_argument(
        "--judged-at",
        type=_levels,
        default=[16],
        help="levels whose throughput and p95 ratios are judged against the targets",
    )
    # Each coder codes at every level in turn; 5,000 outlasts 8, 16 and 32 clients.
    parser.add_argument("--units-per-coder", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    # 3 gthread workers of 4 threads gave both sides their best throughput on 2 cores
    # (against 4 sync workers, and 2 of 4 threads).
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument(
        "--rounds", type=int, default=3, help="turns of coding and floor phases, alternating"
    )
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=4,
        help="threads per gunicorn worker (gthread when > 1)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(run_per_database(__file__, build_parser, run_database))
