"""The coding screen keeps every change through an ended session, a slow network, a
conflict and a refused submit, and quotes exactly the words selected."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from coding.models import Coding, Post, Quote
from tests.browser.conftest import login
from tests.factories_coding import make_coding_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _open(page: Page, live_server, users, **kwargs):
    project = make_coding_project(users, **kwargs)
    unit = project.units.order_by("position").first()
    url = f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/"
    login(page, live_server, "alice")
    page.goto(url)
    return project, unit, url


def _open_one_post(page: Page, live_server, users, text: str):
    """A one-unit project whose first post reads ``text``, open for alice."""
    project = make_coding_project(users, units=1)
    unit = project.units.get()
    Post.objects.filter(thread=unit.thread, post_number=1).update(
        html=f"<p>{text}</p>", plain_text=text
    )
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/")


def _codes(unit, users) -> set[str]:
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    return {a.code.key for a in coding.applications.all()}


def test_a_save_after_the_session_ended_is_kept_and_saved_after_signing_in(
    live_server, page: Page, users
):
    _, unit, url = _open(page, live_server, users)
    status = page.locator("#save-status")
    page.keyboard.press("i")
    expect(status).to_have_text("Saved draft", timeout=10_000)

    page.context.clear_cookies(name="sessionid")
    page.keyboard.press("m")
    expect(status).to_contain_text("you are signed out", timeout=10_000)
    assert _codes(unit, users) == {"install"}

    login(page, live_server, "alice")
    page.goto(url)
    expect(page.locator("input[value=memory]")).to_be_checked()
    expect(status).to_have_text("Saved draft", timeout=10_000)
    assert _codes(unit, users) == {"install", "memory"}
    assert Coding.objects.get(unit=unit).revision == 2
    # The browser logs the refused request; no script failed.
    assert [e for e in page.js_errors if "401 (Unauthorized)" not in e] == []


def test_saves_queued_behind_a_slow_one_each_build_on_the_last(live_server, page: Page, users):
    project, unit, _ = _open(page, live_server, users)
    second = project.units.order_by("position").last()
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 800, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.keyboard.press("i")
    page.click("#save-draft")
    # A draft save and a save-and-next asked for while the first is on its way.
    page.keyboard.press("m")
    page.click("#save-draft")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/units/{second.pk}/code/", timeout=15_000)
    coding = Coding.objects.get(unit=unit)
    assert coding.status == Coding.Status.SUBMITTED and coding.revision == 3
    assert _codes(unit, users) == {"install", "memory"}
    assert page.js_errors == []


def test_overwriting_after_a_conflict_on_save_and_next_submits(live_server, page: Page, users):
    project, unit, url = _open(page, live_server, users, units=1)
    stale = page.context.new_page()
    stale.goto(url)
    page.keyboard.press("i")
    expect(page.locator("#save-status")).to_have_text("Saved draft", timeout=10_000)

    stale.keyboard.press("m")
    stale.keyboard.press("Enter")
    expect(stale.locator("#conflict")).to_be_visible(timeout=10_000)
    # A change while the conflict waits for a choice stays in the tab, unsent.
    stale.keyboard.press("i")
    stale.wait_for_timeout(2_000)  # longer than the autosave delay
    assert Coding.objects.get(unit=unit).revision == 1
    expect(stale.locator("#conflict")).to_be_visible()
    stale.locator("#conflict-overwrite").focus()
    stale.keyboard.press("Enter")
    stale.wait_for_url(f"**/projects/{project.slug}/")
    coding = Coding.objects.get(unit=unit)
    assert coding.status == Coding.Status.SUBMITTED and coding.revision == 2
    assert _codes(unit, users) == {"memory", "install"}


def test_a_refused_submit_still_keeps_the_memo_as_a_draft(live_server, page: Page, users):
    _, unit, _ = _open(page, live_server, users)
    page.locator("#memo").fill("not sure which code yet")
    page.keyboard.press("Control+Enter")
    status = page.locator("#save-status")
    expect(status).to_contain_text("Choose at least one code", timeout=10_000)
    expect(status).to_contain_text("saved as a draft", timeout=10_000)
    coding = Coding.objects.get(unit=unit)
    assert coding.memo == "not sure which code yet"
    assert coding.status == Coding.Status.DRAFT


def test_a_mouse_selection_of_words_that_occur_twice_quotes_the_one_selected(
    live_server, page: Page, users
):
    text = "Same words here. Other words. Same words here."
    _open_one_post(page, live_server, users, text)
    page.keyboard.press("m")
    # Select the second "Same words here." in the rendered post.
    page.evaluate(
        """() => {
            const node = document.querySelector('#post-1 .post-body p').firstChild;
            const start = node.data.lastIndexOf('Same words here.');
            const range = document.createRange();
            range.setStart(node, start);
            range.setEnd(node, start + 'Same words here.'.length);
            getSelection().removeAllRanges();
            getSelection().addRange(range);
        }"""
    )
    page.keyboard.press("q")
    expect(page.locator("#save-status")).to_have_text("Saved draft", timeout=10_000)
    quote = Quote.objects.get()
    assert (quote.start, quote.end) == (30, 46)
    assert text[quote.start : quote.end] == quote.text == "Same words here."


def test_the_sentence_cursor_splits_sentences_without_spaces_after_them(
    live_server, page: Page, users
):
    text = "模型太大了。「内存不够！」怎么办？！"
    _open_one_post(page, live_server, users, text)
    page.keyboard.press("]")
    page.keyboard.press("]")
    expect(page.locator("#post-1 .sentence-cursor")).to_have_text("「内存不够！」")
    page.keyboard.press("Shift+BracketRight")
    expect(page.locator("#post-1 .sentence-cursor")).to_have_text("「内存不够！」怎么办？！")
