from __future__ import annotations

import sys
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.importers.hub import (
    HUB_URL,
    HubClient,
    HubDataError,
    HubError,
    import_dump,
    import_from_hub,
    refresh_models,
)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Import Hugging Face Hub model metadata (id, author, dates, pipeline tag, library, "
        "model type, tags, card data, downloads, likes) from the Hub or from a JSONL/CSV dump. "
        "Runs are resumable, incremental and idempotent. HF_TOKEN, if set, is sent as the "
        "bearer token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="models created on or after YYYY-MM-DD")
        parser.add_argument("--until", help="models created on or before YYYY-MM-DD")
        parser.add_argument("--max-models", type=int, help="stop after this many models")
        parser.add_argument(
            "--from-file", metavar="PATH", help="a JSONL or CSV dump instead of the network"
        )
        parser.add_argument(
            "--model",
            action="append",
            default=[],
            metavar="ID",
            help="fetch this model by id (repeatable); a renamed repo takes its new id",
        )
        parser.add_argument("--hub-url", help=f"the Hub to read (default: HUB_URL, else {HUB_URL})")

    def handle(self, *args, **options) -> None:
        since = _date(options["since"]) if options["since"] else None
        until = _date(options["until"]) if options["until"] else None
        if since and until and since > until:
            raise CommandError("--since is after --until")
        max_models = options["max_models"]
        if max_models is not None and max_models < 1:
            raise CommandError("--max-models must be at least 1")
        if options["from_file"]:
            if since or until or max_models or options["model"]:
                raise CommandError("--from-file imports the whole file; drop the other options")
            try:
                counts = import_dump(options["from_file"])
            except HubDataError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(counts.summary_line())
            return
        client = HubClient(options["hub_url"] or settings.HUB_URL, token=settings.HF_TOKEN)
        try:
            if options["model"]:
                counts = refresh_models(client, options["model"])
            else:
                counts, _run = import_from_hub(
                    client,
                    since=since,
                    until=until,
                    max_models=max_models,
                    progress=self._progress_bar(),
                )
        except HubError as exc:
            raise CommandError(
                f"{exc}. Models fetched so far are stored; run the same command again to continue."
            ) from None
        finally:
            client.close()
            if self._show_progress():
                self.stderr.write("")
        self.stdout.write(counts.summary_line())

    def _show_progress(self) -> bool:
        stream = getattr(self.stderr, "_out", sys.stderr)
        return hasattr(stream, "isatty") and stream.isatty()

    def _progress_bar(self):
        if not self._show_progress():
            return None

        def show(done: int, total: int | None) -> None:
            if total:
                width = 30
                filled = min(width, width * done // max(total, 1))
                bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} models"
            else:
                bar = f"{done} models"
            self.stderr.write(f"\r{bar}", ending="")

        return show
