"""The product's URLs plus two floors for the benchmarks.

- ``floor``: a minimal view doing one insert, the floor of the coding loop (issue #6).
- ``corpus_floor``: the least the corpus browser must do for the same GET parameters, in
  raw SQL and a one-line-per-row template: count the matching threads and their posts,
  fetch the 50 rows of the requested page, render them. With a search term both queries
  are restricted to the full-text matches of the database's own index (FTS5 on SQLite,
  the stored tsvector column on PostgreSQL), as coding/search.py does for the page.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template import Context, Template
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from coding.search import PG_THREADS_MATCHING, SQLITE_THREADS_MATCHING, fts5_query
from config.urls import urlpatterns as product_urlpatterns

FLOOR_TABLE = "bench_floor"
CORPUS_FLOOR_URL = "/bench-corpus-floor/"
CORPUS_PAGE_SIZE = 50
# The corpus browser's sort keys as SQL (coding/views/corpus.py SORTS), ties broken by id.
CORPUS_SORTS = {
    "newest": "created_at DESC, id DESC",
    "oldest": "created_at, id",
    "activity": "bumped_at DESC, id DESC",
    "posts": "posts_count DESC, id DESC",
    "views": "views DESC, id DESC",
}
# Parameters of the page that the floor does not implement; asking for them is an error
# rather than a silently different query.
UNSUPPORTED = ("tag",)
FLOOR_TEMPLATE = """<table>{% for id, title, created, category, posts in rows %}
<tr><td><a href="/threads/{{ id }}/">{{ title }}</a></td><td>{{ category }}</td>
<td>{{ created }}</td><td>{{ posts }}</td></tr>{% endfor %}</table><p>{{ count }} {{ total }}</p>"""
_WORD = re.compile(r"\w", re.UNICODE)


class FloorInputError(ValueError):
    """A GET parameter the corpus floor cannot turn into the page's query."""


@csrf_exempt
def floor(request: HttpRequest) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (at) VALUES (%s)", [time.time()])  # noqa: S608
    return HttpResponse("ok", content_type="text/plain")


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FloorInputError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def corpus_where(get) -> tuple[str, list]:
    """The WHERE clause (empty or starting with a space) and parameters of the corpus
    browser's filters: q, source, category, since, until, accepted."""
    for name in UNSUPPORTED:
        if get.get(name):
            raise FloorInputError(f"{name}: the corpus floor does not filter by {name}")
    clauses: list[str] = []
    params: list = []
    text = get.get("q", "")
    if connection.vendor == "sqlite" and (query := fts5_query(text)):
        clauses.append(f"id IN ({SQLITE_THREADS_MATCHING})")
        params += [query, query]
    elif connection.vendor == "postgresql" and _WORD.search(text):
        clauses.append(f"id IN ({PG_THREADS_MATCHING})")
        params += [text, text]
    elif text and connection.vendor not in ("sqlite", "postgresql"):
        raise FloorInputError(f"q: no full-text search on {connection.vendor}")
    if get.get("source"):
        if not get["source"].isdigit():
            raise FloorInputError(f"source: {get['source']!r} is not a source id")
        clauses.append("source_id = %s")
        params.append(int(get["source"]))
    if get.get("category"):
        clauses.append("category = %s")
        params.append(get["category"])
    adapt = connection.ops.adapt_datetimefield_value
    if get.get("since"):
        since = datetime.combine(_day("since", get["since"]), datetime.min.time(), UTC)
        clauses.append("created_at >= %s")
        params.append(adapt(since))
    if get.get("until"):
        until = datetime.combine(_day("until", get["until"]), datetime.min.time(), UTC)
        clauses.append("created_at < %s")
        params.append(adapt(until + timedelta(days=1)))
    accepted = get.get("accepted", "")
    if accepted not in ("", "yes", "no"):
        raise FloorInputError(f"accepted: {accepted!r} is not one of yes, no")
    if accepted:
        clauses.append("has_accepted_answer = %s")
        params.append(accepted == "yes")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def corpus_floor_rows(get) -> tuple[int, int | None, list[tuple]]:
    """The count and post total of the filtered threads, and the rows of the requested
    page (an out-of-range page gives the last one, as the page's paginator does)."""
    where, params = corpus_where(get)
    sort = get.get("sort") or "newest"
    if sort not in CORPUS_SORTS:
        raise FloorInputError(f"sort: {sort!r} is not one of {', '.join(CORPUS_SORTS)}")
    page = get.get("page") or "1"
    if not page.isdigit() or int(page) < 1:
        raise FloorInputError(f"page: {page!r} is not a page number")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), SUM(posts_count) FROM coding_thread" + where,  # noqa: S608
            params,
        )
        count, total = cursor.fetchone()
        last = max(1, -(-count // CORPUS_PAGE_SIZE))
        cursor.execute(
            "SELECT id, title, created_at, category, posts_count FROM coding_thread"  # noqa: S608
            + where
            + f" ORDER BY {CORPUS_SORTS[sort]} LIMIT %s OFFSET %s",
            [*params, CORPUS_PAGE_SIZE, (min(int(page), last) - 1) * CORPUS_PAGE_SIZE],
        )
        rows = cursor.fetchall()
    return count, total, rows


@functools.cache
def _floor_template() -> Template:
    return Template(FLOOR_TEMPLATE)


def corpus_floor(request: HttpRequest) -> HttpResponse:
    """The corpus browser's floor: its two unavoidable queries and a one-line template."""
    try:
        count, total, rows = corpus_floor_rows(request.GET)
    except FloorInputError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    html = _floor_template().render(Context({"rows": rows, "count": count, "total": total}))
    return HttpResponse(html)


FLOOR_COUNTS = re.compile(r"<p>(\d+) (\d+|None)</p>\Z")
FLOOR_IDS = re.compile(r'<a href="/threads/(\d+)/">')


def parse_corpus_floor(html: str) -> tuple[int, list[int]]:
    """The count and the thread ids, in order, of a corpus floor response."""
    counts = FLOOR_COUNTS.search(html)
    if not counts:
        raise ValueError("not a corpus floor response")
    return int(counts.group(1)), [int(pk) for pk in FLOOR_IDS.findall(html)]


urlpatterns = [
    path("bench-floor/", floor),
    path(CORPUS_FLOOR_URL.strip("/") + "/", corpus_floor),
    *product_urlpatterns,
]
