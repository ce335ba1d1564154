"""PostgreSQL restarted while coders save: each save is acknowledged and kept, or the coder
is told to try again. The server is a throwaway cluster this test creates on a free port
(initdb, pg_ctl), so the suite's own database is never touched."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.child_process import ROOT, db_env, manage
from tests.test_faults_soak import run_coders

pytestmark = pytest.mark.postgres


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    assert found, f"{name} (PostgreSQL server binaries) is needed for this test"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster in a temporary folder, run as ``postgres`` when we are root."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pg-fault-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.as_root:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
            "-o", options, "-w", *args,
        )  # fmt: skip

    def start(self) -> Cluster:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._pg_ctl("start")
        return self

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        try:
            self._pg_ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def cluster():
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


def test_saves_during_a_database_restart_are_kept_or_refused_with_a_retry_message(cluster):
    env = {**db_env(), "DATABASE_URL": cluster.url}
    subprocess.run(manage("migrate", "--no-input"), env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=600)  # fmt: skip

    def restart() -> None:
        time.sleep(1.0)
        cluster.restart()

    result = run_coders(env, saves=10, seconds=6, during=restart)

    assert result["acked"] > 0, result
    assert result["failed"] > 0, f"the restart did not interrupt any save: {result}"
    assert result["failed_without_retry_message"] == [], result
    assert result["missing"] == [], result
