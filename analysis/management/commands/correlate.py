from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.correlation import (
    REPORT_FIELDS,
    TableError,
    compare,
    read_table,
    report_lines,
    report_rows,
)


class Command(BaseCommand):
    help = (
        "Spearman correlation between two count tables (wide: name column then period "
        "columns; or long: name,period,count): per name over the shared periods, and "
        "across names of their totals."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("a", metavar="A.csv", help="first count table")
        parser.add_argument("b", metavar="B.csv", help="second count table")
        parser.add_argument(
            "--matched-window",
            action="store_true",
            help="sum totals over the periods both tables have (default: each its own)",
        )
        parser.add_argument("--output", metavar="PATH.csv", help="also write the figures here")

    def handle(self, *args, a: str, b: str, matched_window: bool, output: str | None, **options):
        try:
            table_a = read_table(a)
            table_b = read_table(b)
        except TableError as exc:
            raise CommandError(str(exc)) from None
        comparison = compare(table_a, table_b, matched_window=matched_window)
        if not comparison.shared_names:
            raise CommandError(f"{a} and {b} have no names in common")
        for line in report_lines(comparison):
            self.stdout.write(line)
        if output:
            path = Path(output)
            tmp = path.with_name(path.name + ".part")
            try:
                with tmp.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=REPORT_FIELDS)
                    writer.writeheader()
                    writer.writerows(report_rows(comparison))
                tmp.replace(path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise CommandError(f"{output}: cannot be written ({exc.strerror})") from None
            self.stdout.write(f"written: {output}")
