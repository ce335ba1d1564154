from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.importers.codings import CodingImportError, import_codings_file
from coding.models import Project


class Command(BaseCommand):
    help = (
        "Import codings made elsewhere into a project: the long CSV layout of export_codings, "
        "or a REFI-QDA .qdpx. A file with any error changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("path", type=Path)

    def handle(self, *args, project: str, path: Path, **options) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project with slug {project!r}")
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            count = import_codings_file(found, path)
        except CodingImportError as exc:
            raise CommandError(f"nothing imported:\n{exc}") from exc
        self.stdout.write(f"codings: {count} imported")
