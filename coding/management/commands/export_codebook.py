from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.codebook import CodebookError, nodes_of
from coding.codebook_io import export_file, format_of, left_out_keys
from coding.models import Codebook


class Command(BaseCommand):
    help = "Export a codebook version to .csv, .json or REFI-QDA .qdc (format by extension)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        # --version is part of the command's contract; it replaces Django's own --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="where to write: a .csv, .json or .qdc file")
        parser.add_argument("--codebook", help="codebook name (needed when there are several)")
        parser.add_argument("--version", type=int, dest="number", help="version (default: latest)")

    def handle(self, *args, path: str, codebook: str | None, number: int | None, **options):
        try:
            format_of(path)
        except CodebookError as exc:
            raise CommandError(str(exc)) from None
        if codebook:
            found = Codebook.objects.filter(name=codebook).first()
            if found is None:
                names = ", ".join(Codebook.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"no codebook named {codebook!r} (there are: {names})")
        else:
            books = list(Codebook.objects.all()[:2])
            if len(books) != 1:
                raise CommandError(
                    "no codebook loaded"
                    if not books
                    else "several codebooks: name one with --codebook"
                )
            found = books[0]
        versions = found.versions.all()
        version = versions.filter(number=number).first() if number else versions.last()
        if version is None:
            raise CommandError(
                f"codebook {found.name!r} has no version {number}"
                if number
                else f"codebook {found.name!r} has no versions"
            )
        try:
            export_file(Path(path), version)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except CodebookError as exc:
            raise CommandError(f"{path}: {exc}") from None
        nodes = nodes_of(version)
        left_out = left_out_keys(nodes) if format_of(path) == "qdc" else set()
        note = f" (left out, retired: {len(left_out)})" if left_out else ""
        self.stdout.write(
            f"codebook {found.name!r} version {version.number}: "
            f"{len(nodes) - len(left_out)} codes written to {path}{note}"
        )
