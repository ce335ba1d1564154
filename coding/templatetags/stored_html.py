"""The one place where stored forum HTML is marked safe for output.

Post HTML is sanitized on import; it is sanitized again here, so a row written by any
other path (an old import, a manual database edit) still cannot inject markup.
"""

from django import template
from django.utils.safestring import SafeString, mark_safe

from coding.importers.html import sanitize_html

register = template.Library()


@register.filter(name="stored_html")
def stored_html(value: str) -> SafeString:
    return mark_safe(sanitize_html(value or ""))  # noqa: S308


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
