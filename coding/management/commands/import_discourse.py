"""Import topics from a live Discourse forum; re-runs fetch only what moved."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.importers.discourse import (
    DEFAULT_RATE,
    DiscourseImport,
    ImportBusy,
    ImportOptions,
    Progress,
    create_run,
    normalize_base_url,
)
from coding.models import ImportRun


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class ProgressLine:
    """One self-rewriting line on a terminal: topics done/total, posts, current wait."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.width = 0

    def __call__(self, progress: Progress) -> None:
        total = progress.topics_total
        if total is None:
            text = "listing topics…"
        else:
            share = progress.topics_done / total if total else 1.0
            bar = "#" * int(share * 24)
            text = f"[{bar:<24}] topics {progress.topics_done}/{total} · posts {progress.posts}"
        if progress.waiting >= 1:
            text += f" · waiting {progress.waiting:.0f}s ({progress.wait_reason})"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()


class Command(BaseCommand):
    help = "Import topics from a live Discourse forum (incremental, resumable, rate-limited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("base_url", help="The forum, e.g. https://discuss.huggingface.co")
        parser.add_argument(
            "--category",
            action="append",
            default=[],
            help="A category slug or id (subcategories included); repeatable",
        )
        parser.add_argument("--tag", action="append", default=[], help="A tag; repeatable")
        parser.add_argument("--since", type=_day, help="Topics created on or after YYYY-MM-DD")
        parser.add_argument("--until", type=_day, help="Topics created on or before YYYY-MM-DD")
        parser.add_argument("--max-topics", type=int, help="At most this many topics")
        parser.add_argument(
            "--rate",
            type=float,
            default=DEFAULT_RATE,
            help=f"Requests per second (default {DEFAULT_RATE}; 0 for no limit)",
        )
        parser.add_argument(
            "--refresh",
            action="store_true",
            help="Re-fetch every topic in the window to pick up silent edits and deletions",
        )

    def handle(self, *args, **opts) -> None:
        try:
            base_url = normalize_base_url(opts["base_url"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["max_topics"] is not None and opts["max_topics"] < 1:
            raise CommandError("--max-topics must be at least 1")
        if opts["rate"] < 0:
            raise CommandError("--rate must not be negative")
        if opts["since"] and opts["until"] and opts["since"] > opts["until"]:
            raise CommandError("--since is after --until")
        options = ImportOptions(
            base_url=base_url,
            categories=opts["category"],
            tags=opts["tag"],
            since=opts["since"],
            until=opts["until"],
            max_topics=opts["max_topics"],
            rate=opts["rate"],
            refresh=opts["refresh"],
        )
        try:
            run = create_run(options)
        except ImportBusy as exc:
            raise CommandError(str(exc)) from None
        progress = ProgressLine(sys.stderr) if sys.stderr.isatty() else None
        # Ctrl-C asks the import to stop between topics; a second Ctrl-C stops at once.
        interrupted = threading.Event()

        def on_interrupt(signum, frame) -> None:
            if interrupted.is_set():
                raise KeyboardInterrupt
            interrupted.set()

        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
        importer = DiscourseImport(run, on_progress=progress, interrupted=interrupted)
        try:
            counts = importer.execute()
        except KeyboardInterrupt:
            counts = importer.counts
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
            if progress:
                progress.close()
        run = importer.run
        self.stdout.write(counts.summary_line())
        if interrupted.is_set():
            raise CommandError(
                "interrupted; finished topics are stored, run the same command to resume"
            )
        if run.state != ImportRun.State.DONE:
            raise CommandError(f"import {run.get_state_display().lower()}: {run.message}")
        if run.message:
            self.stderr.write(run.message)
