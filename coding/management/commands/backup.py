from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.backup import BackupError, backup_database


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database to PATH while the app keeps running "
        "(SQLite online backup, or pg_dump's custom format for PostgreSQL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options) -> None:
        try:
            self.stdout.write(backup_database(path))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
