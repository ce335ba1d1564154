"""A short soak: six coders' tabs saving at once for a few seconds; every acknowledged
save is in the database afterwards."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.child_process import ROOT, db_env, manage

SAVES = 10
SECONDS = 3
TABS = 6


def run_coders(env: dict[str, str], saves: int, seconds: float, during=None) -> dict:
    """Run tests.fault_coders in a child; call ``during()`` once it is saving."""
    child = subprocess.Popen(
        manage(
            "shell",
            "--no-imports",
            "-c",
            f"from tests.fault_coders import main; main({saves}, {seconds})",
        ),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = child.stdout.readline()
        assert first.strip() == "ready", first + child.stderr.read()[-3000:]
        if during is not None:
            during()
        out, err = child.communicate(timeout=seconds + 300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_concurrent_coders_lose_no_acknowledged_save():
    result = run_coders(db_env(), SAVES, SECONDS)

    attempts = result["acked"] + result["failed"] + result["conflicts"]
    assert attempts >= TABS * SAVES and result["acked"] > 0, result
    assert result["missing"] == []
    assert result["failed_without_retry_message"] == []
