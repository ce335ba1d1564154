from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.exports import ROW_SOURCES, ExportOptions, csv_lines
from coding.models import Project

FORMATS = [*ROW_SOURCES, "qdc", "qdpx"]


class Command(BaseCommand):
    help = "Export a project's coded data as CSV (long, wide, gold, agreement, corpus) or REFI-QDA."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--gold-only", action="store_true", help="only adjudicated units")
        parser.add_argument(
            "--pseudonymize",
            action="store_true",
            help="stable pseudonyms for coders and forum users; the key goes to PATH.key.csv",
        )
        parser.add_argument(
            "--no-text", action="store_true", help="leave out post text, quotes' text and memos"
        )
        parser.add_argument(
            "--excel", action="store_true", help="UTF-8 with BOM and CRLF for Excel"
        )
        parser.add_argument(
            "--no-formula-guard",
            action="store_true",
            help="write cells starting with = + - @ as they are (for pandas, R)",
        )
        parser.add_argument("--output", type=Path, help="file to write (default: standard output)")

    def handle(self, *args, project: str, format: str, output: Path | None, **opts) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project with slug {project!r}")
        options = ExportOptions(
            gold_only=opts["gold_only"],
            pseudonymize=opts["pseudonymize"],
            no_text=opts["no_text"],
            guard=not opts["no_formula_guard"],
        )
        if opts["pseudonymize"] and output is None:
            raise CommandError("--pseudonymize needs --output, so the key file has a place")
        if format == "qdc":
            from coding.codebook_io import export_file

            if output is None:
                raise CommandError("--format qdc needs --output PATH")
            if found.codebook_version is None:
                raise CommandError(f"project {project!r} has no codebook version")
            export_file(output, found.codebook_version)
            self.stdout.write(f"qdc: {found.codebook_version} -> {output}")
            return
        if format == "qdpx":
            from analysis.refi import QdpxError, write_qdpx

            if output is None:
                raise CommandError("--format qdpx needs --output PATH")
            try:
                self.stdout.write(write_qdpx(found, output, options))
            except QdpxError as error:
                raise CommandError(str(error)) from None
            self._write_key(output, options)
            return
        counted = [0]

        def counting(rows):
            for row in rows:
                counted[0] += 1
                yield row

        rows = counting(ROW_SOURCES[format](found, options))
        lines = csv_lines(rows, options, excel=opts["excel"])
        if output is None:
            for line in lines:
                sys.stdout.write(line)
            return
        tmp = output.with_name(f".{output.name}.partial")
        try:
            with tmp.open("w", encoding="utf-8", newline="") as handle:
                handle.writelines(lines)
            tmp.replace(output)
        finally:
            tmp.unlink(missing_ok=True)
        self._write_key(output, options)
        self.stdout.write(f"{format}: {counted[0] - 1} rows -> {output}")

    def _write_key(self, output: Path, options: ExportOptions) -> None:
        """Who is who behind the pseudonyms, beside the export, readable by its owner only."""
        if not options.pseudonymize:
            return
        key = output.with_name(output.name + ".key.csv")
        with key.open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(csv_lines(options.key_rows(), ExportOptions(guard=options.guard)))
        key.chmod(0o600)
        self.stdout.write(f"pseudonym key -> {key}")
