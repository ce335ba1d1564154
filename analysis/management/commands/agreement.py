from __future__ import annotations

import json
import math
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.agreement import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    LEVELS,
    MODES,
    AgreementInputError,
    agreement_report,
    read_long_csv,
    to_json_ready,
)
from analysis.codings import project_codings
from coding.models import CodebookVersion, Project, Round


class Command(BaseCommand):
    help = (
        "Inter-rater agreement (Krippendorff's alpha with a bootstrap interval, Cohen's and "
        "Fleiss' kappa, percent agreement; per code for multi-label data) of a long CSV "
        "unit,coder,code or of a project's submitted codings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--input", metavar="CODINGS.csv", help="long CSV unit,coder,code")
        source.add_argument("--project", metavar="SLUG", help="a project's submitted codings")
        parser.add_argument("--round", metavar="NAME", help="only this round (with --project)")
        parser.add_argument(
            "--codebook-version",
            type=int,
            metavar="N",
            help="only codings made against this codebook version number (with --project)",
        )
        parser.add_argument(
            "--depth",
            type=int,
            metavar="D",
            help="roll codes up to their ancestors at this depth of the tree "
            "(0 = top groups, 1 = categories; with --project)",
        )
        parser.add_argument("--mode", choices=MODES, default="auto")
        parser.add_argument("--level", choices=LEVELS, default="nominal")
        parser.add_argument(
            "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B",
            help="bootstrap resamples of units for the 95%% intervals (0: none); alpha is "
            "recomputed in full on each, except that the label-set alphas of multi-label data "
            "hold the expected disagreement at its full-data value",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options: Any) -> None:
        if options["bootstrap"] < 0:
            raise CommandError("--bootstrap must be 0 or more")
        table = self._table(options)
        try:
            report = agreement_report(
                table,
                mode=options["mode"],
                level=options["level"],
                replicates=options["bootstrap"],
                seed=options["seed"],
            )
        except AgreementInputError as exc:
            raise CommandError(str(exc)) from None
        report = to_json_ready(report)
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
        else:
            self.stdout.write(summary(report))

    def _table(self, options: dict[str, Any]):
        if options["input"]:
            for flag in ("round", "codebook_version", "depth"):
                if options[flag] is not None:
                    raise CommandError(f"--{flag.replace('_', '-')} needs --project")
            try:
                return read_long_csv(options["input"])
            except AgreementInputError as exc:
                raise CommandError(str(exc)) from None
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        round_ = version = None
        if options["round"]:
            round_ = Round.objects.filter(project=project, name=options["round"]).first()
            if round_ is None:
                names = ", ".join(project.rounds.values_list("name", flat=True)) or "none"
                raise CommandError(f"no round {options['round']!r} in {project.slug} ({names})")
        if options["codebook_version"] is not None:
            if project.codebook_version is None:
                raise CommandError(f"{project.slug} has no codebook")
            version = CodebookVersion.objects.filter(
                codebook=project.codebook_version.codebook, number=options["codebook_version"]
            ).first()
            if version is None:
                raise CommandError(f"no codebook version {options['codebook_version']}")
        if options["depth"] is not None and options["depth"] < 0:
            raise CommandError("--depth must be 0 or more")
        codings = project_codings(project, round=round_, version=version, depth=options["depth"])
        if len(codings.unit) == 0:
            raise CommandError(f"{project.slug} has no submitted codings to measure")
        return codings


def _fmt(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.3f}")
    )


def _interval(interval: list[float] | None) -> str:
    return f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def summary(report: dict[str, Any]) -> str:
    """The report as a few readable lines."""
    lines = [
        f"mode: {report['mode']} (asked: {report['mode_requested']}); "
        f"units: {report['n_units']} ({report['n_units_pairable']} coded by two or more); "
        f"coders: {report['n_coders']}; codings: {report['n_codings']} "
        f"({report['n_unsure']} unsure)",
        f"Krippendorff's alpha ({report['level']}): {_fmt(report['krippendorff_alpha'])}"
        f"{_interval(report['alpha_ci95'])} from {report['n_pairable_values']} pairable values",
    ]
    if report["mode"] == "multi":
        lines.append(
            f"MASI alpha: {_fmt(report['masi_alpha'])}{_interval(report['masi_alpha_ci95'])}"
        )
    lines.append(f"Fleiss' kappa: {_fmt(report['fleiss_kappa'])} ({report['fleiss_kappa_note']})")
    lines.append(f"percent agreement: {_fmt(report['percent_agreement'])}")
    for pair in report["cohen_kappa"]:
        lines.append(
            f"Cohen's kappa {pair['coder_a']} / {pair['coder_b']}: {_fmt(pair['kappa'])} "
            f"on {pair['n']} units"
        )
    if report["mode"] == "multi":
        lines.append("per code: alpha [95% CI], kappa, agreement, prevalence, units")
        for code, figures in report["per_code"].items():
            lines.append(
                f"  {code or '(none)'}: {_fmt(figures['alpha'])}"
                f"{_interval(figures['alpha_ci95'])}, "
                f"{_fmt(figures['kappa'])}, {_fmt(figures['percent_agreement'])}, "
                f"{_fmt(figures['prevalence'])}, {figures['n_units']}"
            )
    return "\n".join(lines)
