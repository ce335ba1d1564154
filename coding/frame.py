"""The site's frame (``base.html``) around the coding screen, rendered once per user.

The frame of a signed-in page differs between users only in who they are, and between
pages only in the CSRF token and the messages waiting. The coding screen, opened
hundreds of times a day by each coder, renders it once per user with a mark where each
of the page's blocks goes and where the token goes, keeps it, and fills it per page:
with the page's blocks, rendered by the page's own template into ``frame_slots.html``
(which holds the blocks and nothing else), and with a freshly masked token, as Django's
own tag gives. A page with messages waiting renders whole, as every other page does.

Marks cannot come from user text: escaped text holds no "<", stored post HTML is
sanitized (comments removed), and JSON in a page escapes "<".
"""

from __future__ import annotations

import re
from functools import cache

from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template import engines
from django.template.loader import render_to_string
from django.utils.html import escape

BLOCKS = ("title", "head", "nav", "content")
SLOTS_TEMPLATE = "frame_slots.html"
SLOT = "<!--frame:slot-->"
# The token's mark goes in as text, so the template escapes it as it would the token.
_CSRF = "<!--frame:csrf-->"
_MARKS = re.compile("<!--frame:(" + "|".join((*BLOCKS, "csrf")) + ")-->")
_KEPT_MAX = 2048
_kept: dict[tuple, tuple[str, ...]] = {}


@cache
def _frame_template():
    return engines["django"].from_string(
        "{% extends 'base.html' %}"
        + "".join(f"{{% block {name} %}}<!--frame:{name}-->{{% endblock %}}" for name in BLOCKS)
    )


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
    )
    found = _kept.get(key)
    if found is None:
        html = _frame_template().render({"user": user, "messages": (), "csrf_token": _CSRF})
        html = html.replace(escape(_CSRF), _CSRF)
        found = tuple(_MARKS.split(html))
        if len(_kept) >= _KEPT_MAX:
            _kept.clear()
        _kept[key] = found
    return found


def render_framed(request: HttpRequest, template_name: str, context: dict) -> HttpResponse:
    """``render(request, template_name, context)`` for a template that extends
    ``base_template`` (``{% extends base_template|default:"base.html" %}``), with the
    frame kept per user."""
    if not request.user.is_authenticated or get_messages(request):
        return render(request, template_name, context)
    html = render_to_string(template_name, {**context, "base_template": SLOTS_TEMPLATE}, request)
    fills = dict(zip(BLOCKS, html.split(SLOT, len(BLOCKS))[1:], strict=True))
    fills["csrf"] = escape(get_token(request))
    parts = _frame(request.user)
    return HttpResponse(
        "".join(part if n % 2 == 0 else fills[part] for n, part in enumerate(parts))
    )
