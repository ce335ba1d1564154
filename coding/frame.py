"""The site's frame (``base.html``) around the coding screen, rendered once per user.

The frame of a signed-in page differs between users only in who they are, and between
pages only in the CSRF token and the messages waiting. The coding screen, opened
hundreds of times a day by each coder, renders it once per user with a mark where each
of the page's blocks goes and where the token goes, keeps it, and fills it per page:
with the page's blocks, rendered by the page's own template into ``frame_slots.html``
(which holds the blocks and nothing else), and with a freshly masked token, as Django's
own tag gives. A page with messages waiting renders whole, as every other page does.

Django sends the CSRF cookie again with every page that shows a token, to push its
expiry (a year) further. These pages send it only when the browser lacks it or holds a
stale form of it: the other pages, the sign-in page among them, keep pushing the expiry.

The marks hold a random word drawn when the process starts, so no stored or typed text
can stand for one; what fills a mark is not searched for marks again.
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template import engines
from django.template.loader import render_to_string
from django.utils.html import escape

BLOCKS = ("title", "head", "nav", "content")
SLOTS_TEMPLATE = "frame_slots.html"
_WORD = secrets.token_hex(8)
_SLOT = f"frame-{_WORD}-slot"
_MARKS = re.compile(f"frame-{_WORD}-({'|'.join((*BLOCKS, 'csrf'))})")
_KEPT_MAX = 2048
_kept: dict[tuple, tuple[str, ...]] = {}


@cache
def _frame_template():
    return engines["django"].from_string(
        "{% extends 'base.html' %}"
        + "".join(f"{{% block {name} %}}frame-{_WORD}-{name}{{% endblock %}}" for name in BLOCKS)
    )


def _base_changed_at() -> float:
    """While developing, a change to the frame's template shows on the next page."""
    if not settings.DEBUG:
        return 0.0
    try:
        return Path(settings.BASE_DIR, "templates", "base.html").stat().st_mtime
    except OSError:
        return 0.0


def _frame(user) -> tuple[str, ...]:
    """The user's frame as literal text and mark names, alternating, literal first."""
    key = (
        user.pk,
        user.username,
        user.is_staff,
        user.is_superuser,
        user.first_name,
        user.last_name,
        user.email,
        _base_changed_at(),
    )
    found = _kept.get(key)
    if found is None:
        html = _frame_template().render(
            {"user": user, "messages": (), "csrf_token": f"frame-{_WORD}-csrf"}
        )
        found = tuple(_MARKS.split(html))
        if len(_kept) >= _KEPT_MAX:
            _kept.clear()
        _kept[key] = found
    return found


def _keep_csrf_cookie(request: HttpRequest) -> None:
    """No new CSRF cookie when the browser sent the one in use."""
    sent = request.COOKIES.get(settings.CSRF_COOKIE_NAME)
    if not settings.CSRF_USE_SESSIONS and sent and sent == request.META.get("CSRF_COOKIE"):
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = False


def render_framed(request: HttpRequest, template_name: str, context: dict) -> HttpResponse:
    """``render(request, template_name, context)`` for a template that extends
    ``base_template`` (``{% extends base_template|default:"base.html" %}``), with the
    frame kept per user."""
    if not request.user.is_authenticated or get_messages(request):
        return render(request, template_name, context)
    html = render_to_string(
        template_name,
        {**context, "base_template": SLOTS_TEMPLATE, "frame_slot": _SLOT},
        request,
    )
    fills = dict(zip(BLOCKS, html.split(_SLOT, len(BLOCKS))[1:], strict=True))
    fills["csrf"] = escape(get_token(request))
    _keep_csrf_cookie(request)
    parts = _frame(request.user)
    return HttpResponse(
        "".join(part if n % 2 == 0 else fills[part] for n, part in enumerate(parts))
    )
