import sqlite3
import subprocess
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.factories import make_thread

pytestmark = pytest.mark.django_db(transaction=True)


def _count_threads_in_sqlite(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM coding_thread").fetchone()[0]
    finally:
        db.close()


@pytest.mark.sqlite
def test_backup_of_sqlite_is_a_complete_consistent_copy(tmp_path):
    for n in range(3):
        make_thread(f"thread {n}", external_id=n + 1)
    out = StringIO()
    call_command("backup", str(tmp_path / "copy.sqlite3"), stdout=out)

    assert "SQLite online backup" in out.getvalue()
    assert _count_threads_in_sqlite(tmp_path / "copy.sqlite3") == 3
    assert not list(tmp_path.glob(".*partial"))


def test_backup_into_a_missing_folder_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("backup", str(tmp_path / "nowhere" / "copy.db"))


@pytest.mark.postgres
def test_backup_of_postgresql_restores_into_a_new_database(tmp_path):
    make_thread("kept in the backup", external_id=77)
    target = tmp_path / "dump.pgc"
    call_command("backup", str(target), stdout=StringIO())

    settings = connection.settings_dict
    restored = f"restore_{uuid.uuid4().hex[:8]}"
    base = ["--host", settings["HOST"] or "127.0.0.1", "--port", str(settings["PORT"] or 5432)]
    base += ["--username", settings["USER"] or "postgres"]
    subprocess.run(["createdb", *base, restored], check=True)
    try:
        subprocess.run(
            ["pg_restore", *base, "--no-owner", "--dbname", restored, str(target)], check=True
        )
        count = subprocess.run(
            ["psql", *base, "-d", restored, "-Atc", "SELECT title FROM coding_thread"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        assert "kept in the backup" in count
    finally:
        subprocess.run(["dropdb", *base, restored], check=True)
