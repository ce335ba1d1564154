from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.demo import read_credentials, seed_demo, write_credentials


class Command(BaseCommand):
    help = "Create demo accounts (a staff admin and three annotators) and a demo project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even with DEBUG off (demo accounts on a real deployment)",
        )

    def handle(self, *args, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates accounts with known passwords; with DEBUG off it runs "
                "only with --force."
            )
        path = settings.DEMO_CREDENTIALS_FILE
        credentials, created = seed_demo(read_credentials(path))
        if settings.DEBUG:
            write_credentials(path, credentials)
            where = f"passwords in {path}"
        else:
            where = "passwords: " + ", ".join(f"{u} {p}" for u, p in credentials.items())
        self.stdout.write(
            f"demo accounts: {len(created)} created, {len(credentials) - len(created)} "
            f"already there; {where}"
        )
