"""The trends page in Chromium: its charts render for the bundled sample data."""

from __future__ import annotations

from pathlib import Path

import pytest

from coding.importers.hub import import_dump
from coding.synthetic import make_corpus
from tests.browser.conftest import login, screenshot
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = Path(__file__).resolve().parent.parent.parent / "sample_data" / "hub_sample.jsonl"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _sample_data() -> None:
    make_corpus(120, 4, seed=1)
    import_dump(SAMPLE)


def test_the_trends_page_renders_every_chart_for_the_sample_data(live_server, page):
    _sample_data()
    make_user("alice")
    login(page, live_server, "alice")

    page.goto(f"{live_server.url}/trends/")

    assert page.locator("h1").inner_text() == "Forum and Hub trends"
    images = page.locator("main img")
    assert images.count() == 4
    for index in range(4):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        assert image.evaluate("img => img.naturalWidth") >= 800
        assert image.get_attribute("alt")
    stats = page.locator("table.stats").first.inner_text()
    assert "Totals over each series' own months" in stats
    assert "undefined" not in stats
    page.locator("summary", has_text="per model type").click()
    assert "bert" in page.locator("details[open] table").inner_text()
    assert page.js_errors == []
    assert screenshot(page, "trends-page").stat().st_size > 20000


def test_staff_review_an_ambiguous_name_in_place(live_server, page):
    _sample_data()
    make_user("staff", is_staff=True)
    login(page, live_server, "staff")

    page.goto(f"{live_server.url}/trends/review/")
    row = page.locator("#review-opt")
    row.locator("select[name=action]").select_option("exclude")
    row.locator("input[name=note]").fill("mostly the verb")
    row.locator("button[type=submit]").click()

    page.wait_for_function(
        "() => document.querySelector('#review-opt .reviewed').textContent.includes('staff')"
    )
    assert page.url.endswith("/trends/review/")
    assert page.locator("#review-opt select[name=action]").input_value() == "exclude"
    assert page.js_errors == []
    screenshot(page, "trends-review")


def test_staff_see_the_hub_import_forms_and_the_excluded_name_is_gone(live_server, page):
    _sample_data()
    make_user("staff", is_staff=True)
    login(page, live_server, "staff")
    page.goto(f"{live_server.url}/trends/")
    page.locator("summary", has_text="most mentioned").click()
    assert "whisper" in page.locator("details[open] table").inner_text()
    assert b">whisper<" in page.request.get(f"{live_server.url}/trends/charts/forum.svg").body()

    page.goto(f"{live_server.url}/trends/review/")
    row = page.locator("#review-whisper")
    row.locator("select[name=action]").select_option("exclude")
    row.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('#review-whisper .reviewed').textContent.includes('staff')"
    )

    page.goto(f"{live_server.url}/trends/")
    assert page.get_by_role("button", name="Start Hub import").is_visible()
    assert "No Hub import has run yet." in page.locator("#hub-run").inner_text()
    page.locator("summary", has_text="most mentioned").click()
    assert "whisper" not in page.locator("details[open] table").inner_text()
    # The charts follow the decision too (they are not served from the browser's cache).
    chart = page.request.get(f"{live_server.url}/trends/charts/forum.svg")
    assert chart.headers["cache-control"] == "private, no-cache"
    assert b">whisper<" not in chart.body()
    assert page.js_errors == []
    screenshot(page, "trends-page-staff")
