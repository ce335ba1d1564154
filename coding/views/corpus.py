"""The corpus: browsing, searching and reading threads."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from ..models import Thread


@require_GET
@login_required
def thread_detail(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_object_or_404(Thread.objects.select_related("source"), pk=pk)
    posts = thread.posts.all()
    return render(request, "coding/thread.html", {"thread": thread, "posts": posts})
