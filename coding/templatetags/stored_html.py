"""The one place where stored forum HTML is marked safe for output, and where JSON kept
for the coding screen's data element is.

Post HTML is sanitized on import; it is sanitized again here, so a row written by any
other path (an old import, a manual database edit) still cannot inject markup.
"""

import json

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe

from coding.importers.html import sanitize_html

register = template.Library()


@register.filter(name="stored_html")
def stored_html(value: str) -> SafeString:
    return mark_safe(sanitize_html(value or ""))  # noqa: S308


_POST = (
    '<article class="post{classes}" id="post-{number}" data-post-id="{pk}" tabindex="-1">\n'
    "  <header>#{number} · {author} · {created}{badges}</header>\n"
    '  <div class="post-body">{body}</div>\n'
    '  <p class="sentence-cursor" hidden></p>\n'
    "</article>\n"
)
_ACCEPTED = ' <strong class="badge">Accepted answer</strong>'
_CONTEXT = ' <span class="badge context-badge">Thread context</span>'
# (accepted answer, part of the unit) -> (classes, badges): fixed markup, no user text.
_POST_MARKS = {
    (accepted, in_unit): (
        (" accepted" if accepted else "") + ("" if in_unit else " context"),
        (_ACCEPTED if accepted else "") + ("" if in_unit else _CONTEXT),
    )
    for accepted in (False, True)
    for in_unit in (False, True)
}


def unit_posts(posts) -> SafeString:
    """The coding screen's posts, each an article the screen's keys move between.

    Built here rather than in a template loop because the coding screen shows a whole
    thread on every page, and a loop of template tags cost more than the rest of the
    page. The only text from the database is the author, escaped here, and the post
    HTML, which goes through ``stored_html`` as everywhere else; numbers and dates are
    formatted from integers and datetimes; the rest is fixed markup.
    """
    parts = []
    zone = timezone.get_current_timezone()
    for post in posts:
        classes, badges = _POST_MARKS[(bool(post.is_accepted_answer), bool(post.is_unit))]
        parts.append(
            _POST.format(
                classes=classes,
                number=int(post.post_number),
                pk=int(post.pk),
                author=escape(post.author),
                created=timezone.localtime(post.created_at, zone).strftime("%Y-%m-%d %H:%M"),
                badges=badges,
                body=stored_html(post.html),
            )
        )
    return mark_safe("".join(parts))  # noqa: S308


class Prerendered:
    """A template fragment rendered once, with autoescaping, and reused on many pages.

    The template places ``Prerendered.MARK`` where a per-page attribute goes; ``fill``
    puts one of a fixed set of attribute words at each mark. Escaped text cannot hold
    "<", so a mark only ever stands where the template put it, and no user text is
    spliced in: this is the only other place markup is marked safe.
    """

    MARK = mark_safe("<!--state-->")
    WORDS = frozenset({"", " checked", " disabled", " checked disabled"})

    def __init__(self, html: str) -> None:
        self.segments = html.split(self.MARK)

    @property
    def marks(self) -> int:
        return len(self.segments) - 1

    def fill(self, words: list[str]) -> SafeString:
        if len(words) != self.marks or not self.WORDS.issuperset(words):
            raise ValueError("fill takes one allowed attribute word per mark")
        parts = [self.segments[0]]
        for word, segment in zip(words, self.segments[1:], strict=True):
            parts.append(word)
            parts.append(segment)
        return mark_safe("".join(parts))  # noqa: S308


class ScriptJSON:
    """A value as JSON text safe inside a <script> element, as Django's ``json_script``
    writes it: encoded once, kept, and put into many pages by ``json_script_with``."""

    def __init__(self, value) -> None:
        text = json.dumps(value, cls=DjangoJSONEncoder)
        self.text = text.replace("&", "\\u0026").replace("<", "\\u003C").replace(">", "\\u003E")


def json_script_with(value: dict, key: str, kept: ScriptJSON, element_id: str) -> SafeString:
    """``{**value, key: kept's value}|json_script:element_id``, the kept part not encoded
    again (``value`` must not hold ``key``)."""
    if not isinstance(value, dict) or not isinstance(kept, ScriptJSON) or key in value:
        raise ValueError("json_script_with takes a dict, a key not in it and a ScriptJSON")
    if not element_id:
        raise ValueError("json_script_with takes an element id")
    head = ScriptJSON(value).text[:-1] + (", " if value else "")
    text = f"{head}{ScriptJSON(key).text}: {kept.text}}}"
    return mark_safe(  # noqa: S308
        f'<script id="{conditional_escape(element_id)}" type="application/json">{text}</script>'
    )
