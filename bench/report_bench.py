"""Report speed beside one raw SQL query doing the same aggregation, same data, same run.

A project of 200,000 thread units, each with a gold label carrying 1 to 9 of 69 codes
(1,000,000 code applications), under 23 categories in 2 groups, dated 2020-2023, is written
with bulk inserts into a throwaway database (a SQLite file under /tmp; with --postgres, also
a throwaway PostgreSQL database). Then, on the gold basis:

(a) frequency: units and applications per code and per parent (a unit counted once per
    parent), shares of units and of applications: ``frequency(read_counts(...))`` beside
    one raw SQL query joining the applications to a code-to-ancestor table;
(b) monthly trend: the same per month, with units per month and shares, beside one raw
    SQL query grouping by code and month.

Each figure is the best of three runs. Target: at most 2x the raw query's time.

Run: .venv/bin/python bench/report_bench.py [--units N] [--postgres URL]
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 2.0
GROUPS, CATEGORIES, LEAVES = 2, 23, 69
RUNS = 3
APPLICATIONS_PER_UNIT = 5


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


def populate(units: int) -> None:
    """The bench project, written with bulk inserts (executemany for the big tables)."""
    from datetime import UTC, datetime, timedelta

    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from coding.models import (
        Code,
        Codebook,
        CodebookVersion,
        ForumSource,
        GoldLabel,
        Project,
        Round,
        Thread,
        Unit,
    )

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(7)
    admin = get_user_model().objects.create_user("bench-admin", password=None)
    version = CodebookVersion.objects.create(
        codebook=Codebook.objects.create(name="Bench"), number=1
    )
    groups = [
        Code.objects.create(version=version, key=f"g{g}", name=f"Group {g}", order=g)
        for g in range(GROUPS)
    ]
    categories = [
        Code.objects.create(
            version=version, key=f"c{c:02d}", name=f"Category {c}", parent=groups[c % GROUPS]
        )
        for c in range(CATEGORIES)
    ]
    leaves = Code.objects.bulk_create(
        Code(version=version, key=f"l{k:02d}", name=f"Code {k}", parent=categories[k % CATEGORIES])
        for k in range(LEAVES)
    )
    project = Project.objects.create(
        name="Bench", slug="bench", codebook_version=version, created_by=admin
    )
    round_ = Round.objects.create(project=project, name="Main")
    source = ForumSource.objects.create(name="Bench", base_url="https://bench.test")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    minutes = rng.integers(0, 4 * 365 * 24 * 60, size=units)
    with transaction.atomic():
        threads = Thread.objects.bulk_create(
            (
                Thread(
                    source=source,
                    external_id=n,
                    title=f"t{n}",
                    created_at=start + timedelta(minutes=int(minutes[n])),
                )
                for n in range(units)
            ),
            batch_size=10_000,
        )
        unit_rows = Unit.objects.bulk_create(
            (
                Unit(project=project, round=round_, thread=t, position=n)
                for n, t in enumerate(threads)
            ),
            batch_size=10_000,
        )
        now = datetime.now(UTC)
        not_relevant = rng.random(units) < 0.03
        gold_table = GoldLabel._meta.db_table
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {gold_table} (unit_id, codebook_version_id, not_relevant, rule, "  # noqa: S608
                "rationale, decided_by_id, decided_at, is_open, revision) "
                "VALUES (%s, %s, %s, 'manual', '', %s, %s, %s, 0)",
                [
                    (u.pk, version.pk, bool(not_relevant[n]), admin.pk, now, False)
                    for n, u in enumerate(unit_rows)
                ],
            )
        gold_ids = list(
            GoldLabel.objects.filter(unit__project=project)
            .order_by("unit_id")
            .values_list("id", "not_relevant")
        )
        # 1 to 9 codes per relevant unit, adjusted so that they add up to 5 per unit:
        # 1,000,000 applications on 200,000 units.
        relevant = np.array([not irrelevant for _, irrelevant in gold_ids])
        sizes = np.where(relevant, rng.integers(1, 10, size=units), 0)
        while (gap := APPLICATIONS_PER_UNIT * units - int(sizes.sum())) != 0:
            room = np.flatnonzero(relevant & ((sizes < 9) if gap > 0 else (sizes > 1)))
            chosen = rng.choice(room, size=min(abs(gap), len(room)), replace=False)
            sizes[chosen] += 1 if gap > 0 else -1
        weights = 1.0 / np.arange(1, LEAVES + 1) ** 0.7
        weights /= weights.sum()
        leaf_ids = np.array([c.pk for c in leaves])
        rows = []
        for (gold_id, irrelevant), size in zip(gold_ids, sizes, strict=True):
            if irrelevant:
                continue
            chosen = rng.choice(LEAVES, size=int(size), replace=False, p=weights)
            rows.extend((gold_id, int(leaf_ids[k])) for k in chosen)
        through = GoldLabel.codes.through._meta.db_table
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {through} (goldlabel_id, code_id) VALUES (%s, %s)",  # noqa: S608
                rows,
            )
    print(json.dumps({"applications": len(rows), "units": units}), file=sys.stderr)


def raw_queries(project, tree_pairs: list[tuple[int, str]], monthly: bool):
    """The same aggregation as one SQL statement: a code-to-ancestor table joined in."""
    from django.db import connection

    from coding.models import GoldLabel, Thread, Unit

    through = GoldLabel.codes.through._meta.db_table
    gold, unit, thread = GoldLabel._meta.db_table, Unit._meta.db_table, Thread._meta.db_table
    values = ", ".join(["(%s, %s)"] * len(tree_pairs))
    params = [p for pair in tree_pairs for p in pair]
    # Table names come from the models; every value is a parameter.
    if connection.vendor == "postgresql":
        month = "to_char(th.created_at AT TIME ZONE 'UTC', 'YYYY-MM')"
        node_map = f"(VALUES {values}) AS m(code_id, node)"
        join = "m.code_id = t.code_id"
    else:
        month = "strftime('%%Y-%%m', th.created_at)"
        node_map = f"(SELECT column1 AS code_id, column2 AS node FROM (VALUES {values})) AS m"  # noqa: S608
        join = "m.code_id = +t.code_id"  # the same join-order hint the reader uses
    by = f", {month}" if monthly else ""
    dated = f"JOIN {thread} th ON th.id = u.thread_id" if monthly else ""
    sql = f"""
        SELECT m.node{by}, COUNT(DISTINCT g.id), COUNT(*)
        FROM {through} t
        JOIN {gold} g ON g.id = t.goldlabel_id
        JOIN {unit} u ON u.id = g.unit_id
        {dated}
        JOIN {node_map} ON {join}
        WHERE u.project_id = %s AND NOT g.is_open AND NOT g.not_relevant
        GROUP BY m.node{by}
        UNION ALL
        SELECT '_units'{by}, COUNT(*), 0
        FROM {gold} g
        JOIN {unit} u ON u.id = g.unit_id
        {dated}
        WHERE u.project_id = %s AND NOT g.is_open AND NOT g.not_relevant
        {"GROUP BY " + month if monthly else ""}
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, project.pk, project.pk])
        return cursor.fetchall()


def measure() -> dict:
    from analysis.reports import Basis, frequency, read_counts, read_tree, trend
    from coding.models import Project

    project = Project.objects.get(slug="bench")
    tree, ids = read_tree(project)
    pairs = [(code_id, node) for code_id, key in ids.items() for node in tree.ancestors(key)]

    def best(ours, raw) -> tuple[float, object, float, object]:
        """Best of RUNS for each, the two taking turns so that load on the machine
        weighs on both alike."""
        times: dict[str, list[float]] = {"ours": [], "raw": []}
        results: dict[str, object] = {}
        for _ in range(RUNS):
            for name, fn in (("ours", ours), ("raw", raw)):
                started = time.perf_counter()
                results[name] = fn()
                times[name].append(time.perf_counter() - started)
        return min(times["ours"]), results["ours"], min(times["raw"]), results["raw"]

    figures = {}
    ours_f, table, raw_f, rows = best(
        lambda: frequency(read_counts(project, Basis("gold"), monthly=False)),
        lambda: raw_queries(project, pairs, monthly=False),
    )
    raw_units = {r[0]: r[1] for r in rows}
    ours_units = dict(zip(table["code"], table["units"], strict=True))
    assert all(ours_units[k] == raw_units.get(k, 0) for k in ours_units), "frequency differs"
    figures["frequency"] = (ours_f, raw_f)
    ours_t, monthly, raw_t, rows = best(
        lambda: trend(read_counts(project, Basis("gold")), "month"),
        lambda: raw_queries(project, pairs, monthly=True),
    )
    raw_cells = {(r[0], r[1]): r[2] for r in rows if r[0] != "_units"}
    ours_cells = {
        (c, p): n
        for c, p, n in zip(monthly["code"], monthly["period"], monthly["count"], strict=True)
        if n
    }
    assert ours_cells == raw_cells, "monthly trend differs"
    figures["monthly trend"] = (ours_t, raw_t)
    applications = int(table.loc[table["depth"] == 0, "applications"].sum())
    return {"figures": figures, "applications": applications}


def child(database: str, units: int) -> None:
    setup_django(database)
    populate(units)
    print(json.dumps(measure()))


def run(database: str, units: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", database, "--units", str(units)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        sys.exit(f"bench on {database} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def postgres_database(url: str, name: str, create: bool) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def report(label: str, result: dict) -> bool:
    ok = True
    print(f"{label}: {result['applications']:,} code applications")
    for name, (ours, raw) in result["figures"].items():
        ratio = ours / raw
        passed = ratio <= TARGET
        ok &= passed
        print(
            f"  {name}: ours {ours:.2f} s, raw SQL {raw:.2f} s, ratio {ratio:.2f} "
            f"(target ≤ {TARGET}) {'ok' if passed else 'MISSED'}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--postgres", metavar="URL", help="also on a throwaway PostgreSQL db")
    parser.add_argument("--child", metavar="DATABASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.units)
        return 0
    ok = True
    with tempfile.TemporaryDirectory(prefix="report_bench_") as tmp:
        ok &= report(f"SQLite, {args.units:,} units", run(f"{tmp}/bench.sqlite3", args.units))
    if args.postgres:
        name = "report_bench"
        database = postgres_database(args.postgres, name, create=True)
        try:
            ok &= report(f"PostgreSQL, {args.units:,} units", run(database, args.units))
        finally:
            postgres_database(args.postgres, name, create=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
