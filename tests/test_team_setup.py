"""The team set-up as the README describes it: gunicorn started with the options of
deploy/forum-coding-web.service on production settings (DEBUG off, the variables of
deploy/forum-coding.env.example, the database under test), static files collected and
served by whitenoise, behind a TLS proxy that sets X-Forwarded-Proto."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.child_process import ROOT, db_env, manage

HOST = "coding.example.org"
pytestmark = pytest.mark.django_db(transaction=True)


def _unit_gunicorn_options() -> list[str]:
    """The gunicorn options of the shipped web unit, with the address left out."""
    unit = (ROOT / "deploy" / "forum-coding-web.service").read_text().replace("\\\n", " ")
    command = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    options = command[command.index("config.wsgi") + 1 :]
    at = options.index("--bind")
    return options[:at] + options[at + 2 :]


def _env(static_root: Path) -> dict[str, str]:
    example = (ROOT / "deploy" / "forum-coding.env.example").read_text()
    production = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    production.pop("DATABASE_URL")  # the database under test instead
    production["SECRET_KEY"] = "team-setup-test-" + "k" * 50
    return db_env(
        **production,
        ENV_FILE="/nonexistent",
        DJANGO_SETTINGS_MODULE="tests.team_settings",
        TEAM_TEST_STATIC_ROOT=str(static_root),
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_behind_a_tls_proxy_serves_pages_and_compressed_static_files(tmp_path):
    env = _env(tmp_path / "static")
    collected = subprocess.run(
        manage("collectstatic", "--noinput"), cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert collected.returncode == 0, collected.stderr
    port = _free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "config.wsgi", "--bind", f"127.0.0.1:{port}", *_unit_gunicorn_options()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base, direct = f"http://127.0.0.1:{port}", {"Host": HOST}
    proxied = {"Host": HOST, "X-Forwarded-Proto": "https"}

    def get(path: str, **options) -> requests.Response:
        return requests.get(base + path, timeout=60, **options)

    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read()[-2000:]
            try:
                health = requests.get(f"{base}/healthz", headers=direct, timeout=30)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not come up"
                time.sleep(0.2)
        # The health check answers on the local port, without the proxy.
        assert (health.status_code, health.text) == (200, "ok")
        options = _unit_gunicorn_options()
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(workers) == int(options[options.index("--workers") + 1]) > 1

        # Plain HTTP reaching the app is sent to HTTPS; an unknown host is refused.
        plain = get("/accounts/login/", headers=direct, allow_redirects=False)
        assert plain.status_code == 301
        assert plain.headers["Location"] == f"https://{HOST}/accounts/login/"
        other = get("/healthz", headers={"Host": "attacker.example"})
        assert other.status_code == 400

        # Through the proxy: the page, HSTS, secure cookies.
        page = get("/accounts/login/", headers=proxied, allow_redirects=False)
        assert page.status_code == 200
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "Secure" in page.headers["Set-Cookie"]

        # Static files: hashed names from the manifest, served compressed and cacheable.
        names = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
        assert names and all(re.search(r"\.[0-9a-f]{12}\.\w+$", n) for n in names), names
        scripts_and_styles = [n for n in names if n.endswith((".css", ".js"))]
        assert scripts_and_styles, names
        for name in scripts_and_styles:
            asset = get(name, headers={**proxied, "Accept-Encoding": "gzip"}, stream=True)
            assert asset.status_code == 200, name
            assert asset.headers["Content-Encoding"] == "gzip", name
            assert "immutable" in asset.headers["Cache-Control"], name
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
