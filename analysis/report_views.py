"""The report page of a project: filters, tables, charts, and the CSV behind each chart.

Admins always see it. Annotators see it (on gold labels only) once an admin has made it
visible, which is allowed only when every unit has a decided gold label.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from coding.access import get_project_for_user
from coding.models import Assignment, Membership, Project, Role, Unit

from . import charts_reports
from .reports import (
    LEVELS,
    PERIODS,
    Basis,
    CodeTree,
    Filters,
    ReportError,
    Term,
    cooccurrence,
    cooccurrence_matrix,
    filter_choices,
    frequency,
    frequency_chart_table,
    mentions,
    mentions_wide,
    parse_basis,
    parse_terms,
    read_applications,
    read_counts,
    read_statement,
    read_thread_texts,
    read_tree,
    to_csv,
    trend,
    trend_chart_table,
    trend_tests,
)

CHARTS = ("frequency", "trend", "cooccurrence")
KINDS = (*CHARTS, "mentions")
TERMS_MAX_CHARS = 5000
MEASURES = [("share", "Share of units in the period"), ("count", "Units")]
PAIR_MEASURES = [("jaccard", "Jaccard (both / either)"), ("both", "Units with both")]


def units_without_gold(project: Project) -> int:
    """Units not yet settled for annotators' eyes: no decided gold label (none, or
    re-opened), or a coder still to code them (a gold label may be decided from one
    coding while another coder's assignment is pending; showing it would unblind them)."""
    units = Unit.objects.filter(project=project)
    no_gold = units.exclude(gold__is_open=False).values("pk")
    pending = units.filter(assignments__status=Assignment.Status.PENDING).values("pk")
    return units.filter(Q(pk__in=no_gold) | Q(pk__in=pending)).count()


def _report_project(request: HttpRequest, slug: str) -> Project:
    project = get_project_for_user(request, slug)
    if project.user_role == Role.ADMIN:
        return project
    if project.reports_visible_to_annotators and units_without_gold(project) == 0:
        return project
    raise PermissionDenied("Only the project's admins may see its reports.")


class ReportForm(forms.Form):
    basis = forms.ChoiceField(label="Basis")
    by = forms.ChoiceField(label="Period", choices=[(p, p.title()) for p in PERIODS])
    level = forms.ChoiceField(label="Codes", choices=[(v, v.title()) for v in LEVELS])
    measure = forms.ChoiceField(label="Trend of", choices=MEASURES)
    pairs = forms.ChoiceField(label="Co-occurrence as", choices=PAIR_MEASURES)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))
    category = forms.ChoiceField(label="Forum category", required=False)
    round = forms.ChoiceField(label="Round", required=False)
    group = forms.ChoiceField(label="Code group", required=False)
    terms = forms.CharField(
        label="Mention terms (one a line: term | aliases)",
        required=False,
        max_length=TERMS_MAX_CHARS,
        widget=forms.Textarea({"rows": 2, "cols": 30}),
    )

    def __init__(self, data, *, project: Project, tree: CodeTree, admin: bool) -> None:
        super().__init__(data)
        bases = [("gold", "Gold labels")]
        if admin:
            coders = Membership.objects.filter(project=project).values_list(
                "user__username", flat=True
            )
            bases += [("all", "All coders' codings")]
            bases += [(f"coder:{name}", f"{name}'s codings") for name in sorted(coders)]
        self.fields["basis"].choices = bases
        choices = filter_choices(project)
        self.fields["category"].choices = [("", "All")] + [(c, c) for c in choices["categories"]]
        self.fields["round"].choices = [("", "All")] + [(r, r) for r in choices["rounds"]]
        frame = tree.frame
        groups = frame[~frame["is_leaf"]]
        self.fields["group"].choices = [("", "All codes")] + [
            (key, ("· " * int(row.depth)) + row.label) for key, row in groups.iterrows()
        ]

    def clean_terms(self) -> list[Term] | None:
        text = self.cleaned_data.get("terms", "")
        if not text.strip():
            return None
        try:
            return parse_terms(text, "terms")
        except ReportError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The date window ends before it starts.")
        return data


def _defaults(tree: CodeTree) -> dict[str, str]:
    level = "categories" if tree.level_keys("categories") else "codes"
    return {"basis": "gold", "by": "month", "level": level, "measure": "share", "pairs": "jaccard"}


@dataclass
class Params:
    basis: Basis
    filters: Filters
    by: str
    level: str
    measure: str
    pairs: str
    terms: list[Term] | None = None

    @classmethod
    def from_form(cls, data: dict) -> Params:
        filters = Filters(
            since=data["since"],
            until=data["until"],
            category=data["category"],
            round=data["round"],
            group=data["group"],
        )
        return cls(
            parse_basis(data["basis"]),
            filters,
            data["by"],
            data["level"],
            data["measure"],
            data["pairs"],
            data.get("terms"),
        )


def _form(request: HttpRequest, project: Project) -> tuple[ReportForm, CodeTree]:
    tree, _ = read_tree(project)
    data = {**_defaults(tree), **{k: v for k, v in request.GET.items() if k != "format"}}
    admin = project.user_role == Role.ADMIN
    return ReportForm(data, project=project, tree=tree, admin=admin), tree


def _codes(tree: CodeTree, params: Params) -> list[str] | None:
    return tree.subtree(params.filters.group) if params.filters.group else None


def chart_table(project: Project, kind: str, params: Params, counts=None) -> dict:
    """The table behind one chart, with what the chart needs besides it."""
    filters = params.filters
    if kind == "mentions":
        if not params.terms:
            raise ReportError("mentions need terms: one a line, then their aliases")
        texts = read_thread_texts(project, filters)
        value = "share" if params.measure == "share" else "mentions"
        table = mentions_wide(mentions(texts, params.terms, params.by), value)
        statement = f"threads of {len(texts)} units, whatever their codes"
        return {"table": table, "tree": None, "statement": statement}
    if kind == "cooccurrence":
        tree, _ = read_tree(project)
        pairs = cooccurrence(
            read_applications(project, params.basis, filters),
            tree,
            params.level,
            _codes(tree, params),
        )
        return {"table": cooccurrence_matrix(pairs, params.pairs), "tree": tree}
    if counts is None:
        counts = read_counts(project, params.basis, filters, monthly=kind == "trend")
    tree = counts.tree
    if kind == "frequency":
        table = frequency_chart_table(frequency(counts, _codes(tree, params)), tree, params.level)
        return {"table": table, "tree": tree}
    long = trend(counts, params.by, _codes(tree, params))
    table = trend_chart_table(long, tree, params.level, params.measure)
    levels = set(tree.level_keys(params.level))
    tests = trend_tests(long[long["code"].isin(levels)])
    return {"table": table, "tree": tree, "tests": tests}


def _figure(kind: str, data: dict, params: Params):
    table = data["table"]
    if kind == "mentions":
        label = "share of threads" if params.measure == "share" else "threads"
        return charts_reports.trend_chart(table, {}, f"{label} per {params.by}")
    colors = data["tree"].frame["color"].to_dict()
    if kind == "frequency":
        return charts_reports.frequency_chart(table, colors)
    if kind == "trend":
        label = "share of units" if params.measure == "share" else "units"
        return charts_reports.trend_chart(table, colors, f"{label} per {params.by}")
    return charts_reports.cooccurrence_chart(table, params.pairs)


def _rows(table: pd.DataFrame) -> dict:
    """The table exactly as its CSV download says it: header and rows of strings."""
    reader = list(csv.reader(io.StringIO(to_csv(table))))
    return {"header": reader[0] if reader else [], "rows": reader[1:]}


def _bad_request(request: HttpRequest, project: Project, form: ReportForm, error: str = ""):
    """The page (or, for htmx, its body) saying what is wrong with the filters."""
    context = {"project": project, "form": form, "error": error or "Check the filters."}
    context["is_admin"] = project.user_role == Role.ADMIN
    if request.htmx:
        return render(request, "analysis/report.html#report-body", context)
    return render(request, "analysis/report.html", context, status=400)


@require_http_methods(["GET", "POST"])
@login_required
def report(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "POST":
        return _set_visibility(request, slug)
    project = _report_project(request, slug)
    try:
        form, _ = _form(request, project)
    except ReportError as exc:
        context = {"project": project, "form": None, "error": str(exc)}
        return render(request, "analysis/report.html", context)
    if not form.is_valid():
        return _bad_request(request, project, form)
    params = Params.from_form(form.cleaned_data)
    try:
        counts = read_counts(project, params.basis, params.filters)
        statement = read_statement(project, params.basis, params.filters)
        kinds = KINDS if params.terms else CHARTS
        tables = {kind: chart_table(project, kind, params, counts) for kind in kinds}
    except ReportError as exc:
        return _bad_request(request, project, form, str(exc))
    query = request.GET.copy()
    query.pop("format", None)
    context = {
        "project": project,
        "form": form,
        "statement": statement,
        "query": query.urlencode(),
        "charts": [{"kind": kind, **_rows(tables[kind]["table"])} for kind in kinds],
        "mentions_statement": tables.get("mentions", {}).get("statement", ""),
        "tests": tables["trend"]["tests"].to_dict("records"),
        "is_admin": project.user_role == Role.ADMIN,
        "missing_gold": units_without_gold(project) if project.user_role == Role.ADMIN else 0,
    }
    template = "analysis/report.html"
    if request.htmx:
        template += "#report-body"
    return render(request, template, context)


def _set_visibility(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    show = request.POST.get("visible") == "1"
    if show:
        missing = units_without_gold(project)
        if missing or not Unit.objects.filter(project=project).exists():
            messages.error(
                request,
                "Reports stay hidden from annotators until coding and adjudication are "
                f"complete: {missing} units have no decided gold label or a coder still "
                "to code them.",
            )
            return redirect("report", slug=project.slug)
    Project.objects.filter(pk=project.pk).update(reports_visible_to_annotators=show)
    messages.success(
        request,
        "Annotators can now see the reports (gold labels only)."
        if show
        else "Reports are hidden from annotators.",
    )
    return redirect("report", slug=project.slug)


def _chart_request(request: HttpRequest, slug: str, kind: str):
    project = _report_project(request, slug)
    if kind not in KINDS:
        return project, None, HttpResponse("Unknown chart.", status=404, content_type="text/plain")
    try:
        form, _ = _form(request, project)
    except ReportError as exc:
        return project, None, HttpResponse(str(exc), status=400, content_type="text/plain")
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        response = HttpResponse(f"Bad filters: {errors}", status=400, content_type="text/plain")
        return project, None, response
    params = Params.from_form(form.cleaned_data)
    try:
        return project, (params, chart_table(project, kind, params)), None
    except ReportError as exc:
        return project, None, HttpResponse(str(exc), status=400, content_type="text/plain")


def _filename(project: Project, kind: str, params: Params, ext: str) -> str:
    return f"{project.slug}-{kind}-{str(params.basis).replace(':', '-')}.{ext}"


@require_GET
@login_required
def report_chart(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    fmt = request.GET.get("format", "svg")
    if fmt not in charts_reports.FORMATS:
        return HttpResponse(
            "format must be one of: svg, png, pdf", status=400, content_type="text/plain"
        )
    project, result, error = _chart_request(request, slug, kind)
    if error:
        return error
    params, data = result
    body = charts_reports.render(_figure(kind, data, params), fmt)
    response = HttpResponse(body, content_type=charts_reports.FORMATS[fmt])
    if fmt != "svg" or request.GET.get("download"):
        name = _filename(project, kind, params, fmt)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@login_required
def report_csv(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    project, result, error = _chart_request(request, slug, kind)
    if error:
        return error
    params, data = result
    response = HttpResponse(to_csv(data["table"]), content_type="text/csv; charset=utf-8")
    name = _filename(project, kind, params, "csv")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
