"""Pages of long lists, as people ask for them in the address bar."""

from __future__ import annotations

from django.core.paginator import Page, Paginator


def page_of(paginator: Paginator, number: str | None) -> Page:
    """The page ``number`` asks for: a page past the end is the last page, a number
    below 1 the first, and anything that is not a number the first (Django's
    ``get_page`` sends numbers below 1 to the last page)."""
    try:
        wanted = int(number or 1)
    except (TypeError, ValueError):
        wanted = 1
    return paginator.get_page(max(wanted, 1))
