"""The agreement page of a project (admins only) and its chart."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from coding.access import get_project_for_user
from coding.models import CodebookVersion, Coding, Project, Round

from . import charts
from .agreement import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    AgreementInputError,
    agreement_report,
    methods_paragraph,
    to_json_ready,
)
from .codings import CATEGORY_DEPTH, code_labels, project_codings

TREE_LEVELS = [("coded", "Codes as applied"), ("category", "Categories")]


class AgreementForm(forms.Form):
    """Filters from allow-lists: the project's rounds and the codebook versions coded."""

    round = forms.ChoiceField(label="Round", required=False)
    version = forms.ChoiceField(label="Codebook version", required=False)
    level = forms.ChoiceField(label="Level", choices=TREE_LEVELS, required=False)

    def __init__(self, data, *, rounds: list[Round], versions: list[CodebookVersion]):
        super().__init__(data)
        self.fields["round"].choices = [("", "All rounds")] + [(str(r.pk), r.name) for r in rounds]
        self.fields["version"].choices = [("", "All versions")] + [
            (str(v.pk), f"Version {v.number}") for v in versions
        ]


@dataclass
class Scope:
    round: Round | None
    version: CodebookVersion | None
    category: bool

    def describe(self) -> str:
        parts = []
        if self.round:
            parts.append(f"round {self.round.name}")
        if self.version:
            parts.append(f"codebook version {self.version.number}")
        parts.append("codes rolled up to categories" if self.category else "codes as applied")
        return "; " + ", ".join(parts)


def _scope(request: HttpRequest, project: Project) -> tuple[AgreementForm, Scope]:
    rounds = list(project.rounds.all())
    version_ids = (
        Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
        .values("codebook_version")
        .distinct()
    )
    versions = list(CodebookVersion.objects.filter(pk__in=version_ids).order_by("number"))
    data = request.GET.copy()
    if "version" not in data and project.codebook_version_id in {v.pk for v in versions}:
        data["version"] = str(project.codebook_version_id)
    form = AgreementForm(data, rounds=rounds, versions=versions)
    if not form.is_valid():
        return form, Scope(None, None, False)
    by_pk = {str(r.pk): r for r in rounds}
    versions_by_pk = {str(v.pk): v for v in versions}
    return form, Scope(
        by_pk.get(form.cleaned_data["round"]),
        versions_by_pk.get(form.cleaned_data["version"]),
        form.cleaned_data["level"] == "category",
    )


def project_report(project: Project, scope: Scope) -> dict[str, Any] | None:
    """The multi-label report for the scope, cached until a coding in it changes."""
    codings = Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
    if scope.round:
        codings = codings.filter(unit__round=scope.round)
    if scope.version:
        codings = codings.filter(codebook_version=scope.version)
    stamp = codings.aggregate(n=Count("id"), last=Max("updated_at"))
    if not stamp["n"]:
        return None
    scope_key = (
        f"{project.pk}:{scope.round and scope.round.pk}:{scope.version and scope.version.pk}:"
        f"{scope.category}:{stamp['n']}:{stamp['last']}"
    )
    key = "agreement:" + hashlib.sha256(scope_key.encode()).hexdigest()
    report = cache.get(key)
    if report is None:
        codings = project_codings(
            project,
            round=scope.round,
            version=scope.version,
            depth=CATEGORY_DEPTH if scope.category else None,
        )
        report = to_json_ready(
            agreement_report(codings, mode="multi", replicates=DEFAULT_BOOTSTRAP, seed=DEFAULT_SEED)
        )
        cache.set(key, report, 60 * 60)
    return report


def _code_rows(report: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for code, figures in report["per_code"].items():
        interval = figures["alpha_ci95"] or [None, None]
        rows.append(
            {
                "key": code,
                "label": labels.get(code, code),
                **figures,
                "low": interval[0],
                "high": interval[1],
            }
        )
    return rows


def _pair_matrix(report: dict[str, Any]) -> dict[str, Any]:
    coders = sorted({p["coder_a"] for p in report["cohen_kappa"]} | {
        p["coder_b"] for p in report["cohen_kappa"]
    })  # fmt: skip
    pairs = {(p["coder_a"], p["coder_b"]): p for p in report["cohen_kappa"]}
    rows = []
    for a in coders:
        cells = []
        for b in coders:
            cells.append(pairs.get((a, b)) or pairs.get((b, a)) if a != b else None)
        rows.append({"coder": a, "cells": cells})
    return {"coders": coders, "rows": rows}


@require_GET
@login_required
def agreement_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    form, scope = _scope(request, project)
    context: dict[str, Any] = {"project": project, "form": form, "query": request.GET.urlencode()}
    try:
        report = project_report(project, scope) if form.is_valid() else None
    except AgreementInputError as exc:
        report, context["error"] = None, str(exc)
    if report is not None:
        labels = code_labels(project, scope.version)
        context.update(
            report=report,
            codes=sorted(_code_rows(report, labels), key=lambda r: r["label"].lower()),
            pairs=_pair_matrix(report),
            ranking=[
                {**r, "label": labels.get(r["code"], r["code"]), "percent": round(100 * r["share"])}
                for r in report["disagreement_ranking"][:10]
            ],
            methods=methods_paragraph(report, scope=scope.describe()),
        )
    template = "analysis/agreement.html"
    if request.htmx:
        template += "#agreement-body"
    return render(request, template, context)


@require_GET
@login_required
def agreement_chart(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    fmt = request.GET.get("format", "svg")
    if fmt not in charts.FORMATS:
        fmt = "svg"
    form, scope = _scope(request, project)
    report = project_report(project, scope) if form.is_valid() else None
    rows = [] if report is None else _code_rows(report, code_labels(project, scope.version))
    response = HttpResponse(charts.alpha_chart(rows, fmt), content_type=charts.FORMATS[fmt])
    response["Cache-Control"] = "private, max-age=60"
    return response
