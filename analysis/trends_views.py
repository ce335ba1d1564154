"""The trends page: forum mentions vs Hub uploads per model type, and model-card shares."""

from __future__ import annotations

import re
import tempfile
from datetime import timedelta
from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from coding import audit
from coding.access import staff_required
from coding.hub_tasks import start_hub_import
from coding.importers.hub import HubDataError, import_dump
from coding.models import ImportRun, ModelTypeRule

from . import trends, trends_charts

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9 ._\-]{0,98}[a-z0-9]$|^[a-z0-9]$")
# A run that has shown no sign of life for this long was stopped; it may be continued.
STALE_AFTER = timedelta(minutes=2)


class HubImportForm(forms.Form):
    since = forms.DateField(
        required=False, label="Created on or after", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Created on or before", widget=forms.DateInput(attrs={"type": "date"})
    )
    max_models = forms.IntegerField(
        required=False, min_value=1, max_value=10_000_000, label="At most (models)"
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "This date is before the start of the window.")
        return data


def _latest_hub_run() -> ImportRun | None:
    return ImportRun.objects.filter(kind=ImportRun.Kind.HUB).order_by("-created_at").first()


def _hub_run_context(run: ImportRun | None) -> dict:
    total = run.topics_total if run else None
    return {
        "hub_run": run,
        "hub_percent": round(100 * run.topics_done / total) if run and total else 0,
        "hub_poll": bool(run and run.is_active),
    }


@require_GET
@login_required
def trends_page(request: HttpRequest) -> HttpResponse:
    if request.htmx and request.GET.get("part") == "hub-run" and request.user.is_staff:
        return render(request, "analysis/trends.html#hub-run", _hub_run_context(_latest_hub_run()))
    context = {"figures": trends.page_figures()}
    if request.user.is_staff:
        context |= {"hub_form": HubImportForm(), **_hub_run_context(_latest_hub_run())}
    return render(request, "analysis/trends.html", context)


@staff_required
@require_POST
def start_hub_run(request: HttpRequest) -> HttpResponse:
    """Queue a live Hub import for the task worker; its progress shows on the trends page."""
    form = HubImportForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}" if label else " ".join(errors))
        return redirect("trends")
    busy = ImportRun.objects.filter(kind=ImportRun.Kind.HUB).filter(
        Q(state=ImportRun.State.QUEUED)
        | Q(state__in=ImportRun.ACTIVE_STATES, heartbeat_at__gte=timezone.now() - STALE_AFTER)
    )
    if busy.exists():
        messages.error(request, f"Hub import #{busy.first().pk} is still running.")
        return redirect("trends")
    run = start_hub_import(user=request.user, **form.cleaned_data)
    audit.record(request, audit.Action.IMPORT, run, source="hub")
    messages.success(request, f"Hub import #{run.pk} queued.")
    return redirect("trends")


@require_GET
@login_required
def trends_chart(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    if fmt not in trends_charts.FORMATS:
        raise Http404("No such format.")
    if name == "hub":
        body = trends_charts.series_chart(
            trends.hub_created_table(), ylabel="models created", fmt=fmt
        )
    elif name == "forum":
        body = trends_charts.series_chart(
            trends.forum_mentions_table(), ylabel="threads mentioning", fmt=fmt
        )
    elif name == "totals":
        comparison = trends.forum_vs_hub(
            trends.forum_mentions_table(), trends.hub_created_table(), matched_window=False
        )
        body = trends_charts.totals_chart(comparison.totals, fmt=fmt)
    elif name == "cards":
        body = trends_charts.cards_chart(trends.card_shares("month"), fmt=fmt)
    else:
        raise Http404("No such chart.")
    response = HttpResponse(body, content_type=trends_charts.FORMATS[fmt])
    # Figures change with every import and review: the browser asks again each time.
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
@login_required
def trends_table(request: HttpRequest, name: str) -> HttpResponse:
    if name == "hub":
        text = trends.wide_csv(trends.hub_created_table())
    elif name == "forum":
        text = trends.wide_csv(trends.forum_mentions_table())
    elif name == "cards-month":
        text = trends.card_shares_csv(trends.card_shares("month"), "month")
    elif name == "cards-year":
        text = trends.card_shares_csv(trends.card_shares("year"), "year")
    else:
        raise Http404("No such table.")
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@staff_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest) -> HttpResponse:
    """Staff decide, name by name, whether an ambiguous model-type name is counted."""
    error = ""
    if request.method == "POST":
        error = _save_rule(request)
        if not error and not request.htmx:
            messages.success(request, f"Saved the decision on “{request.POST['name']}”.")
            return redirect("trends_review")
    rows = trends.review_rows()
    template = "analysis/trends_review.html"
    context = {"rows": rows, "types": trends.known_types(), "error": error}
    if request.htmx and request.method == "POST":
        name = " ".join(request.POST.get("name", "").lower().split())
        context["row"] = next((r for r in rows if r.name == name), None)
        template += "#review-row"
    # htmx swaps only successful answers: the row itself carries the message.
    status = 400 if error and not request.htmx else 200
    return render(request, template, context, status=status)


def _save_rule(request: HttpRequest) -> str:
    name = " ".join(request.POST.get("name", "").lower().split())
    action = request.POST.get("action", "")
    maps_to = " ".join(request.POST.get("maps_to", "").lower().split())
    note = request.POST.get("note", "").strip()[:500]
    if not NAME_RE.match(name):
        return "A name is 1 to 100 letters, digits, spaces, dots, dashes or underscores."
    if action not in ModelTypeRule.Action.values:
        return "Choose whether to count, exclude or map the name."
    if action == ModelTypeRule.Action.MAP:
        if maps_to not in trends.known_types() or maps_to == name:
            return f"Choose the type that “{name}” should count as."
    else:
        maps_to = ""
    ModelTypeRule.objects.update_or_create(
        name=name,
        defaults={"action": action, "maps_to": maps_to, "note": note, "reviewed_by": request.user},
    )
    return ""


@staff_required
@require_POST
def import_hub_dump(request: HttpRequest) -> HttpResponse:
    """A JSONL or CSV dump of Hub metadata, validated whole before anything is written."""
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a JSONL or CSV file to import.")
        return redirect("trends")
    suffix = ".csv" if upload.name.lower().endswith(".csv") else ".jsonl"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        try:
            counts = import_dump(path)
        except HubDataError as exc:
            messages.error(request, str(exc).replace(str(path), upload.name))
            return redirect("trends")
    audit.record(request, audit.Action.IMPORT, None, file=upload.name, result=counts.summary_line())
    messages.success(request, f"{upload.name}: {counts.summary_line()}")
    return redirect("trends")
