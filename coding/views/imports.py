"""Staff pages to start live forum imports in the background and watch them.

A run's state lives in the database, so its page survives reloads and worker restarts;
the page also says when a queued run has not been picked up by a worker.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit
from ..access import staff_required
from ..importers.discourse import (
    DEFAULT_RATE,
    ImportBusy,
    ImportOptions,
    check_public_host,
    is_stale,
    normalize_base_url,
    queued_unclaimed_for,
)
from ..models import ImportRun
from ..tasks import start_discourse_import

RUNS_SHOWN = 50
UNCLAIMED_WARNING = timedelta(seconds=10)
_NAME = re.compile(r"^[\w.-]{1,100}$")


class DiscourseImportForm(forms.Form):
    base_url = forms.CharField(
        label="Forum address",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://discuss.huggingface.co"}),
    )
    categories = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Category slugs or ids, separated by spaces or commas (subcategories included).",
    )
    tags = forms.CharField(
        required=False, max_length=1000, help_text="Tags, separated by spaces or commas."
    )
    since = forms.DateField(
        required=False, label="Created on or after", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Created on or before", widget=forms.DateInput(attrs={"type": "date"})
    )
    max_topics = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    rate = forms.FloatField(
        initial=DEFAULT_RATE,
        min_value=0.05,
        max_value=10,
        label="Requests per second",
        help_text="About 1 per second is polite for an anonymous importer.",
    )
    refresh = forms.BooleanField(
        required=False,
        help_text="Re-fetch every topic in the window to pick up silent edits and deletions.",
    )

    def clean_base_url(self) -> str:
        try:
            base_url = normalize_base_url(self.cleaned_data["base_url"])
            if not settings.IMPORT_ALLOW_PRIVATE_HOSTS:
                check_public_host(base_url)
        except ValueError as exc:
            raise forms.ValidationError(str(exc).capitalize() + ".") from None
        return base_url

    def _names(self, field: str) -> list[str]:
        names = [n for n in re.split(r"[\s,]+", self.cleaned_data.get(field) or "") if n]
        bad = [n for n in names if not _NAME.match(n)]
        if bad:
            raise forms.ValidationError(
                f"“{bad[0][:40]}” is not a valid name (letters, digits, - _ . only)."
            )
        return names

    def clean_categories(self) -> list[str]:
        return self._names("categories")

    def clean_tags(self) -> list[str]:
        return self._names("tags")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "This date is before the start of the window.")
        return data

    def options(self) -> ImportOptions:
        data = self.cleaned_data
        return ImportOptions(
            base_url=data["base_url"],
            categories=data["categories"],
            tags=data["tags"],
            since=data["since"],
            until=data["until"],
            max_topics=data["max_topics"],
            rate=data["rate"],
            refresh=data["refresh"],
        )


@staff_required
@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    form = DiscourseImportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = start_discourse_import(form.options(), request.user)
        except ImportBusy as exc:
            form.add_error(None, str(exc).capitalize() + ".")
        else:
            audit.record(request, audit.Action.IMPORT, run, base_url=run.params.get("base_url"))
            messages.success(request, f"Import #{run.pk} queued.")
            return redirect("import_detail", pk=run.pk)
    runs = ImportRun.objects.select_related("source", "created_by")[:RUNS_SHOWN]
    return render(request, "coding/imports.html", {"form": form, "runs": runs})


def _status(run: ImportRun) -> dict:
    now = timezone.now()
    unclaimed = queued_unclaimed_for(run, now)
    total = run.topics_total
    return {
        "run": run,
        "stale": is_stale(run, now),
        "unclaimed": unclaimed if unclaimed and unclaimed > UNCLAIMED_WARNING else None,
        "percent": round(100 * run.topics_done / total) if total else (100 if total == 0 else 0),
        "heartbeat_age": (now - run.heartbeat_at) if run.heartbeat_at else None,
        "poll": run.is_active,
    }


def _get_run(pk: int) -> ImportRun:
    return get_object_or_404(ImportRun.objects.select_related("source", "created_by"), pk=pk)


@staff_required
@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run(pk)
    template = "coding/import_detail.html"
    if request.htmx:
        template += "#run-progress"
    return render(request, template, _status(run))


@staff_required
@require_POST
def import_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run(pk)
    if run.is_active:
        ImportRun.objects.filter(pk=pk).update(cancel_requested=True)
        if run.state == ImportRun.State.QUEUED or is_stale(run):
            # Nobody is working on it: close it now rather than wait for a worker.
            ImportRun.objects.filter(pk=pk, state__in=ImportRun.ACTIVE_STATES).update(
                state=ImportRun.State.CANCELLED, message="Cancelled.", finished_at=timezone.now()
            )
        run = _get_run(pk)
    if request.htmx:
        return render(request, "coding/import_detail.html#run-progress", _status(run))
    return redirect("import_detail", pk=pk)


@staff_required
@require_POST
def import_resume(request: HttpRequest, pk: int) -> HttpResponse:
    """Start the same import again; it resumes where an interrupted run stopped."""
    run = _get_run(pk)
    if run.kind != ImportRun.Kind.DISCOURSE:
        raise Http404("Only forum imports can be resumed here.")
    try:
        new_run = start_discourse_import(ImportOptions.from_params(run.params), request.user)
    except ImportBusy as exc:
        messages.error(request, str(exc).capitalize() + ".")
        return redirect("import_detail", pk=pk)
    audit.record(request, audit.Action.IMPORT, new_run, resumes=run.pk)
    messages.success(request, f"Import #{new_run.pk} queued; it continues run #{run.pk}.")
    return redirect("import_detail", pk=new_run.pk)
