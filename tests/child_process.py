"""Child processes (commands, the task worker) that work on the test database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def db_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that uses the test database."""
    settings = connection.settings_dict
    env = {**os.environ, "DEBUG": "1", **extra}
    env.pop("TEST_DB_SUFFIX", None)
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(settings["NAME"])
    else:
        auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        env["DATABASE_URL"] = (
            f"postgres://{auth}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
        )
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]
