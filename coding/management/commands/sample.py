from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from coding.assignment import assign_units
from coding.models import Project
from coding.sampling import STRATIFY_CHOICES, SamplingError, draw_round


class Command(BaseCommand):
    help = (
        "Draw a project's sample into a new round (simple random or proportional "
        "stratified, reproducible from its seed) and assign it to the annotators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("--confidence", type=float, default=0.95, help="e.g. 0.95")
        parser.add_argument("--margin", type=float, default=0.05, help="e.g. 0.05")
        parser.add_argument("--size", type=int, help="sample this many units instead")
        parser.add_argument("--stratify", choices=STRATIFY_CHOICES)
        parser.add_argument("--seed", type=int, help="random seed (default: a new one)")
        parser.add_argument("--round", dest="round_name", help="round name (default: main)")

    def handle(self, *args, project: str, **options) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project with slug {project!r}")
        if options["size"] is not None and options["size"] < 1:
            raise CommandError("--size must be at least 1")
        if options["seed"] is not None and not 0 <= options["seed"] < 2**63:
            raise CommandError("--seed must be a non-negative integer below 2**63")
        try:
            with transaction.atomic():
                result = draw_round(
                    found,
                    confidence=options["confidence"],
                    margin=options["margin"],
                    size=options["size"],
                    stratify=options["stratify"],
                    seed=options["seed"],
                    round_name=options["round_name"],
                )
                assigned = assign_units(found)
        except SamplingError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"sampled {result.sampled} of {result.population} units")
        self.stdout.write(
            f"round {result.round.name!r}, seed {result.round.seed}; "
            f"{assigned.assigned} assignments made"
        )
        if assigned.short:
            self.stderr.write(
                f"{assigned.short} coder slots are open: the project has too few annotators"
            )
