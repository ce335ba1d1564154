"""Coders saving concurrently through the real request stack, for the fault and soak tests.

Run in a child process against the database in DATABASE_URL / SQLITE_PATH:

    manage.py shell -c "from tests.fault_coders import main; main(SAVES, SECONDS)"

It builds a small project, prints ``ready``, lets one thread per (coder, unit) save its
coding again and again (at least SAVES times and for at least SECONDS), then prints one
JSON line: how many saves were
acknowledged, how many failed and whether each failure told the user to try again, and
every acknowledged save that the database does not hold.
"""

from __future__ import annotations

import json
import threading
import time

from django.db import close_old_connections, connection
from django.test import Client

from coding.models import Coding, CodingEvent
from tests.factories import make_user
from tests.factories_coding import make_coding_project, payload

UNITS = 3


def _coder_loop(user, url: str, saves: int, deadline: float, out: dict) -> None:
    client = Client(raise_request_exception=False, HTTP_HOST="localhost")
    client.force_login(user)
    revision, n = 0, 0
    while n < saves or time.monotonic() < deadline:
        n += 1
        memo = f"{user.username}-{url}-{n}"
        # What Django's WSGI handler does around every request: drop a broken connection.
        close_old_connections()
        response = client.post(
            url, json.dumps(payload(revision, memo=memo)), content_type="application/json"
        )
        close_old_connections()
        body = response.content.decode(errors="replace")
        if response.status_code == 200:
            revision = response.json()["revision"]
            out["acked"].append((user.username, url, revision, memo))
        elif response.status_code == 409:
            revision = response.json()["revision"]
            out["conflicts"].append(memo)
        else:
            retry = "try again" in body.lower() or "retried" in body.lower()
            out["failed"].append((response.status_code, retry))
            time.sleep(0.05)


def main(saves: int, seconds: float) -> None:
    users = {"admin": make_user("padmin"), "alice": make_user("alice"), "bob": make_user("bob")}
    project = make_coding_project(users, slug="soak", units=UNITS)
    urls = [f"/projects/{project.slug}/units/{u.pk}/code/" for u in project.units.all()]
    out: dict = {"acked": [], "failed": [], "conflicts": []}
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_coder_loop, args=(users[name], url, saves, deadline, out))
        for name in ("alice", "bob")
        for url in urls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connection.close()  # it may have outlived a database restart

    memos = {
        (event.coding.coder.username, event.coding.unit_id, event.after.get("memo"))
        for event in CodingEvent.objects.select_related("coding__coder")
    }
    final = {(c.coder.username, c.unit_id): c.revision for c in Coding.objects.all()}
    missing = []
    for username, url, revision, memo in out["acked"]:
        unit_id = int(url.rstrip("/").split("/")[-2])
        if (username, unit_id, memo) not in memos or final[(username, unit_id)] < revision:
            missing.append(memo)
    print(
        json.dumps(
            {
                "acked": len(out["acked"]),
                "failed": len(out["failed"]),
                "conflicts": len(out["conflicts"]),
                "failed_without_retry_message": [s for s, retry in out["failed"] if not retry],
                "missing": missing,
            }
        ),
        flush=True,
    )
