from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.importers.open_codes import OpenCodeImportError, import_open_codes_file
from coding.models import Project


class Command(BaseCommand):
    help = (
        "Import open codes made elsewhere into a project: the study layout (index, Topic#, "
        "Tag, Code) or the long layout (thread_id, coder, open_code). Rows are matched to "
        "threads by topic id; any problem (an unknown topic, a bad row) imports nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("path", help="the CSV file")
        parser.add_argument(
            "--coder",
            help="username the study layout's codes are imported as (default: the project's "
            "creator)",
        )
        parser.add_argument(
            "--skip-unknown",
            action="store_true",
            help="import the rows whose topic is in the corpus and list the others",
        )

    def handle(self, *args, project: str, path: str, **options) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project with slug {project!r}")
        coder = None
        if options["coder"]:
            coder = get_user_model().objects.filter(username=options["coder"]).first()
            if coder is None:
                raise CommandError(f"no user named {options['coder']!r}")
        try:
            summary = import_open_codes_file(
                found, path, coder=coder, skip_unknown=options["skip_unknown"]
            )
        except OpenCodeImportError as exc:
            if exc.unknown_topics:
                ids = ", ".join(str(t) for t in exc.unknown_topics)
                self.stderr.write(f"topics not in the corpus: {ids}")
            raise CommandError(f"nothing imported:\n{exc}") from None
        for line in summary.skipped:
            self.stderr.write(f"skipped: {line}")
        self.stdout.write(summary.line())
