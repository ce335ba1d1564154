from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.codebook import CodebookError
from coding.codebook_io import DEFAULT_CODEBOOK, load_file
from coding.demo import pin_demo_codebook


class Command(BaseCommand):
    help = (
        "Load a codebook from a .csv, .json or REFI-QDA .qdc file (or the study's default "
        "taxonomy with --default). Loading an unchanged codebook again changes nothing; a "
        "changed one becomes a new version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="a .csv, .json or .qdc file")
        parser.add_argument(
            "--default", action="store_true", help="load the bundled default codebook"
        )
        parser.add_argument("--name", help="codebook name (default: from the file)")

    def handle(self, *args, path: str | None, default: bool, name: str | None, **options):
        if default == bool(path):
            raise CommandError("give either a PATH or --default")
        try:
            codebook, version, changed = load_file(
                DEFAULT_CODEBOOK if default else Path(path), name
            )
        except CodebookError as exc:
            raise CommandError(str(exc)) from None
        codes = version.codes.count()
        state = "loaded as" if changed else "unchanged at"
        self.stdout.write(
            f"codebook {codebook.name!r}: {state} version {version.number}; {codes} codes"
        )
        if default and pin_demo_codebook(version):
            self.stdout.write(f"demo project pinned to version {version.number}")
