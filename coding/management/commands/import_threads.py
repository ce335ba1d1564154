from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.importers.files import FORMATS, ImportFileError, import_file


class Command(BaseCommand):
    help = (
        "Import Discourse topic JSON (/t/{id}.json, one object or a list), JSONL of topics, "
        "or CSV (one row per post). The file is validated whole before anything is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a .json, .jsonl or .csv file, optionally .gz")
        parser.add_argument(
            "--source",
            required=True,
            help="the forum: its base URL (ties the file to a live import) or a name",
        )
        parser.add_argument(
            "--format", choices=FORMATS, help="the file's format when its name does not say"
        )
        parser.add_argument(
            "--max-bytes", type=int, help="refuse larger files (default: IMPORT_MAX_BYTES)"
        )

    def handle(self, *args, path: str, source: str, format: str | None, **options) -> None:
        show = self.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show:
                width = 30
                filled = width * done // total
                self.stderr.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} threads",
                    ending="",
                )

        try:
            counts, _ = import_file(
                Path(path),
                source,
                fmt=format,
                max_bytes=options.get("max_bytes"),
                progress=progress,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        if show:
            self.stderr.write("")
        self.stdout.write(counts.summary_line())
