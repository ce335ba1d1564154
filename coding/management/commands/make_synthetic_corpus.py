from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coding.synthetic import make_corpus


class Command(BaseCommand):
    help = "Write a synthetic forum corpus (for demos, tests and benchmarks) with bulk inserts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--threads", type=int, required=True, help="number of threads")
        parser.add_argument(
            "--posts-per-thread", type=float, default=8, help="mean posts per thread"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--source", default="Synthetic forum", help="forum source name")

    def handle(
        self, *args, threads: int, posts_per_thread: float, seed: int, source: str, **options
    ) -> None:
        if threads < 1:
            raise CommandError("--threads must be at least 1")
        if posts_per_thread < 1:
            raise CommandError("--posts-per-thread must be at least 1")
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
