"""What the load benchmarks share: the environment of one database, the cached corpus,
gunicorn, logging in, a shared start for closed-loop clients, percentiles, memory from
/proc and the FIGURE lines that bench/run_all.py collects."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
# The corpus the load benchmarks share (written once, kept between runs).
DEFAULT_SQLITE = "/tmp/bench_corpus.sqlite3"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_corpus"


# One database ------------------------------------------------------------------------


def env_for(db: str, sqlite_path: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of the product on one database, DEBUG off, on
    bench/coding_settings.py (the product's settings plus the one-insert floor view)."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "bench.coding_settings",
        }
    )
    if db == "sqlite":
        env["SQLITE_PATH"] = sqlite_path
    else:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Set this process up for the database of ``env`` (once per process)."""
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def manage(env: dict[str, str], *command: str, capture: bool = False) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *command],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=capture,
        text=True,
    )
    return done.stdout if capture else ""


def ensure_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def build_corpus(env: dict[str, str], threads: int, posts_per_thread: int) -> None:
    """Migrate, then write the synthetic corpus with make_synthetic_corpus unless the
    database already holds that many threads (the corpus is kept between runs); on
    PostgreSQL, vacuum and analyze the database each time (``settle_postgres``)."""
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "createcachetable")
    code = "from coding.models import Thread; print(Thread.objects.count())"
    count = int(manage(env, "shell", "-c", code, capture=True).strip().splitlines()[-1])
    if count >= threads:
        print(f"  corpus present: {count} threads", flush=True)
    else:
        print(
            f"  building the corpus: {threads} threads x {posts_per_thread} posts ...", flush=True
        )
        manage(
            env,
            "make_synthetic_corpus",
            "--threads",
            str(threads),
            "--posts-per-thread",
            str(posts_per_thread),
            "--seed",
            "1",
        )
    settle_postgres(env)


def settle_postgres(env: dict[str, str]) -> None:
    """On PostgreSQL, what autovacuum does on a server after a bulk write, for a server
    that runs without it (as one set up for CI does): every table's statistics, so the
    planner knows the corpus's sizes, and its visibility map and hint bits, so the first
    reader of each page does not set them. Without them a thread's posts were read with a
    plan made for thousands of rows (a bitmap scan), and an open-and-save pair of the
    coding screen cost the database about 0.7 ms more CPU. A few seconds each run."""
    url = env.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


# Processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(base: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited before it served a request")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not come up")


def start_gunicorn(
    env: dict[str, str], workers: int, worker_threads: int = 1, port: int = 0
) -> tuple[subprocess.Popen, str]:
    """gunicorn on loopback in its own process group; returns it once it answers."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            GUNICORN, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
            "--threads", str(worker_threads), "--access-logfile", "/dev/null",
            "--error-logfile", "-", "--timeout", "300", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_up(base, server)
    except BaseException:
        stop(server)
        raise
    return server, base


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process started with ``start_new_session`` and everything it started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (gunicorn's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(p) for p in task.read_text().split()]
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the kernel's peak RSS) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1])
    return values


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process (all its threads) still running."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def database_pids(client_pids: list[int], port: int = 5432) -> list[int]:
    """The PostgreSQL server processes serving connections that ``client_pids`` hold
    (found by the connections' local ports, which each server process's title names),
    so CPU the server spends for anyone else is not counted."""
    inodes = set()
    for pid in client_pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            title = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres:") and any(f"({p})" in title for p in ports):
                found.append(int(cmdline.parent.name))
    return found


class CpuMeter:
    """CPU seconds of the server (gunicorn and its workers), the database server's
    processes serving the server's connections, and this process, between ``start`` and ``stop``:
    on a machine whose cores are all busy, the ratio of two phases' CPU per request is
    what their throughput ratio tends to, whatever else the machine is doing."""

    def __init__(self, server_pid: int, database_port: int | None) -> None:
        """``database_port``: PostgreSQL's TCP port, or None when the database runs in
        the server's own processes (SQLite)."""
        self.server_pid, self.database_port = server_pid, database_port
        self.spent = {"server": 0.0, "database": 0.0, "client": 0.0}
        self._at: dict[str, dict[int, float]] = {}

    def _now(self) -> dict[str, dict[int, float]]:
        client = time.process_time()
        server = [self.server_pid, *children(self.server_pid)]
        database = (
            database_pids(server, self.database_port) if self.database_port is not None else []
        )
        return {
            "server": cpu_by_pid(server),
            "database": cpu_by_pid(database),
            "client": {0: client},
        }

    def start(self) -> None:
        self._at = self._now()

    def stop(self) -> None:
        now, before = self._now(), self._at
        for part in self.spent:
            # Process by process: one started during the window counts in full; one that
            # ended during it is not there at the end and its share is missed (database
            # connections last 60 s, so a few per phase at most).
            for pid, seconds in now[part].items():
                self.spent[part] += seconds - before[part].get(pid, 0.0)

    def during(self, clock: Clock) -> threading.Thread:
        """Measure the clock's measured window (after its warm-up), in a thread."""

        def run() -> None:
            while not clock.started_at:
                time.sleep(0.01)
            time.sleep(max(0.0, clock.started_at + clock.warmup - time.perf_counter()))
            self.start()
            time.sleep(
                max(0.0, clock.started_at + clock.warmup + clock.duration - time.perf_counter())
            )
            self.stop()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    @staticmethod
    def per_request_of(spent: dict[str, float], requests: int) -> dict[str, float]:
        """Milliseconds of CPU per request, by part and in all."""
        out = {part: 1000 * seconds / max(1, requests) for part, seconds in spent.items()}
        out["total"] = sum(out.values())
        return out


# Clients -----------------------------------------------------------------------------


_CSRF_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token a page carries (its forms' hidden field); the secret is kept in
    the session, so pages are where a client finds it."""
    found = _CSRF_TOKEN.search(html)
    if not found:
        raise ValueError("the page carries no CSRF token")
    return found.group(1)


def login(session, base: str, username: str, password: str) -> str | None:
    """Sign in; the CSRF token for the signed-in session, or None when sign-in failed
    (the token changes at sign-in)."""
    page = session.get(f"{base}/accounts/login/")
    response = session.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": csrf_token(page.text),
        },
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
    )
    if response.status_code != 302:
        return None
    return csrf_token(session.get(f"{base}/accounts/password/").text)


def cookies_as_header(session) -> None:
    """From now on send the session's cookies as one fixed header. Holding cookies,
    requests' cookie jar costs its client about 0.2 ms of CPU per request (the anonymous
    floor client holds none): CPU the load generator would take from the machine it
    shares with the server, where a browser keeps its cookies on its own machine. A cookie
    the server sets later would not be sent, nor would the header follow a redirect: the
    caller follows none and counts a cookie set as an error."""
    session.headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    session.cookies.clear()


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


def floor_client(base: str, clock: Clock, out: dict) -> None:
    """A closed-loop client of the floor: bench/coding_urls.py's one-insert view."""
    import requests

    session = requests.Session()
    clock.wait()
    while not clock.over():
        started = time.perf_counter()
        try:
            response = session.post(f"{base}/bench-floor/")
        except Exception as exc:  # a refused or dropped connection is an error, not a crash
            out["errors"].append(f"floor: {type(exc).__name__}")
            continue
        if clock.measuring(started):
            out["latencies"].append(("floor", time.perf_counter() - started))
        if response.status_code == 200:
            out["acks"].append(1)
        else:
            out["errors"].append(f"floor: {response.status_code}")


def run_clients(target, argument_lists: list[tuple]) -> None:
    """One thread per client, all joined."""
    threads = [threading.Thread(target=target, args=args) for args in argument_lists]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# Reporting ---------------------------------------------------------------------------


def summary(latencies: list[float], duration: float) -> dict:
    """Requests per second and p50/p95/p99 in ms of latencies in seconds."""
    values = sorted(latencies)
    n = len(values)
    if not n:
        nan = float("nan")
        return {"rps": 0.0, "p50": nan, "p95": nan, "p99": nan, "n": 0}

    def at(q: float) -> float:
        return values[min(n - 1, int(q * n))] * 1000

    return {"rps": n / duration, "p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "n": n}


def summary_line(label: str, s: dict, width: int = 24) -> str:
    return (
        f"{label:<{width}}{s['rps']:8.1f} req/s  p50 {s['p50']:7.1f} ms  p95 {s['p95']:7.1f} ms  "
        f"p99 {s['p99']:7.1f} ms"
    )


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def figure(name: str, value: str, floor: str, ratio: str, target: str, ok: bool | None, **where):
    """One line for bench/run_all.py's table (``ok=None``: reported, not judged)."""
    verdict = "-" if ok is None else ("yes" if ok else "no")
    extra = "".join(f" {k}={v}" for k, v in where.items())
    print(
        f"FIGURE name={name} value={value} floor={floor} ratio={ratio} target={target} "
        f"ok={verdict}{extra}",
        flush=True,
    )


def run_per_database(script: str, build_parser, run_database) -> int:
    """A load script's entry point: with ``--single DB`` run that database here; otherwise
    run each database asked for in a fresh interpreter (Django is set up once per
    database) and exit non-zero when any missed a target."""
    if len(sys.argv) > 2 and sys.argv[1] == "--single":
        return 0 if run_database(sys.argv[2], build_parser().parse_args(sys.argv[3:])) else 1
    args = build_parser().parse_args()
    if args.db in ("postgres", "both"):
        ensure_postgres_database(args.database_url)
    ok = True
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        child = subprocess.run(
            [PYTHON, script, "--single", db, *sys.argv[1:]], cwd=ROOT, check=False
        )
        ok = ok and child.returncode == 0
    print("\nall targets met" if ok else "\ntarget missed")
    return 0 if ok else 1
