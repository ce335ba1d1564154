"""The corpus: browsing, searching and reading threads."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from ..models import ForumSource, Tag, Thread
from ..paging import page_of
from ..search import has_words, search_threads, thread_categories

PAGE_SIZE = 50
# Sort keys users may ask for, and the columns behind them: nothing else reaches order_by.
SORTS = {
    "newest": ("Newest first", ("-created_at", "-id")),
    "oldest": ("Oldest first", ("created_at", "id")),
    "activity": ("Recent activity", ("-bumped_at", "-id")),
    "posts": ("Most posts", ("-posts_count", "-id")),
    "views": ("Most views", ("-views", "-id")),
}
ACCEPTED = [("", "Any"), ("yes", "Has an accepted answer"), ("no", "No accepted answer")]


class CorpusFilterForm(forms.Form):
    """Search, filters and sort of the corpus list; choices are allow-lists from the data."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    source = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    category = forms.ChoiceField(required=False)
    tag = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    accepted = forms.ChoiceField(required=False, choices=ACCEPTED, label="Accepted answer")
    sort = forms.ChoiceField(
        required=False, choices=[(k, label) for k, (label, _) in SORTS.items()]
    )

    def __init__(self, data, *, sources, categories, tags) -> None:
        super().__init__(data)
        self.fields["source"].choices = [("", "All sources")] + [(s.pk, s.name) for s in sources]
        self.fields["category"].choices = [("", "All categories")] + [
            (c, c) for c in categories if c
        ]
        self.fields["tag"].choices = [("", "All tags")] + [(t, t) for t in tags]

    def clean_q(self) -> str:
        text = self.cleaned_data["q"]
        if text and not has_words(text):
            # The index holds words only: punctuation or emoji alone would match nothing
            # useful, and silently showing every thread would look like a match.
            raise forms.ValidationError(f"“{text}” has no letters or digits to search for")
        return text

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the date window is before its start.")
        return data

    def filter(self, threads: QuerySet) -> QuerySet:
        """Apply the valid fields; invalid ones are reported by the form and ignored."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("q"):
            threads = search_threads(threads, data["q"], connection.vendor)
        if data.get("source"):
            threads = threads.filter(source_id=data["source"])
        if data.get("category"):
            threads = threads.filter(category=data["category"])
        if data.get("tag"):
            threads = threads.filter(tags__name=data["tag"])
        if data.get("since"):
            threads = threads.filter(created_at__gte=datetime.combine(data["since"], time(), UTC))
        if data.get("until"):
            end = datetime.combine(data["until"], time(), UTC) + timedelta(days=1)
            threads = threads.filter(created_at__lt=end)
        if data.get("accepted"):
            threads = threads.filter(has_accepted_answer=data["accepted"] == "yes")
        return threads.order_by(*SORTS[data.get("sort") or "newest"][1])


def _corpus_form(request: HttpRequest) -> CorpusFilterForm:
    sources = list(ForumSource.objects.only("pk", "name"))
    categories = thread_categories(connection)
    tags = Tag.objects.order_by("name").values_list("name", flat=True)
    form = CorpusFilterForm(request.GET, sources=sources, categories=categories, tags=tags)
    form.is_valid()
    return form


@require_GET
@login_required
def corpus_list(request: HttpRequest) -> HttpResponse:
    """Every thread, searchable and filterable; the same number of queries at any size."""
    form = _corpus_form(request)
    threads = form.filter(Thread.objects.all())
    totals = threads.order_by().aggregate(threads=Count("id"), posts=Sum("posts_count"))
    paginator = Paginator(threads.select_related("source").prefetch_related("tags"), PAGE_SIZE)
    # The count is known already; telling the paginator saves a second COUNT query.
    paginator.count = totals["threads"]
    page = page_of(paginator, request.GET.get("page"))
    context = {"form": form, "page": page, "totals": totals}
    template = "coding/corpus_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#corpus-results"
    response = render(request, template, context)
    # Page and fragment share a URL: the browser must not serve one for the other on "back".
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
@login_required
def thread_detail(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_object_or_404(Thread.objects.select_related("source"), pk=pk)
    posts = list(thread.posts.all())
    tags = [t.name for t in thread.tags.all()]
    # Only web links lead to the forum, whichever importer wrote the URL.
    original = thread.url.rstrip("/") if thread.url.startswith(("https://", "http://")) else ""
    context = {"thread": thread, "posts": posts, "tags": tags, "original": original}
    return render(request, "coding/thread.html", context)
