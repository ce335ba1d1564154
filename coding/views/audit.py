"""The audit log pages: the whole site's for staff, one project's for its admins."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..access import get_project_for_user, staff_required
from ..models import AuditEvent
from ..paging import page_of

EVENTS_PER_PAGE = 100


def _page(request: HttpRequest, events, project=None) -> HttpResponse:
    # The action filter is one of the known actions or nothing: no user text reaches a lookup.
    action = request.GET.get("action", "")
    if action in AuditEvent.Action.values:
        events = events.filter(action=action)
    else:
        action = ""
    events = events.select_related("project").order_by("-at", "-id")
    page = page_of(Paginator(events, EVENTS_PER_PAGE), request.GET.get("page"))
    context = {
        "page": page,
        "project": project,
        "actions": AuditEvent.Action.choices,
        "action": action,
    }
    return render(request, "coding/audit_log.html", context)


@require_GET
@staff_required
def audit_log(request: HttpRequest) -> HttpResponse:
    return _page(request, AuditEvent.objects.all())


@require_GET
@login_required
def project_audit_log(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    return _page(request, AuditEvent.objects.filter(project=project), project)
