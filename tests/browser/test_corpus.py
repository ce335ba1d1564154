"""Reading the corpus in a real browser: search, filter, open a thread; hostile threads."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from coding.models import Thread
from tests.browser.conftest import login, screenshot
from tests.factories import make_user
from tests.factories_corpus import SAMPLE, SAMPLE_SOURCE, hostile_topics, write_jsonl

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Defined before any page script runs: a payload that runs calls it, and every
# content-security-policy violation is recorded too.
SENTINEL = """
window.__xss_calls = [];
window.__xss = (...args) => window.__xss_calls.push(String(args[0] ?? ""));
window.__csp_violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp_violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def _import(path, source: str) -> None:
    call_command("import_threads", str(path), "--source", source, stdout=StringIO())


def _watch(page) -> list[str]:
    page.add_init_script(SENTINEL)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.on("dialog", lambda dialog: (console.append(f"dialog {dialog.message}"), dialog.dismiss()))
    return console


def _assert_nothing_ran(page, console: list[str]) -> None:
    assert page.evaluate("window.__xss_calls") == []
    assert page.evaluate("window.__csp_violations") == []
    assert not [m for m in console if "Content Security Policy" in m or m.startswith("dialog")]


def test_user_searches_filters_and_opens_a_thread(live_server, page):
    _import(SAMPLE, SAMPLE_SOURCE)
    make_user("alice")
    login(page, live_server, "alice")

    page.click("nav >> text=Corpus")
    page.wait_for_url(f"{live_server.url}/corpus/")
    assert page.locator(".counts").inner_text().startswith("300 threads")

    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    with page.expect_response(lambda r: "q=memory" in r.url):
        page.fill("#id_q", "memory")
    page.wait_for_function("!document.querySelector('.counts').innerText.startsWith('300 ')")
    assert "/corpus/?q=memory" in page.url
    assert "=&" not in page.url and not page.url.endswith("=")  # no unused filters
    searched = int(page.locator(".counts strong").first.inner_text())
    assert 0 < searched < 300

    with page.expect_response(lambda r: "category=Transformers" in r.url):
        page.select_option("#id_category", "Transformers")
    with page.expect_response(lambda r: "accepted=yes" in r.url):
        page.select_option("#id_accepted", "yes")
    rows = page.locator("table.corpus tbody tr")
    assert 0 < rows.count() < searched
    for i in range(rows.count()):
        assert "Transformers" in rows.nth(i).inner_text()
        assert "solved" in rows.nth(i).inner_text()
    screenshot(page, "corpus-search-filter")

    link = rows.first.locator("a").first
    title = link.inner_text()
    link.click()
    page.wait_for_url(f"{live_server.url}/threads/*/")
    assert page.locator("h1").inner_text() == title
    assert page.locator("article.post.accepted .badge").inner_text() == "Accepted answer"
    numbers = [int(n.lstrip("#")) for n in page.locator(".post-number").all_inner_texts()]
    assert numbers == sorted(numbers)
    screenshot(page, "corpus-thread")

    page.go_back()
    page.wait_for_url("**/corpus/?*")
    assert page.input_value("#id_category") == "Transformers"
    assert page.js_errors == []


def test_long_code_blocks_start_collapsed_and_open_with_the_keyboard(live_server, page):
    _import(SAMPLE, SAMPLE_SOURCE)
    make_user("alice")
    thread = Thread.objects.filter(posts__plain_text__contains="# step 19").first()
    login(page, live_server, "alice")

    page.goto(f"{live_server.url}/threads/{thread.pk}/")
    toggle = page.locator(".code-toggle").first
    pre = page.locator("pre.collapsed").first
    assert toggle.get_attribute("aria-expanded") == "false"
    collapsed_height = pre.bounding_box()["height"]

    toggle.focus()
    page.keyboard.press("Enter")

    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator(".post-body pre").first.bounding_box()["height"] > collapsed_height
    assert page.js_errors == []


def test_hostile_threads_render_without_running_any_script(live_server, page, tmp_path):
    _import(write_jsonl(tmp_path / "hostile.jsonl", hostile_topics()), "Hostile forum")
    make_user("alice")
    console = _watch(page)
    login(page, live_server, "alice")

    # The list pages show every title, category and tag.
    for url in ("/corpus/", "/corpus/?page=2", "/corpus/?q=script+svg+onerror", "/corpus/?q=x"):
        page.goto(f"{live_server.url}{url}")
        page.mouse.move(200, 300)
        _assert_nothing_ran(page, console)
    screenshot(page, "corpus-hostile-list")

    # Thread i shows payloads i and i + 1 in its posts and usernames: every other one covers
    # them all.
    threads = list(Thread.objects.order_by("external_id").values_list("pk", flat=True))
    assert len(threads) >= 50
    for pk in threads[::2]:
        page.goto(f"{live_server.url}/threads/{pk}/")
        page.mouse.move(300, 400)
        _assert_nothing_ran(page, console)
    screenshot(page, "corpus-hostile-thread")
    assert page.locator("h1").inner_text().startswith("Hostile")
