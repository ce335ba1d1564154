"""Sampling and progress speed beside the raw SQL they cannot avoid, same data, same run.

A corpus of 11,175 threads (the study's population) is written into a throwaway database
(a SQLite file under /tmp; with --postgres, a throwaway PostgreSQL database). Then:

(a) sampling: ``draw_round`` + ``assign_units`` drawing 372 units (95 %, 5 points) and
    assigning each to K = 2 of 3 annotators, beside the floor: one raw query reading the
    population's ids and two raw multi-row INSERTs of the same units and assignments;
(b) progress: the project page's figures (totals, per annotator, per round) and the
    project list's (per project, the user's own) on a project of all 11,175 threads,
    each assigned to 2 of 3 coders (22,350 assignments, 10,000 done), beside the same
    figures and rows from hand-written SQL (same GROUP BYs): the ratio is what the ORM
    and the Python around it add;
(c) assignment at scale: ``assign_units`` giving each of 25,000 sampled units to 2 of 3
    annotators (50,000 assignments in one transaction, about 16,700 per coder), beside
    the same at 5,000 units: the time per assignment, whose ratio shows whether the cost
    of writing a queue grows with its length (the corpus grows to 25,000 threads first).

Each figure is the best of three runs. Targets: (a) at most 5x its floor, (b) at most 2x,
(c) at most 1.5x.

Run: .venv/bin/python bench/sampling_bench.py [--db sqlite|postgres|both] [--postgres URL]
(both by default, each in its own process). Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POPULATION = 11_175
RUNS = 3
TARGETS = {"sampling": 5.0, "progress": 2.0, "assigning": 1.5}
SCALE = (5_000, 25_000)  # units of the small and the large project of (c)


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


def best(fn, setup=None) -> float:
    times = []
    for run in range(RUNS):
        state = setup(run) if setup else None
        started = time.perf_counter()
        fn(state)
        times.append(time.perf_counter() - started)
    return min(times)


def insert_rows(cursor, head: str, rows: list[tuple], batch: int = 1000) -> None:
    """``head`` (``INSERT INTO t (a, b)``) with ``rows``: one multi-row INSERT per batch,
    as ``bulk_create`` writes them."""
    from coding.statements import placeholders

    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        cursor.execute(
            f"{head} VALUES {placeholders(len(part), len(part[0]))}",
            [value for row in part for value in row],
        )


def run_bench() -> bool:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from coding.assignment import assign_units
    from coding.models import Assignment, Membership, Project, Role, Round, Unit
    from coding.models.projects import queue_rank
    from coding.progress import memberships_with_progress, project_progress, start_of_today
    from coding.sampling import draw_round, sample_size
    from coding.synthetic import make_corpus

    call_command("migrate", verbosity=0)
    make_corpus(POPULATION, 1, seed=1)
    User = get_user_model()
    lead = User.objects.create_user("bench-lead", password=None)
    coders = [User.objects.create_user(f"bench-coder{i}", password=None) for i in range(3)]
    n = sample_size(POPULATION, 0.95, 0.05)

    def new_project(run: int) -> Project:
        project = Project.objects.create(
            name=f"Bench {run}", slug=f"bench-{run}", created_by=lead, coders_per_unit=2
        )
        Membership.objects.create(project=project, user=lead, role=Role.ADMIN)
        for coder in coders:
            Membership.objects.create(project=project, user=coder, role=Role.ANNOTATOR)
        return project

    def sample(project: Project) -> None:
        result = draw_round(project, seed=42)
        assign_units(project)
        assert result.sampled == n, result.sampled

    unit_table = connection.ops.quote_name(Unit._meta.db_table)
    membership_table = connection.ops.quote_name(Membership._meta.db_table)
    user_table = connection.ops.quote_name(User._meta.db_table)
    round_table = connection.ops.quote_name(Round._meta.db_table)
    project_table = connection.ops.quote_name(Project._meta.db_table)
    assignment_table = connection.ops.quote_name(Assignment._meta.db_table)
    order = connection.ops.quote_name("order")

    def floor_project(run: int) -> Project:
        project = new_project(100 + run)
        project.rounds.create(name="main", seed=42)
        return project

    def floor(project: Project) -> None:
        round_id = project.rounds.get().pk
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM coding_thread ORDER BY id")
            ids = [row[0] for row in cursor.fetchall()][:n]
            insert_rows(
                cursor,
                f"INSERT INTO {unit_table} (project_id, round_id, thread_id, position, shared,"
                " created_at)",
                [(project.pk, round_id, t, i, True, now) for i, t in enumerate(ids)],
            )
            cursor.execute(
                f"SELECT u.id, r.{order}, u.position FROM {unit_table} u"  # noqa: S608
                f" JOIN {round_table} r ON r.id = u.round_id WHERE u.project_id = %s",
                [project.pk],
            )
            units = cursor.fetchall()
            insert_rows(
                cursor,
                f"INSERT INTO {assignment_table} (unit_id, coder_id, project_id, queue_rank,"
                " status, assigned_at)",
                [
                    (u, coders[(i + j) % 3].pk, project.pk, queue_rank(o, p), "pending", now)
                    for i, (u, o, p) in enumerate(units)
                    for j in (0, 1)
                ],
            )

    sampling = best(sample, new_project)
    sampling_floor = best(floor, floor_project)

    big = new_project(999)
    draw_round(big, size=POPULATION, seed=1)
    assign_units(big)
    Assignment.objects.filter(unit__project=big, unit__position__lte=POPULATION // 2).update(
        status="done", completed_at=timezone.now()
    )

    def progress(_state) -> None:
        project_progress(big)
        memberships_with_progress(coders[0])

    def progress_floor(_state) -> None:
        """The same figures from hand-written SQL: what the ORM and Python add is the cost."""
        today = start_of_today()
        counts = (
            "COUNT(*) FILTER (WHERE a.status IN ('pending', 'done')),"
            " COUNT(*) FILTER (WHERE a.status = 'done'),"
            " COUNT(*) FILTER (WHERE a.status = 'done' AND a.completed_at >= %s)"
        )
        joined = f"FROM {assignment_table} a JOIN {unit_table} u ON u.id = a.unit_id"
        own = counts.replace("WHERE", "WHERE a.coder_id = %s AND")
        me = coders[0].pk
        queries = [
            (
                f"SELECT a.coder_id, u.round_id, {counts} {joined}"
                " WHERE u.project_id = %s GROUP BY a.coder_id, u.round_id",
                [today, big.pk],
            ),
            (
                "SELECT round_id, COUNT(*), COUNT(*) FILTER (WHERE shared)"  # noqa: S608
                f" FROM {unit_table} WHERE project_id = %s GROUP BY round_id",
                [big.pk],
            ),
            (
                f"SELECT u.project_id, {counts}, {own} {joined}"
                " WHERE u.project_id = %s GROUP BY u.project_id",
                [today, me, me, me, today, big.pk],
            ),
            (
                f"SELECT project_id, COUNT(*) FROM {unit_table}"  # noqa: S608
                " WHERE project_id = %s GROUP BY project_id",
                [big.pk],
            ),
            # The rows the figures belong to: members, rounds, the user's projects.
            (
                f"SELECT m.*, usr.* FROM {membership_table} m"  # noqa: S608
                f" JOIN {user_table} usr ON usr.id = m.user_id WHERE m.project_id = %s",
                [big.pk],
            ),
            (f"SELECT * FROM {round_table} WHERE project_id = %s", [big.pk]),  # noqa: S608
            (
                f"SELECT m.*, p.* FROM {membership_table} m"  # noqa: S608
                f" JOIN {project_table} p ON p.id = m.project_id WHERE m.user_id = %s",
                [me],
            ),
        ]
        with connection.cursor() as cursor:
            for sql, params in queries:
                cursor.execute(sql, params)
                cursor.fetchall()

    progress_time = best(progress)
    progress_floor_time = best(progress_floor)

    make_corpus(SCALE[1] - POPULATION, 1, seed=2)
    per_assignment = {}
    for units in SCALE:

        def drawn(run: int, units: int = units) -> Project:
            project = new_project(1000 * units + run)
            draw_round(project, size=units, seed=run)
            return project

        def assign(project: Project, units: int = units) -> None:
            result = assign_units(project)
            assert result.assigned == 2 * units, result

        per_assignment[units] = best(assign, drawn) / (2 * units)

    ok = True
    for name, value, base in [
        ("sampling", sampling, sampling_floor),
        ("progress", progress_time, progress_floor_time),
    ]:
        ratio = value / base
        passed = ratio <= TARGETS[name]
        ok &= passed
        print(
            f"{connection.vendor:10} {name:9} {value * 1000:8.1f} ms  floor {base * 1000:8.1f} ms"
            f"  ratio {ratio:5.2f} (target <= {TARGETS[name]:g})  {'ok' if passed else 'MISSED'}"
        )
    small, large = SCALE
    ratio = per_assignment[large] / per_assignment[small]
    passed = ratio <= TARGETS["assigning"]
    ok &= passed
    print(
        f"{connection.vendor:10} assigning {per_assignment[large] * 1e6:8.1f} us per assignment"
        f" at {large:,} units, {per_assignment[small] * 1e6:.1f} us at {small:,}"
        f"  ratio {ratio:5.2f} (target <= {TARGETS['assigning']:g})  {'ok' if passed else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL whose server may create a throwaway database",
    )
    args = parser.parse_args()
    if args.db == "both":
        failed = 0
        for db in ("sqlite", "postgres"):
            command = [sys.executable, __file__, "--db", db, "--postgres", args.postgres]
            failed |= subprocess.run(command, check=False).returncode
        return 1 if failed else 0
    if args.db == "postgres":
        import psycopg

        base, _, _name = args.postgres.rpartition("/")
        name = f"sampling_bench_{os.getpid()}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            setup_django(f"{base}/{name}")
            ok = run_bench()
            from django.db import connections

            connections.close_all()
        finally:
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return 0 if ok else 1
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        return 0 if run_bench() else 1


if __name__ == "__main__":
    sys.exit(main())
