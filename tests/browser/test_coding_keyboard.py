"""An annotator codes two units with the keyboard only, quotes included."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from coding.models import Code, Coding, Post
from tests.browser.conftest import login, screenshot
from tests.factories_coding import make_coding_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ACTIVE = re.compile(r"\bactive\b")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _filter_and_toggle(page: Page, text: str) -> None:
    page.keyboard.press("/")
    expect(page.locator("#code-filter")).to_be_focused()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def _stored(coding: Coding) -> tuple[set[str], set[tuple]]:
    codes = {a.code.key for a in coding.applications.all()}
    quotes = {
        (q.application.code.key, q.post.post_number, q.start, q.end, q.text)
        for a in coding.applications.all()
        for q in a.quotes.all()
    }
    return codes, quotes


def test_an_annotator_codes_two_units_by_keyboard_and_another_sees_none_of_it(
    live_server, page: Page, users
):
    project = make_coding_project(users, units=2, posts_per_thread=3)
    first, second = project.units.order_by("position")
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/projects/{project.slug}/next/")
    page.wait_for_url(f"**/units/{first.pk}/code/")
    status = page.locator("#save-status")

    # Unit 1: filter to a code, toggle it, quote the first sentence (with an emoji).
    _filter_and_toggle(page, "out of mem")
    expect(page.locator("input[value=memory]")).to_be_checked()
    page.keyboard.press("]")
    expect(page.locator("#post-1 .sentence-cursor")).to_have_text("Loading fails 😭 with OOM.")
    page.keyboard.press("q")
    expect(page.locator("#quote-list")).to_contain_text("Loading fails 😭 with OOM.")
    # A shortcut key, then the next post, a sentence extended with Shift, and a quote.
    page.keyboard.press("i")
    expect(page.locator("input[value=install]")).to_be_checked()
    page.keyboard.press("j")
    expect(page.locator("#post-2")).to_have_class("post current")
    page.keyboard.press("]")
    page.keyboard.press("Shift+BracketRight")
    expect(page.locator("#post-2 .sentence-cursor")).to_have_text(
        "Reply 2 says hello. Second sentence here."
    )
    page.keyboard.press("q")
    # A mistaken toggle, undone with u.
    _filter_and_toggle(page, "documentation")
    expect(page.locator("input[value=docs]")).to_be_checked()
    page.keyboard.press("u")
    expect(page.locator("input[value=docs]")).not_to_be_checked()
    expect(status).to_have_text("Saved draft", timeout=10_000)  # autosave
    screenshot(page, "coding_keyboard_unit1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/units/{second.pk}/code/")

    # Unit 2: j/k between posts, the second sentence of the first post, quoted.
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("#post-1")).to_have_class("post current")
    page.keyboard.press("m")
    page.keyboard.press("]")
    page.keyboard.press("]")
    expect(page.locator("#post-1 .sentence-cursor")).to_have_text("Ich bin müde.")
    page.keyboard.press("q")
    expect(page.locator("#quote-list")).to_contain_text("Ich bin müde.")
    assert page.js_errors == []
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/projects/{project.slug}/")

    alice = {c.unit_id: c for c in Coding.objects.filter(coder=users["alice"])}
    assert set(alice) == {first.pk, second.pk}
    assert all(c.status == "submitted" for c in alice.values())
    text = Post.objects.get(thread=first.thread, post_number=1).plain_text
    reply = "Reply 2 says hello. Second sentence here."
    assert _stored(alice[first.pk]) == (
        {"memory", "install"},
        {
            ("memory", 1, 0, 25, "Loading fails 😭 with OOM."),
            ("install", 2, 0, len(reply), reply),
        },
    )
    start = text.index("Ich bin müde.")
    assert start == 26  # code points: the emoji counts once
    assert _stored(alice[second.pk]) == (
        {"memory"},
        {("memory", 1, start, start + 13, "Ich bin müde.")},
    )

    # Bob opens the same unit and sees none of alice's codes, quotes or state.
    page.context.clear_cookies()
    login(page, live_server, "bob")
    page.goto(f"{live_server.url}/projects/{project.slug}/units/{first.pk}/code/")
    expect(page.locator("input[name=code]:checked")).to_have_count(0)
    expect(page.locator("#quote-list")).not_to_contain_text("Loading fails")
    expect(page.locator("#save-status")).to_have_text("Draft")
    screenshot(page, "coding_keyboard_other_annotator")
    assert not Coding.objects.filter(coder=users["bob"]).exists()


def test_two_tabs_warn_and_a_stale_tab_gets_a_conflict_instead_of_overwriting(
    live_server, page: Page, users
):
    project = make_coding_project(users, units=1)
    unit = project.units.get()
    url = f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/"
    login(page, live_server, "alice")
    page.goto(url)
    other = page.context.new_page()
    other.goto(url)
    expect(other.locator("#two-tabs")).to_be_visible()
    expect(page.locator("#two-tabs")).to_be_visible()

    page.keyboard.press("i")
    expect(page.locator("#save-status")).to_have_text("Saved draft", timeout=10_000)
    other.keyboard.press("m")
    expect(other.locator("#conflict")).to_be_visible(timeout=10_000)
    expect(other.locator("#conflict-stored")).to_contain_text("Installation")
    coding = Coding.objects.get(coder=users["alice"])
    assert _stored(coding)[0] == {"install"}

    # The coder chooses explicitly: overwrite with this tab's version (keyboard only).
    expect(other.locator("#conflict-reload")).to_be_focused()
    other.keyboard.press("Tab")
    other.keyboard.press("Enter")
    expect(other.locator("#save-status")).to_have_text("Saved draft", timeout=10_000)
    coding.refresh_from_db()
    assert _stored(coding)[0] == {"memory"} and coding.revision == 2

    # Words typed into the stale first tab, closed before the autosave, come back.
    page.locator("#memo").fill("unsent words")
    page.close()
    again = other.context.new_page()
    again.goto(url)
    expect(again.locator("#memo")).to_have_value("unsent words")
    expect(again.locator("#conflict")).to_be_visible(timeout=10_000)
    coding.refresh_from_db()
    assert coding.memo == "" and coding.revision == 2


def test_long_code_blocks_fold_and_a_focused_code_shows_its_definition(
    live_server, page: Page, users
):
    project = make_coding_project(users, units=1)
    unit = project.units.get()
    code = "\n".join(f"line {n}" for n in range(40))
    Post.objects.filter(thread=unit.thread, post_number=2).update(
        html=f"<pre><code>{code}</code></pre>", plain_text=code
    )
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/")
    block = page.locator("#post-2 pre")
    expect(block).to_have_class("collapsed")
    page.get_by_role("button", name="Show all 40 lines").click()
    expect(block).not_to_have_class("collapsed")

    help_text = page.get_by_text("Trouble installing a library.")
    expect(help_text).to_be_hidden()
    page.keyboard.press("/")
    page.keyboard.type("install")
    expect(help_text).to_be_visible()
    page.locator("input[value=install]").focus()
    expect(help_text).to_be_visible()
    assert page.js_errors == []


def test_enter_in_the_filter_toggles_the_code_whose_name_fits_not_a_key_match_above_it(
    live_server, page: Page, users
):
    project = make_coding_project(users, units=1)
    unit = project.units.get()
    # Filed under "memory" by its key and listed before "Out of memory".
    version = project.codebook_version
    Code.objects.create(
        version=version,
        key="memory-gpu",
        name="Accelerator tuning",
        parent=version.codes.get(key="problems"),
        order=1,
    )
    Code.objects.create(
        version=version,
        key="slow-network",
        name="Re\u0301seau lent",
        parent=version.codes.get(key="problems"),
        order=9,
    )
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/")
    keys = page.locator("#code-list li.code").evaluate_all("els => els.map((e) => e.dataset.key)")
    assert keys.index("memory-gpu") < keys.index("memory")

    page.keyboard.press("/")
    page.keyboard.type("memory")
    expect(page.locator("li.code[data-key=memory-gpu]")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("input[value=memory]")).to_be_checked()
    expect(page.locator("input[value=memory-gpu]")).not_to_be_checked()
    # The key still finds a code no name matches.
    page.keyboard.press("Control+a")
    page.keyboard.type("gpu")
    expect(page.locator("li.code[data-key=memory-gpu]")).to_have_class(ACTIVE)
    page.keyboard.press("Enter")
    expect(page.locator("input[value=memory-gpu]")).to_be_checked()
    # A name stored with its accent as a separate mark is found as typed, spaces aside.
    page.keyboard.press("Control+a")
    page.keyboard.type("  réseau   LENT ")
    page.keyboard.press("Enter")
    expect(page.locator("input[value=slow-network]")).to_be_checked()
    assert page.js_errors == []


def test_one_click_toggles_a_code_below_one_whose_definition_is_open(
    live_server, page: Page, users
):
    project = make_coding_project(users, units=1)
    unit = project.units.get()
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/")
    definition = page.get_by_text("Trouble installing a library.")
    page.locator("input[value=install]").click()
    expect(definition).to_be_visible()
    # Clicking the next code closes that definition: the list moves up under the pointer.
    page.locator("input[value=memory]").click()
    expect(page.locator("input[value=memory]")).to_be_checked()
    expect(page.locator("input[value=install]")).to_be_checked()
    expect(definition).to_be_hidden()
    expect(page.locator("li.code[data-key=memory]")).to_have_class(ACTIVE)
    # Once highlighted, keys work from there as before.
    page.keyboard.press("Space")
    expect(page.locator("input[value=memory]")).not_to_be_checked()
    # Tabbing back highlights the code reached at once, its definition open.
    page.keyboard.press("Shift+Tab")
    expect(page.locator("li.code[data-key=install]")).to_have_class(ACTIVE)
    expect(definition).to_be_visible()
    assert page.js_errors == []


def test_a_tap_toggles_a_code_below_one_whose_definition_is_open(live_server, browser, users):
    project = make_coding_project(users, units=1)
    unit = project.units.get()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, has_touch=True)
    try:
        page = context.new_page()
        login(page, live_server, "alice")
        page.goto(f"{live_server.url}/projects/{project.slug}/units/{unit.pk}/code/")
        definition = page.get_by_text("Trouble installing a library.")
        page.locator("input[value=install]").tap()
        expect(definition).to_be_visible()
        page.locator("input[value=memory]").tap()
        expect(page.locator("input[value=memory]")).to_be_checked()
        expect(page.locator("input[value=install]")).to_be_checked()
        expect(definition).to_be_hidden()
        expect(page.locator("li.code[data-key=memory]")).to_have_class(ACTIVE)
    finally:
        context.close()
