from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.models import ForumSource
from coding.synthetic import make_coded_project, make_corpus


class Command(BaseCommand):
    help = "Write a synthetic forum corpus (for demos, tests and benchmarks) with bulk inserts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--threads", type=int, required=True, help="number of threads")
        parser.add_argument(
            "--posts-per-thread", type=float, default=8, help="mean posts per thread"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--source", default="Synthetic forum", help="forum source name")
        parser.add_argument(
            "--coders",
            type=int,
            help="also create a project whose sample every one of C coders has coded",
        )
        parser.add_argument(
            "--coded-share",
            type=float,
            help="share of the source's threads sampled and coded (0-1, default 0.1)",
        )
        parser.add_argument(
            "--agreement",
            type=float,
            help="chance that the coders of a unit agree beyond chance (0-1, default 0.8)",
        )

    def handle(
        self, *args, threads: int, posts_per_thread: float, seed: int, source: str, **options
    ) -> None:
        if threads < 1:
            raise CommandError("--threads must be at least 1")
        if posts_per_thread < 1:
            raise CommandError("--posts-per-thread must be at least 1")
        coders = options["coders"]
        coded_share = options["coded_share"]
        agreement = options["agreement"]
        if coders is None and (coded_share is not None or agreement is not None):
            raise CommandError("--coded-share and --agreement need --coders")
        coded_share = 0.1 if coded_share is None else coded_share
        agreement = 0.8 if agreement is None else agreement
        if coders is not None and coders < 1:
            raise CommandError("--coders must be at least 1")
        if not 0 < coded_share <= 1:
            raise CommandError("--coded-share must be above 0 and at most 1")
        if not 0 <= agreement <= 1:
            raise CommandError("--agreement must be between 0 and 1")
        started = time.monotonic()
        show = self.stderr.isatty() if hasattr(self.stderr, "isatty") else sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show:
                width = 30
                filled = width * done // total
                self.stderr.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} threads",
                    ending="",
                )

        made_threads, made_posts = make_corpus(
            threads, posts_per_thread, seed=seed, source_name=source, progress=progress
        )
        if show:
            self.stderr.write("")
        self.stdout.write(
            f"threads: {made_threads} new, 0 updated, 0 unchanged; "
            f"posts: {made_posts} new, 0 updated, 0 unchanged "
            f"({time.monotonic() - started:.1f} s)"
        )
        if coders is not None:
            coded = make_coded_project(
                ForumSource.objects.get(name=source), coders, coded_share, agreement, seed=seed
            )
            self.stdout.write(
                f"project {coded.project.slug}: {coded.units} units, "
                f"{coded.codings} submitted codings by {coders} coders"
            )
