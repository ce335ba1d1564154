from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..models import ForumSource, Membership, Post, Thread

# A script's request for something the user may no longer reach: a save to a unit of a
# project they were taken off, or that was removed. Says no more than a 404 page would.
GONE = (
    "Not saved: this is no longer available to you (it was removed, or you were taken "
    "off its project). Your changes are kept in this browser."
)
# A page's form token no longer matches the session: the user signed out, or signed in
# again in another tab, since the page was opened.
STALE_PAGE = (
    "Not saved: this page is out of date with your sign-in (you signed in again since "
    "opening it). Your changes are kept in this browser; reload the page to save them."
)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .annotate(member_count=Count("project__memberships"))
    )
    context = {
        "memberships": memberships,
        "source_count": ForumSource.objects.count(),
        "thread_count": Thread.objects.count(),
        "post_count": Post.objects.count(),
    }
    return render(request, "coding/home.html", context)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    Thread.objects.exists()
    return HttpResponse("ok", content_type="text/plain")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", {"reason": _reason(exception)}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.content_type == "application/json":
        return JsonResponse({"error": GONE}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors may run here: the failure may be in one of them.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.content_type == "application/json":
        return JsonResponse({"error": STALE_PAGE}, status=403)
    return render(request, "403_csrf.html", status=403)


def _reason(exception: Exception | None) -> str:
    message = str(exception) if exception else ""
    return message if message and not message.startswith("<") else ""
