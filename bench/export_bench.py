"""Export speed and memory: the long CSV of 1,000,000 rows streamed over HTTP.

Builds a throwaway SQLite database (200,000 submitted codings, five codes each, so
1,000,000 long rows), serves the app with gunicorn, downloads the long export with
streaming, and reports rows per second and the web worker's peak memory growth.
Beside it, in the same run and on the same database, pandas reads the same rows
(read_sql of the equivalent join) and writes them with to_csv: the floor.

Targets (issue 10): at least 0.5x pandas' rows per second, memory growth under 150 MB.

    .venv/bin/python bench/export_bench.py [--units 100000] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def build(db: Path, units: int, codes_per_coding: int) -> None:
    env = {**os.environ, "SQLITE_PATH": str(db), "DEBUG": "1"}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([py, "manage.py", "createcachetable"], cwd=ROOT, env=env, check=True)
    corpus = ["make_synthetic_corpus", "--threads", str(units), "--posts-per-thread", "1"]
    subprocess.run(
        [py, "manage.py", *corpus], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from coding.models import Code, Codebook, CodebookVersion, Membership, Project, Round, Thread

    User = get_user_model()
    admin = User.objects.create_user("bench-admin", password="bench-password-1")
    coders = [User.objects.create_user(f"coder{n}", password="x-bench-pass-1") for n in (1, 2)]
    codebook = Codebook.objects.create(name="Bench codebook")
    version = CodebookVersion.objects.create(codebook=codebook, number=1)
    group = Code.objects.create(version=version, key="g", name="Group", codable=False)
    codes = [
        Code.objects.create(version=version, key=f"c{n}", name=f"Code {n}", parent=group, order=n)
        for n in range(69)
    ]
    project = Project.objects.create(
        name="Bench", slug="bench", created_by=admin, codebook_version=version
    )
    Membership.objects.create(project=project, user=admin, role="admin")
    for coder in coders:
        Membership.objects.create(project=project, user=coder, role="annotator")
    round_ = Round.objects.create(project=project, name="Main")
    rng = random.Random(1)
    thread_ids = list(Thread.objects.order_by("pk").values_list("pk", flat=True)[:units])
    now = "2024-01-01 00:00:00"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO coding_unit (project_id, round_id, thread_id, post_id, position, shared,"
            " created_at) VALUES (%s, %s, %s, NULL, %s, 1, %s)",
            [(project.pk, round_.pk, t, n, now) for n, t in enumerate(thread_ids)],
        )
        cursor.execute("SELECT id FROM coding_unit WHERE project_id = %s ORDER BY id", [project.pk])
        unit_ids = [r[0] for r in cursor.fetchall()]
        cursor.executemany(
            "INSERT INTO coding_coding (unit_id, coder_id, codebook_version_id, status,"
            " not_relevant, unsure, memo, revision, created_at, updated_at, submitted_at)"
            " VALUES (%s, %s, %s, 'submitted', 0, 0, %s, 1, %s, %s, %s)",
            [
                (u, c.pk, version.pk, "=memo" if u % 97 == 0 else "", now, now, now)
                for u in unit_ids
                for c in coders
            ],
        )
        cursor.execute("SELECT id FROM coding_coding ORDER BY id")
        coding_ids = [r[0] for r in cursor.fetchall()]
        cursor.executemany(
            "INSERT INTO coding_codeapplication (coding_id, code_id, created_at)"
            " VALUES (%s, %s, %s)",
            [
                (coding, code.pk, now)
                for coding in coding_ids
                for code in rng.sample(codes, codes_per_coding)
            ],
        )


PANDAS_SQL = """
SELECT c.unit_id AS unit, u.username AS coder, code.key AS code, s.name AS source,
       t.external_id AS thread_id, t.url AS thread_url, t.category, t.created_at,
       code.name AS code_path, v.number AS codebook_version, r.name AS round,
       c.not_relevant, c.unsure, c.memo, c.submitted_at AS coded_at
FROM coding_codeapplication a
JOIN coding_coding c ON c.id = a.coding_id
JOIN auth_user u ON u.id = c.coder_id
JOIN coding_code code ON code.id = a.code_id
JOIN coding_unit un ON un.id = c.unit_id
JOIN coding_thread t ON t.id = un.thread_id
JOIN coding_forumsource s ON s.id = t.source_id
JOIN coding_codebookversion v ON v.id = c.codebook_version_id
JOIN coding_round r ON r.id = un.round_id
ORDER BY c.id
"""


def pandas_floor(db: Path) -> tuple[float, int, float]:
    """Rows/s and peak memory (MB) of pandas read_sql + to_csv, in a child process."""
    code = f"""
import sqlite3, time, resource, pandas as pd
start = time.perf_counter()
con = sqlite3.connect({str(db)!r})
frame = pd.read_sql({PANDAS_SQL!r}, con)
frame.to_csv("/dev/null", index=False)
elapsed = time.perf_counter() - start
print(len(frame), elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rows, elapsed, peak_kb = out.stdout.split()
    return int(rows) / float(elapsed), int(rows), int(peak_kb) / 1024


def http_export(db: Path) -> tuple[float, int, float, float]:
    import requests

    from bench._common import csrf_token

    port = free_port()
    env = {**os.environ, "SQLITE_PATH": str(db), "DEBUG": "1"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--timeout", "600"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        session = requests.Session()
        for _ in range(100):
            try:
                session.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.5)
        page = session.get(f"http://127.0.0.1:{port}/accounts/login/")
        token = csrf_token(page.text)
        session.post(
            f"http://127.0.0.1:{port}/accounts/login/",
            data={"username": "bench-admin", "password": "bench-password-1",
                  "csrfmiddlewaretoken": token},
            headers={"Referer": page.url},
        )  # fmt: skip
        worker = int(
            subprocess.run(
                ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
            ).stdout.split()[0]
        )
        before = rss_kb(worker)
        start = time.perf_counter()
        lines = 0
        with session.get(
            f"http://127.0.0.1:{port}/projects/bench/exports/long/", stream=True, timeout=600
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=1 << 16):
                lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - start
        growth = (rss_peak_kb(worker) - before) / 1024
        rows = lines - 1
        return rows / elapsed, rows, growth, elapsed
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--codes-per-coding", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="export-bench-"))
    db = folder / "bench.sqlite3"
    started = time.perf_counter()
    build(db, args.units, args.codes_per_coding)
    print(f"built {db} in {time.perf_counter() - started:.0f} s")
    ours, rows, growth, elapsed = http_export(db)
    floor, floor_rows, floor_peak = pandas_floor(db)
    ratio = ours / floor
    print(f"long export over HTTP: {rows:,} rows in {elapsed:.1f} s = {ours:,.0f} rows/s")
    print(
        f"pandas read_sql + to_csv: {floor_rows:,} rows = {floor:,.0f} rows/s "
        f"(peak {floor_peak:.0f} MB)"
    )
    print(f"ratio ours/pandas: {ratio:.2f} (target >= 0.5)")
    print(f"web worker memory growth: {growth:.0f} MB (target < 150 MB)")
    if not args.keep:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    ok = ratio >= 0.5 and growth < 150 and rows == floor_rows
    if rows != floor_rows:
        print(f"row counts differ: {rows} vs {floor_rows}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
