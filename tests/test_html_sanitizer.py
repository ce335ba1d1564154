from coding.importers.html import clean_line, html_to_text, sanitize_html


def test_scripts_handlers_and_javascript_urls_are_removed():
    dirty = (
        '<p onclick="steal()">Hi<script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">x</a><a href="https://ok.test/">ok</a>'
        '<svg onload="alert(1)"><circle/></svg><iframe src="https://evil.test"></iframe>'
    )
    clean = sanitize_html(dirty)
    for bad in ("script", "onclick", "javascript:", "svg", "onload", "iframe"):
        assert bad not in clean.lower()
    assert '<a href="https://ok.test/" rel="noopener noreferrer nofollow">ok</a>' in clean


def test_images_become_links():
    clean = sanitize_html('<p><img src="https://cdn.test/a.png" alt="diagram" onerror="x()"></p>')
    assert "<img" not in clean
    assert 'href="https://cdn.test/a.png"' in clean
    assert "[diagram]" in clean


def test_code_quotes_and_tables_survive():
    html = (
        '<pre><code class="lang-python">x = 1\n\nprint(x)</code></pre>'
        "<blockquote><p>quoted</p></blockquote><table><tr><td>a</td></tr></table>"
    )
    clean = sanitize_html(html)
    assert '<code class="lang-python">' in clean
    assert "<blockquote>" in clean
    assert "<td>a</td>" in clean


def test_plain_text_separates_blocks_and_unescapes_entities():
    text = html_to_text(sanitize_html("<p>a &lt; b</p><ul><li>one</li><li>two</li></ul>"))
    assert text == "a < b\n\none\n\ntwo"


def test_one_line_fields_keep_literal_markup_as_text():
    assert clean_line("  How is <pad>\x00 used?\n ") == "How is <pad> used?"


PIECES = [
    "<p>", "</p>", "<br>", "<br/>", "<br />", "<hr>", "<b>", "</b>", '<code class="lang-py">',
    "</code>", "<pre>", "</pre>", '<a href="https://x.test/?a=1&amp;b=2" title="a > b">', "</a>",
    "&lt;", "&gt;", "&amp;", "&amp", "&nbsp;", "&#39;", "&#x27;", "&quot;", "&", "&l", "t;", "<",
    ">", '"', "'", " ", "\n", "\t", "\r\n", "\u00a0", "text", "é", "日本",
    "<script>x<b>y</b></script>", "<style>p{}</style>", "<!-- c -->", "<!DOCTYPE html>",
    "<![CDATA[x]]>", "<?pi?>", "</ p>", "</>", "< p>", "<P>", "</P>", "<li>", "</li>", "<ul>",
    "<table><tr><td>", "</td></tr></table>", '<img src="a.png" alt="x">', "<div a=b>",
    "<div a='x>y'>", "<p\n>", "</p\n>", "<a/b>", "<x-y>", '<p title="<q>">', '<p a"b>',
    '</p a="x>">', "<details><summary>", "</summary>", "</details>", "<blockquote>",
    "</blockquote>", "<h1>", "</h1>", "<span>", "</span>",
]  # fmt: skip


def test_plain_text_reads_sanitized_and_raw_html_as_the_html_parser_does():
    import random

    from coding.importers.html import _parse_text, _strip_tags

    rng = random.Random(4)
    for _ in range(3000):
        raw = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 25)))
        for html in (raw, sanitize_html(raw)):
            assert _strip_tags(html) == _parse_text(html), html
