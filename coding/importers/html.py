"""Forum HTML made harmless on the way in, and its plain-text twin.

Sanitized HTML is what coders see; the plain text is what search, quotes and mention
counts work on. Quote offsets are code points into the plain text, so the rules that
produce it must never change silently: ``html_to_text`` is pinned by tests.
"""

from __future__ import annotations

import hashlib
import re
from html import escape, unescape
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "div",
    "span",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "pre",
    "code",
    "kbd",
    "samp",
    "blockquote",
    "aside",
    "details",
    "summary",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "del",
    "ins",
    "sub",
    "sup",
    "mark",
    "small",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "caption",
    "a",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "pre": {"class"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "ol": {"start"},
    "aside": {"class"},
    "blockquote": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"

# A ">" inside a quoted attribute value does not end the tag.
_IMG = re.compile(r"""<img\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_ATTR = re.compile(r"""\b(src|alt)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_CODE_CLASS = re.compile(r"^(lang-[\w+-]+|language-[\w+-]+|hljs)$")

BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "pre",
    "blockquote",
    "aside",
    "details",
    "summary",
    "table",
    "tr",
    "caption",
    "thead",
    "tbody",
    "tfoot",
}


def _image_as_link(match: re.Match[str]) -> str:
    attrs = {}
    for name, *values in _ATTR.findall(match.group(0)):
        attrs[name.lower()] = next((v for v in values if v), "")
    src = attrs.get("src", "")
    label = attrs.get("alt") or "image"
    if not src:
        return escape(f"[{label}]")
    return f'<a href="{escape(src)}">[{escape(label)}]</a>'


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        kept = [c for c in value.split() if _CODE_CLASS.match(c) or c == "quote"]
        return " ".join(kept) or None
    return value


# Built once: setting up the rules costs more than cleaning a typical post.
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    link_rel=LINK_REL,
    strip_comments=True,
    attribute_filter=_attribute_filter,
)


def sanitize_html(raw: str) -> str:
    """Keep structure, code, quotes, tables and http(s)/mailto links; drop the rest.

    Images become links to the image, since an <img> would load a third-party
    resource in every coder's browser.
    """
    return _CLEANER.clean(_IMG.sub(_image_as_link, raw or ""))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_line(value: str) -> str:
    """A one-line text field (title, username, tag, category) kept as text.

    Markup in such fields is the author's literal text ("the <pad> token"); it is
    escaped wherever it is shown, never interpreted, so only control characters and
    runs of whitespace are removed.
    """
    return " ".join(_CONTROL.sub(" ", value or "").split())


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip = max(0, self._skip - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _parse_text(value: str) -> str:
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return "".join(parser.parts)


# Tags as the sanitizer writes them: lower-case names, double-quoted attribute values.
_TAG = re.compile(
    r'<(?:([a-zA-Z][a-zA-Z0-9]*)(?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*="[^"]*")*\s*(/?)'
    r"|/([a-zA-Z][a-zA-Z0-9]*))>"
)


def _strip_tags(value: str) -> str:
    """The text and block breaks of ``value``, as ``_TextExtractor`` finds them.

    Sanitized HTML holds only plain tags, so a scan for them gives the same parts
    (data between tags unescaped, a break at each block tag) several times faster;
    anything else (a "<" outside such a tag, comments, scripts) goes to the parser.
    """
    parts: list[str] = []
    pos = 0
    for match in _TAG.finditer(value):
        start, end = match.span()
        if start > pos:
            parts.append(value[pos:start])
        pos = end
        start_tag, closes, end_tag = match.groups()
        tag = (start_tag or end_tag).lower()
        if tag in {"script", "style"}:
            return _parse_text(value)
        if tag in BLOCK_TAGS:
            parts.append("\n\n" if closes else "\n")
    parts.append(value[pos:])
    for i, part in enumerate(parts):
        if "<" in part:
            return _parse_text(value)
        if "&" in part:
            parts[i] = unescape(part)
    return "".join(parts)


_BLANKS = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> str:
    """Plain text of sanitized HTML: blocks separated by blank lines, spaces kept in code."""
    text = _strip_tags(html)
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")


def content_hash(html: str) -> str:
    return hashlib.sha256(html.encode("utf-8")).hexdigest()
