from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.reports import (
    KINDS,
    PERIODS,
    Filters,
    ReportError,
    build_report,
    parse_basis,
    parse_terms,
    to_csv,
)
from coding.models import Project


class Command(BaseCommand):
    help = (
        "A report table of a project as CSV: code frequency, trend per period, code "
        "co-occurrence, or term mentions per period. The basis (gold labels by default) "
        "is stated on standard output, or on standard error when the CSV goes there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", metavar="PROJECT_SLUG")
        parser.add_argument("--kind", required=True, choices=KINDS)
        parser.add_argument("--basis", default="gold", help="gold (default), coder:NAME or all")
        parser.add_argument("--by", default="month", choices=PERIODS)
        parser.add_argument(
            "--terms", metavar="FILE", help="for mentions: one term a line, then its aliases"
        )
        parser.add_argument("--round", default="", metavar="NAME", help="only this round")
        parser.add_argument("--output", metavar="PATH.csv", help="write here, not to stdout")

    def handle(self, *args, project: str, kind: str, **options) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project with slug {project!r}")
        terms = None
        if options["terms"] and kind != "mentions":
            raise CommandError("--terms is only for --kind mentions")
        try:
            if kind == "mentions":
                terms = self._terms(options["terms"])
            report = build_report(
                found,
                kind,
                basis=parse_basis(options["basis"]),
                filters=Filters(round=options["round"]),
                by=options["by"],
                terms=terms,
            )
        except ReportError as exc:
            raise CommandError(str(exc)) from None
        text = to_csv(report.table)
        output = options["output"]
        notes = self.stdout if output else self.stderr
        notes.write(f"basis: {report.statement}")
        if report.tests is not None:
            changing = report.tests[report.tests["direction"].isin(["increasing", "decreasing"])]
            notes.write(
                f"trend tests (Kendall's tau of the share against time, p < 0.05): "
                f"{len(changing)} of {len(report.tests)} codes change"
            )
            for row in changing.itertuples():
                notes.write(
                    f"  {row.code}: {row.direction}, tau {row.tau:.3f}, p {row.p_value:.4f}"
                )
        if not output:
            self.stdout.write(text, ending="")
            return
        path = Path(output)
        tmp = path.with_name(path.name + ".part")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CommandError(f"{output}: cannot be written ({exc.strerror})") from None
        self.stdout.write(f"written: {output} ({len(report.table)} rows)")

    def _terms(self, name: str | None):
        if not name:
            raise CommandError("--kind mentions needs --terms FILE")
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"{name}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{name}: cannot be read ({exc})") from None
        return parse_terms(text, name)
