"""Consistent backups of the database while the app keeps running.

SQLite: the online backup API copies a consistent snapshot page by page, so
annotators can keep saving. PostgreSQL: ``pg_dump`` in its custom format, which
``pg_restore`` reads. Both write to a temporary file first and move it into place,
so a failed backup never leaves a truncated file under the requested name.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.db import connection


class BackupError(Exception):
    pass


def backup_database(path: Path) -> str:
    """Write a backup of the default database to ``path``; returns a one-line summary."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise BackupError(f"{path} is a folder; give a file name")
    if not path.parent.exists():
        raise BackupError(f"folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if connection.vendor == "sqlite":
            summary = _backup_sqlite(tmp)
        elif connection.vendor == "postgresql":
            summary = _backup_postgres(tmp)
        else:
            raise BackupError(f"backups of {connection.vendor} databases are not supported")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return f"{summary} -> {path} ({path.stat().st_size} bytes)"


def _backup_sqlite(target: Path) -> str:
    connection.ensure_connection()
    source = connection.connection
    destination = sqlite3.connect(target)
    try:
        with destination:
            source.backup(destination)
        check = destination.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the backup failed its integrity check: {check}")
    finally:
        destination.close()
    return "SQLite online backup"


def _backup_postgres(target: Path) -> str:
    if not shutil.which("pg_dump"):
        raise BackupError("pg_dump is not installed (Debian: apt-get install postgresql-client)")
    settings = connection.settings_dict
    env = {**os.environ}
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings["PASSWORD"])
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}"]
    if settings.get("HOST"):
        command.append(f"--host={settings['HOST']}")
    if settings.get("PORT"):
        command.append(f"--port={settings['PORT']}")
    if settings.get("USER"):
        command.append(f"--username={settings['USER']}")
    command.append(settings["NAME"])
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[:500]}")
    return "PostgreSQL pg_dump (custom format)"
