"""Codebook speed beside the raw SQL it cannot avoid, same data, same run.

A throwaway database (a SQLite file under /tmp; with --postgres URL, that database, which
must be empty and disposable) receives the default codebook (86 codes). Then:

(a) load: ``load_codebook --default`` into an empty database (read and validate the file,
    create the codebook, write version 1), beside the floor: the raw SQL a version cannot
    avoid (the version row, then one multi-row INSERT per tree level, ids returned);
(b) edit: one editor save (``apply_edit`` rename: lock, read the latest version, validate,
    write the whole new version and its mapping), beside the same raw floor;
(c) read through mappings: a project whose 20,000 code applications were made against
    version 1, read in version 21 (20 edits later, with merges and splits) by
    ``codings_by_code``, beside one raw SELECT of the (coding, code) pairs and, as the ORM
    peer, the same pairs read through ``values_list``.

Going through the ORM costs more than raw SQL whatever the code does (per-object field
preparation, row construction), so each figure is also measured beside an ORM peer: for (a)
one ``bulk_create`` of the same 86 codes without tree linking, for (b) a read of the 86
codes and that ``bulk_create``, for (c) the pairs read
with ``values_list``. Each figure is the best of three runs. Targets: at most 3x the ORM
peer (the raw floor is printed beside it).

Run: .venv/bin/python bench/codebook_bench.py [--postgres URL]
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
APPLICATIONS = 20_000
TARGETS = {"load": 3.0, "edit": 3.0, "read": 3.0}


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


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


CODE_COLUMNS = (
    "version_id, key, parent_id, name, definition, when_to_use, when_not_to_use, examples, "
    'color, shortcut, "order", active, codable'
)


def raw_write_version(codebook_id: int, number: int, nodes) -> None:
    """The statements a new version cannot avoid, in raw SQL: the version row, then the
    codes one tree level per INSERT (a child needs its parent's id), ids returned."""
    import json

    from django.db import connection, transaction
    from django.utils import timezone

    depth: dict[str, int] = {}
    for node in nodes:
        depth[node.key] = depth[node.parent] + 1 if node.parent else 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO coding_codebookversion (codebook_id, number, note, changes, created_at) "
            "VALUES (%s, %s, '', '[]', %s) RETURNING id",
            [codebook_id, number, timezone.now()],
        )
        version_id = cursor.fetchone()[0]
        ids: dict[str, int] = {}
        for level in sorted(set(depth.values())):
            rows = [
                (
                    version_id,
                    n.key,
                    ids.get(n.parent),
                    n.name,
                    n.definition,
                    n.when_to_use,
                    n.when_not_to_use,
                    json.dumps(n.examples),
                    n.color,
                    n.shortcut,
                    i,
                    n.active,
                    n.codable,
                )
                for i, n in enumerate(nodes)
                if depth[n.key] == level
            ]
            marks = ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(rows))
            sql = f"INSERT INTO coding_code ({CODE_COLUMNS}) VALUES {marks} RETURNING id, key"  # noqa: S608
            cursor.execute(sql, [v for row in rows for v in row])
            ids.update({key: pk for pk, key in cursor.fetchall()})


def orm_peer(version, nodes) -> None:
    """The ORM's cheapest write of the same codes: one ``bulk_create``, no tree linking."""
    from django.db import transaction

    from coding.models import Code

    with transaction.atomic():
        Code.objects.bulk_create(
            Code(
                version=version,
                key=f"peer.{n.key}",
                name=n.name,
                definition=n.definition,
                examples=n.examples,
                color=n.color,
                order=i,
                codable=n.codable,
            )
            for i, n in enumerate(nodes)
        )


def orm_read_write_peer(version, nodes) -> None:
    """What an edit cannot avoid through the ORM: read the tree, write the codes again."""
    list(version.codes.all())
    orm_peer(version, nodes)


def discard_version(codebook_id: int, number: int) -> None:
    from coding.models import Code, CodebookVersion

    Code.objects.filter(key__startswith="peer.").delete()
    Code.objects.filter(version__codebook_id=codebook_id, version__number=number).delete()
    CodebookVersion.objects.filter(codebook_id=codebook_id, number=number).delete()


def run_bench() -> bool:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from coding.codebook import apply_edit, codings_by_code, load_nodes
    from coding.codebook_io import DEFAULT_CODEBOOK, load_default, read_file
    from coding.models import (
        Code,
        CodeApplication,
        Codebook,
        Coding,
        ForumSource,
        Project,
        Round,
        Thread,
        Unit,
    )

    call_command("migrate", verbosity=0)
    default_nodes = read_file(DEFAULT_CODEBOOK)[2]
    figures: dict[str, tuple[float, float, float | None]] = {}

    # (a) load into an empty database, three times.
    loads, floors, peers = [], [], []
    for _ in range(RUNS):
        Codebook.objects.all().delete()
        loads.append(timed(load_default))
        book = Codebook.objects.get()
        floors.append(timed(lambda book=book: raw_write_version(book.pk, 99, default_nodes)))
        peers.append(timed(lambda book=book: orm_peer(book.latest_version(), default_nodes)))
        discard_version(book.pk, 99)
    figures["load"] = (min(loads), min(floors), min(peers))

    # (b) editor saves.
    codebook = Codebook.objects.get()
    edits, floors, peers = [], [], []
    for run in range(RUNS):
        base = codebook.latest_version().number
        edits.append(
            timed(
                lambda base=base, run=run: apply_edit(
                    codebook, "rename", base=base, key="challenges.spaces", name=f"Spaces {run}"
                )
            )
        )
        floors.append(timed(lambda: raw_write_version(codebook.pk, 99, default_nodes)))
        peers.append(timed(lambda: orm_read_write_peer(codebook.latest_version(), default_nodes)))
        discard_version(codebook.pk, 99)
    figures["edit"] = (min(edits), min(floors), min(peers))

    # (c) a project coded against the first version, read 20 versions later.
    name, description, nodes = read_file(DEFAULT_CODEBOOK)
    codebook = load_nodes("Read bench", description, nodes)[0]
    first = codebook.latest_version()
    user = get_user_model().objects.create_user("bench")
    project = Project.objects.create(name="Bench", slug="bench", created_by=user)
    project.codebook_version = first
    project.save()
    round_ = Round.objects.create(project=project, name="main")
    source = ForumSource.objects.create(name="bench", base_url="https://bench.test")
    from datetime import UTC, datetime

    created = datetime(2022, 1, 1, tzinfo=UTC)
    leaves = list(first.codes.filter(codable=True).values_list("pk", flat=True))
    units = APPLICATIONS // 2
    Thread.objects.bulk_create(
        Thread(source=source, external_id=i, title=f"t{i}", created_at=created)
        for i in range(units)
    )
    threads = list(Thread.objects.values_list("pk", flat=True))
    Unit.objects.bulk_create(Unit(project=project, round=round_, thread_id=t) for t in threads)
    unit_ids = list(Unit.objects.values_list("pk", flat=True))
    Coding.objects.bulk_create(
        Coding(unit_id=u, coder=user, codebook_version=first) for u in unit_ids
    )
    coding_ids = list(Coding.objects.values_list("pk", flat=True))
    CodeApplication.objects.bulk_create(
        CodeApplication(coding_id=c, code_id=leaves[(i + k) % len(leaves)])
        for i, c in enumerate(coding_ids)
        for k in (0, 17)
    )
    keys = [k for k in first.codes.filter(codable=True).values_list("key", flat=True)]
    for step in range(20):
        base = codebook.latest_version().number
        if step % 4 == 0:
            apply_edit(codebook, "merge", base=base, keys=[keys[step]], into=keys[step + 1])
        elif step % 4 == 1:
            apply_edit(codebook, "split", base=base, key=keys[step + 1], names=["A x", "B x"])
        else:
            apply_edit(codebook, "rename", base=base, key=keys[30 + step], name=f"R {step}")
    project.codebook_version = codebook.latest_version()
    project.save()
    reads, floors, peers, rows = [], [], [], []
    for _ in range(RUNS):
        reads.append(timed(lambda: rows.append(codings_by_code(project))))

        def floor() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT a.coding_id, a.code_id FROM coding_codeapplication a "
                    "JOIN coding_coding c ON c.id = a.coding_id "
                    "JOIN coding_unit u ON u.id = c.unit_id WHERE u.project_id = %s",
                    [project.pk],
                )
                cursor.fetchall()

        floors.append(timed(floor))
        peers.append(
            timed(
                lambda: list(
                    CodeApplication.objects.filter(coding__unit__project=project).values_list(
                        "coding_id", "code_id"
                    )
                )
            )
        )
    figures["read"] = (min(reads), min(floors), min(peers))
    assert Code.objects.filter(version=first).count() == 86
    assert sum(r["codings"] for r in rows[-1]) >= units

    ok = True
    print(f"codebook bench on {connection.vendor} (best of {RUNS})")
    labels = {
        "load": "load_codebook --default (86 codes)",
        "edit": "one editor save (new version of 86 codes)",
        "read": f"read {APPLICATIONS:,} applications 20 versions later",
    }
    for name, (measured, floor, peer) in figures.items():
        base = peer if peer is not None else floor
        ratio = measured / base if base else float("inf")
        passed = ratio <= TARGETS[name]
        ok &= passed
        versus = f"ORM peer {peer * 1000:6.1f} ms" if peer is not None else "floor"
        print(
            f"  {labels[name]:<46} {measured * 1000:7.1f} ms  raw floor {floor * 1000:6.1f} ms  "
            f"ratio {ratio:4.1f}x vs {versus} (target <= {TARGETS[name]:.0f}x) "
            f"{'ok' if passed else 'MISSED'}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a disposable, empty PostgreSQL database URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        setup_django(args.postgres or str(Path(folder) / "bench.sqlite3"))
        return 0 if run_bench() else 1


if __name__ == "__main__":
    sys.exit(main())
