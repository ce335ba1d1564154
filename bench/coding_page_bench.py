"""The coding page in a browser: bytes over the wire and time until a code can be ticked.

For each corpus size (1,000 and 100,000 threads by default) this script

1. builds the synthetic corpus into a throwaway SQLite file with make_synthetic_corpus
   (skipped when the file already holds it; the 100,000-thread file is the one
   bench/coding_bench.py uses),
2. adds one thread of 200 posts copied from the corpus (so their sizes are the
   generator's: paragraphs, code blocks, quotes), a project on the default codebook
   (86 codes) and an annotator whose queue holds that thread,
3. serves the product with gunicorn (bench/coding_settings.py, DEBUG off),
4. opens the unit in headless Chromium (Debian's /usr/bin/chromium through Playwright),
   each time in a fresh browser context (empty cache), and records
   - the bytes of every response of the navigation (document, CSS, scripts), raw and
     gzip-compressed as the reverse proxy sends them (deploy/Caddyfile.example: `encode
     gzip`; whitenoise serves the static files pre-compressed in production),
   - the time from navigation start to the `coding-ready` mark coding.js sets once the
     checkboxes and keys work, checking that a code checkbox is then enabled.
   The floor, in the same browser and server: the time to load /healthz.

Targets: under 150 KB compressed and usable in under 500 ms (median of the runs) at every
size, and flat: the largest size within 1.05x of the smallest in bytes and 1.5x in time.
Exits non-zero when a target is missed.

    .venv/bin/python bench/coding_page_bench.py [--sizes 1000,100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
PASSWORD = "bench-password-not-secret-2"
POSTS = 200
BYTES_TARGET = 150 * 1024
TIME_TARGET_MS = 500
FLAT_BYTES, FLAT_TIME = 1.05, 1.5


def _env(path: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-" + "y" * 40,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "bench.coding_settings",
            "SQLITE_PATH": path,
        }
    )
    return env


def _manage(env: dict[str, str], *command: str, capture: bool = False) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *command],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=capture,
        text=True,
    )
    return done.stdout if capture else ""


def build(env: dict[str, str], threads: int) -> None:
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "createcachetable")
    count = _manage(
        env,
        "shell",
        "-c",
        "from coding.models import Thread; print(Thread.objects.count())",
        capture=True,
    )
    if int(count.strip().splitlines()[-1]) >= threads:
        return
    print(f"  building {threads} threads x 10 posts ...", flush=True)
    _manage(env, "make_synthetic_corpus", "--threads", str(threads), "--posts-per-thread", "10")


def setup() -> dict:
    """The long thread, a project on the default codebook and an annotator (this process
    has Django set up for one corpus)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from coding.models import (
        Assignment,
        CodebookVersion,
        ForumSource,
        Membership,
        Post,
        Project,
        Role,
        Round,
        Thread,
        Unit,
    )

    name = json.loads((ROOT / "coding" / "default_codebook.json").read_text())["name"]
    call_command("load_codebook", "--default", stdout=open(os.devnull, "w"))  # noqa: SIM115
    version = CodebookVersion.objects.filter(codebook__name=name).order_by("-number").first()
    stamp = time.strftime("%Y%m%d%H%M%S")
    with transaction.atomic():
        source, _ = ForumSource.objects.get_or_create(
            name="Page bench", defaults={"base_url": "https://page-bench.example.org"}
        )
        thread = Thread.objects.filter(source=source, external_id=1).first()
        if thread is None:
            thread = Thread.objects.create(
                source=source,
                external_id=1,
                title="A long thread of 200 posts",
                category="Beginners",
                created_at=timezone.now(),
                posts_count=POSTS,
            )
            # Posts from across the corpus, so their lengths are the generator's own mix.
            ids = list(Post.objects.order_by().values_list("id", flat=True)[: POSTS * 50 : 50])
            originals = Post.objects.in_bulk(ids)
            Post.objects.bulk_create(
                Post(
                    thread=thread,
                    external_id=n,
                    post_number=n,
                    author=original.author,
                    created_at=original.created_at,
                    html=original.html,
                    plain_text=original.plain_text,
                    content_hash=original.content_hash,
                )
                for n, original in enumerate((originals[i] for i in ids), start=1)
            )
        user = get_user_model().objects.create_user(f"page-{stamp}", password=PASSWORD)
        project = Project.objects.create(
            name=f"Page bench {stamp}",
            slug=f"page-bench-{stamp}",
            codebook_version=version,
            created_by=user,
        )
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
        round_ = Round.objects.create(project=project, name="Main")
        unit = Unit.objects.create(project=project, round=round_, thread=thread, position=0)
        Assignment.objects.create(unit=unit, coder=user)
    posts = Post.objects.filter(thread=thread).count()
    return {"user": user.username, "url": f"/projects/{project.slug}/units/{unit.pk}/code/"} | {
        "posts": posts
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


def measure(base: str, plan: dict, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", plan["user"])
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        state = context.storage_state()
        context.close()

        times, floors, raw, packed = [], [], [], []
        for n in range(runs + 1):  # the first run warms the server and is not counted
            context = browser.new_context(storage_state=state)
            page = context.new_page()
            responses = []
            page.on("response", lambda response, seen=responses: seen.append(response))
            page.goto(base + plan["url"], wait_until="load")
            ready = page.wait_for_function(
                "() => performance.getEntriesByName('coding-ready')[0]?.startTime",
                timeout=30_000,
            ).json_value()
            if not page.locator("input[name=code]:not([disabled])").first.is_enabled():
                raise SystemExit("the first code checkbox is not usable")
            sizes = [0, 0]
            for response in responses:
                body = response.body()
                encoded = response.headers.get("content-encoding")
                sizes[0] += len(body)
                sizes[1] += len(body) if encoded else len(gzip.compress(body, 6))
            page.goto(f"{base}/healthz", wait_until="load")
            floor = page.evaluate(
                "() => performance.getEntriesByType('navigation')[0].loadEventEnd"
            )
            context.close()
            if n:
                times.append(ready)
                floors.append(floor)
                raw.append(sizes[0])
                packed.append(sizes[1])
        browser.close()
    return {
        "ready_ms": statistics.median(times),
        "floor_ms": statistics.median(floors),
        "raw_bytes": statistics.median(raw),
        "gzip_bytes": statistics.median(packed),
        "requests": len(responses),
    }


def run_size(threads: int, path: str, runs: int) -> dict:
    env = _env(path)
    build(env, threads)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    plan = setup()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(GUNICORN, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"),
            *("--access-logfile", "/dev/null", "--error-logfile", "-", "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        _wait_up(base, server)
        result = measure(base, plan, runs)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return result | {"threads": threads, "posts": plan["posts"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="corpus sizes in threads")
    parser.add_argument("--runs", type=int, default=7, help="page loads per size")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="THREADS=FILE",
        help="the SQLite file of a size (default /tmp/coding_page_bench_THREADS.sqlite3; "
        "100000 uses bench/coding_bench.py's /tmp/coding_bench.sqlite3)",
    )
    parser.add_argument("--single", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:  # one size in this interpreter: Django is set up once per database
        print("RESULT " + json.dumps(run_size(int(args.single[0]), args.single[1], args.runs)))
        return 0
    paths = {100_000: "/tmp/coding_bench.sqlite3"}
    paths.update({int(k): v for k, v in (p.split("=", 1) for p in args.path)})
    results = []
    for threads in [int(s) for s in args.sizes.split(",")]:
        path = paths.get(threads, f"/tmp/coding_page_bench_{threads}.sqlite3")
        print(f"== {threads} threads ({path}) ==", flush=True)
        child = subprocess.run(
            [PYTHON, __file__, "--runs", str(args.runs), "--single", str(threads), path],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
        )
        if child.returncode:
            sys.exit(f"the {threads}-thread run failed:\n{child.stderr[-3000:]}")
        line = next(x for x in child.stdout.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    ok = True
    for r in results:
        size_ok = r["gzip_bytes"] < BYTES_TARGET
        time_ok = r["ready_ms"] < TIME_TARGET_MS
        ok = ok and size_ok and time_ok
        print(
            f"  {r['threads']} threads, a thread of {r['posts']} posts, {r['requests']} "
            f"requests: {r['raw_bytes'] / 1024:.1f} KB raw, {r['gzip_bytes'] / 1024:.1f} KB "
            f"gzip; usable after {r['ready_ms']:.0f} ms (floor /healthz {r['floor_ms']:.0f} ms)"
        )
        tag = f"threads={r['threads']}"
        print(
            f"FIGURE name=coding_page_bytes_gzip[{tag}] value={r['gzip_bytes'] / 1024:.1f}KB "
            f"floor=- ratio=- target=<150KB ok={'yes' if size_ok else 'no'}"
        )
        print(
            f"FIGURE name=coding_page_ready[{tag}] value={r['ready_ms']:.0f}ms "
            f"floor={r['floor_ms']:.0f}ms ratio={r['ready_ms'] / max(r['floor_ms'], 1):.1f} "
            f"target=<500ms ok={'yes' if time_ok else 'no'}"
        )
    if len(results) > 1:
        small, large = results[0], results[-1]
        bytes_ratio = large["gzip_bytes"] / small["gzip_bytes"]
        time_ratio = large["ready_ms"] / small["ready_ms"]
        flat = bytes_ratio <= FLAT_BYTES and time_ratio <= FLAT_TIME
        ok = ok and flat
        print(
            f"FIGURE name=coding_page_flat_bytes value={large['gzip_bytes'] / 1024:.1f}KB "
            f"floor={small['gzip_bytes'] / 1024:.1f}KB ratio={bytes_ratio:.2f} "
            f"target=<={FLAT_BYTES} ok={'yes' if bytes_ratio <= FLAT_BYTES else 'no'}"
        )
        print(
            f"FIGURE name=coding_page_flat_time value={large['ready_ms']:.0f}ms "
            f"floor={small['ready_ms']:.0f}ms ratio={time_ratio:.2f} "
            f"target=<={FLAT_TIME} ok={'yes' if time_ratio <= FLAT_TIME else 'no'}"
        )
    print("all targets met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
