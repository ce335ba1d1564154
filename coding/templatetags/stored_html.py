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
