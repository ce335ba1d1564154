"""Hostile markup in every imported field comes out harmless, in the database and on pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command

from coding.models import Post, Tag, Thread
from tests.factories import make_user
from tests.factories_corpus import SAMPLE, SAMPLE_SOURCE, hostile_topics, write_jsonl
from tests.xss_payloads import PAYLOADS

pytestmark = pytest.mark.django_db

DANGEROUS_TAGS = {
    "script", "style", "iframe", "object", "embed", "svg", "math", "img", "form", "input",
    "button", "textarea", "select", "meta", "link", "base", "video", "audio", "source",
    "marquee", "template", "noscript", "xmp", "body", "frame", "frameset",
}  # fmt: skip
# Elements the app's own page chrome uses (forms, search, head); their attributes are
# still audited.
PAGE_CHROME = {"body", "form", "input", "button", "select", "meta", "link"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "cite"}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


def url_scheme(value: str) -> str:
    """The scheme a browser would read: C0 controls and spaces trimmed, tabs and newlines
    removed (WHATWG URL parsing)."""
    cleaned = re.sub(r"[\t\n\r]", "", value.strip(_C0_AND_SPACE))
    match = _SCHEME.match(cleaned)
    return match.group(1).lower() if match else ""


class Audit(HTMLParser):
    """Collects every element, attribute and URL that could run script."""

    def __init__(self, *, own_scripts: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.own_scripts = own_scripts
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs) -> None:
        names = dict(attrs)
        own_page = self.own_scripts
        if tag == "script" and own_page and (names.get("src") or "").startswith("/static/"):
            self._in_script = True
        elif tag in DANGEROUS_TAGS and not (own_page and tag in PAGE_CHROME):
            self.problems.append(f"<{tag}>")
        if tag == "meta" and names.get("http-equiv"):
            self.problems.append("<meta http-equiv>")
        if tag == "link" and not (names.get("href") or "").startswith("/static/"):
            self.problems.append("<link> outside /static/")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            if name in {"style", "srcdoc", "formaction"}:
                self.problems.append(f"<{tag} {name}>")
            if name in URL_ATTRIBUTES and url_scheme(value or "") not in {
                "",
                "http",
                "https",
                "mailto",
            }:
                self.problems.append(f"<{tag} {name}={value!r}>")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def audit(html: str, *, own_scripts: bool = False) -> list[str]:
    parser = Audit(own_scripts=own_scripts)
    parser.feed(html)
    parser.close()
    return parser.problems


def import_hostile(tmp_path) -> None:
    path = write_jsonl(tmp_path / "hostile.jsonl", hostile_topics())
    call_command("import_threads", str(path), "--source", "Hostile forum", stdout=StringIO())


def test_the_payload_corpus_is_large_and_the_audit_catches_each_payload_raw():
    assert len(PAYLOADS) >= 50
    caught = [p for p in PAYLOADS if audit(p)]
    # Plain-text payloads (template syntax, a bare "javascript:" word) are harmless as is.
    assert len(caught) >= len(PAYLOADS) - 3


def test_stored_post_html_keeps_no_script_handler_or_script_url(tmp_path):
    import_hostile(tmp_path)

    assert Thread.objects.count() == len(PAYLOADS)
    for post in Post.objects.all():
        assert audit(post.html) == [], (post.thread.title, post.html)
        assert "<script" not in post.html.lower()


def test_text_fields_keep_payloads_as_literal_text(tmp_path):
    import_hostile(tmp_path)

    thread = Thread.objects.get(external_id=9000)
    assert thread.title == f"Hostile 0: {PAYLOADS[0]}"
    assert thread.category == PAYLOADS[0]
    assert Tag.objects.filter(name=PAYLOADS[3]).exists()
    assert Post.objects.filter(author=PAYLOADS[3]).exists()


def test_corpus_and_thread_pages_render_hostile_threads_harmlessly(client, tmp_path):
    import_hostile(tmp_path)
    client.force_login(make_user("alice"))

    pages = [client.get("/corpus/"), client.get("/corpus/", {"page": 2})]
    pages += [client.get(f"/threads/{pk}/") for pk in Thread.objects.values_list("pk", flat=True)]
    pages.append(client.get("/corpus/", {"q": "script onerror svg"}))

    for response in pages:
        assert response.status_code == 200
        assert audit(response.content.decode(), own_scripts=True) == [], response.request
    first = client.get(f"/threads/{Thread.objects.get(external_id=9000).pk}/")
    assert "Hostile 0: &lt;script&gt;window.__xss()&lt;/script&gt;" in first.content.decode()


def test_the_sample_corpus_hostile_posts_are_harmless_once_imported():
    call_command("import_threads", str(SAMPLE), "--source", SAMPLE_SOURCE, stdout=StringIO())

    hostile = Thread.objects.filter(category__contains="onerror")
    assert hostile.exists()
    for post in Post.objects.all():
        assert audit(post.html) == []


def test_an_image_whose_attribute_holds_a_bracket_becomes_one_harmless_link():
    from coding.importers.html import sanitize_html

    clean = sanitize_html('<p><img src="https://a.test/x.png" alt="a > b"> after</p>')
    assert clean == (
        '<p><a href="https://a.test/x.png" rel="noopener noreferrer nofollow">[a &gt; b]</a>'
        " after</p>"
    )
    assert audit(sanitize_html('<img src="data:image/svg+xml,<svg onload=x()>">')) == []
