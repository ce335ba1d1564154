"""Two coders open-code 20 threads; an admin groups their open codes on the affinity board
(drag and drop, and one move by keyboard only), makes a codebook of it and applies it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from coding.models import OpenCode, OpenCodeQuote, ProvisionalCode
from tests.browser.conftest import login, screenshot
from tests.factories_open_coding import make_open_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = ["Missing docs", "Unclear example", "GPU out of memory", "Slow tokenizer", "Slow training"]
# Where each open code ends up: (group path on the board, code it becomes).
PLACES = {
    "Missing docs": ("Documentation > Missing docs", "Missing docs"),
    "Unclear example": ("Documentation > Examples", "Examples"),
    "GPU out of memory": ("Resources > Memory", "Memory"),
    "Slow tokenizer": ("Performance > Tokenizer", "Tokenizer"),
    "Slow training": ("Performance", "Performance"),
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def codes_for(coder: str, n: int) -> str:
    """alice writes TEXTS[n % 5]; bob the next one, in lower case."""
    return TEXTS[n % 5] if coder == "alice" else TEXTS[(n + 1) % 5].lower()


def open_code_queue(page: Page, live_server, project, coder: str) -> None:
    login(page, live_server, coder)
    page.goto(f"{live_server.url}/projects/{project.slug}/open/next/")
    for n, unit in enumerate(project.units.order_by("position")):
        page.wait_for_url(f"**/units/{unit.pk}/open/")
        page.locator("#open-codes").fill(codes_for(coder, n))
        if n == 0:  # one quote: the selected sentence, for the code on the caret's line
            page.locator("#post-1 .post-body p").select_text()
            page.click("#quote-add")
            expect(page.locator("#quote-list")).to_contain_text("Question 1: the docs are")
        page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/projects/{project.slug}/")
    page.context.clear_cookies()


def add_group(page: Page, name: str, parent: str = "") -> None:
    page.fill("#new-group", name)
    page.select_option("#new-parent", label=parent or "(top level)")
    page.click("text=Add group")
    label = f"{parent} > {name}" if parent else name
    expect(page.locator(f'section[aria-label="{label}"]')).to_be_visible()


def card(page: Page, text: str):
    return page.locator("#board .card", has_text=text)


def test_open_codes_become_a_codebook_and_every_unit_gets_its_provisional_codes(
    live_server, page: Page, users
):
    project = make_open_project(users, units=20)
    open_code_queue(page, live_server, project, "alice")
    open_code_queue(page, live_server, project, "bob")
    assert OpenCode.objects.count() == 40
    quotes = OpenCodeQuote.objects.all()
    assert [(q.open_code.text, q.start, q.text[:12]) for q in quotes] == [
        ("Missing docs", 0, "Question 1: "),
        ("unclear example", 0, "Question 1: "),
    ]

    login(page, live_server, "padmin")
    # Tall enough that a drag never has to scroll (a native drag cannot scroll the page).
    page.set_viewport_size({"width": 1280, "height": 2400})
    page.goto(f"{live_server.url}/projects/{project.slug}/board/")
    # Case-only variants are one card, used by both coders.
    expect(page.locator("#board .card")).to_have_count(5)
    expect(card(page, "Missing docs")).to_contain_text("alice, bob")
    for name, parent in [
        ("Documentation", ""),
        ("Resources", ""),
        ("Performance", ""),
        ("Missing docs", "Documentation"),
        ("Examples", "Documentation"),
        ("Memory", "Resources"),
        ("Tokenizer", "Performance"),
    ]:
        add_group(page, name, parent)

    stale = page.context.new_page()  # a second admin's view of the board, soon outdated
    stale.set_viewport_size({"width": 1280, "height": 2400})
    stale.goto(page.url)

    # By keyboard only: the first ungrouped card, arrows down to "Slow training",
    # m, the group's number (Performance is the sixth in board order), Enter.
    page.locator('section[aria-label="Not grouped"] .card').first.focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(page.locator(".card:focus")).to_contain_text("Slow training")
    page.keyboard.press("m")
    expect(page.locator("#move-target")).to_be_focused()
    page.keyboard.type("6")
    page.keyboard.press("Enter")
    expect(page.locator('section[aria-label="Performance"] .card')).to_contain_text("Slow training")

    # The outdated view tries to move the same card: refused, with the reason and the
    # current board.
    card(stale, "Slow training").focus()
    stale.keyboard.press("m")
    stale.keyboard.type("1")
    stale.keyboard.press("Enter")
    expect(stale.locator("#board .error")).to_contain_text(
        "'Slow training' changed since you loaded the board"
    )
    expect(stale.locator('section[aria-label="Performance"] .card')).to_contain_text(
        "Slow training"
    )
    stale.close()

    # Renaming by keyboard: r, then the new name.
    page.once("dialog", lambda dialog: dialog.accept("Slow training runs"))
    card(page, "Slow training").focus()
    page.keyboard.press("r")
    expect(page.locator('section[aria-label="Performance"] .card')).to_contain_text(
        "Slow training runs"
    )

    for text in ["Missing docs", "Unclear example", "GPU out of memory", "Slow tokenizer"]:
        target = page.locator(f'section[aria-label="{PLACES[text][0]}"]')
        card(page, text).drag_to(target.locator("h2"))
        expect(target.locator(".card")).to_contain_text(text)
    expect(page.locator('section[aria-label="Not grouped"] .card')).to_have_count(0)
    expect(page.locator("#board")).to_contain_text("padmin moved 'Slow training' to 'Performance'")
    screenshot(page, "affinity-board")

    page.fill("#codebook-name", "Reuse challenges")
    page.click("text=Make the codebook and apply it")
    page.wait_for_url(f"**/projects/{project.slug}/board/provisional/")
    for n, unit in enumerate(project.units.order_by("position")):
        expected = {PLACES[codes_for("alice", n)][1], PLACES[TEXTS[(n + 1) % 5]][1]}
        row = page.locator(f"#unit-{unit.pk}")
        for name in expected:
            expect(row).to_contain_text(name)
        stored = set(ProvisionalCode.objects.filter(unit=unit).values_list("code__name", flat=True))
        assert stored == expected
    project.refresh_from_db()
    assert str(project.codebook_version) == "Reuse challenges v1"
    assert not page.js_errors
