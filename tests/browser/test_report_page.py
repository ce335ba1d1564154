import csv
import io

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import login, screenshot
from tests.factories import make_user
from tests.factories_reports import make_report_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KINDS = ("frequency", "trend", "cooccurrence")


def _shown_table(page: Page, kind: str) -> list[list[str]]:
    section = page.locator(f"#chart-{kind}")
    details = section.locator("details").first
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    table = section.locator("table.report-table")
    header = table.locator("thead th").all_inner_texts()
    rows = [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]
    return [header, *rows]


def _downloaded_csv(page: Page, kind: str) -> list[list[str]]:
    href = page.locator(f"#chart-{kind} a.csv").get_attribute("href")
    response = page.request.get(
        href if href.startswith("http") else page.url.split("/projects")[0] + href
    )
    assert response.status == 200
    return list(csv.reader(io.StringIO(response.text())))


def _charts_loaded(page: Page) -> list[bool]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('img.chart'))"
        ".map(img => img.complete && img.naturalWidth > 100)"
    )


def test_report_page_shows_three_charts_whose_csv_equals_the_table_shown(live_server, page):
    users = {name: make_user(name) for name in ("padmin", "alice", "bob")}
    users["admin"] = users["padmin"]
    make_report_project(users)

    login(page, live_server, "padmin")
    page.goto(f"{live_server.url}/projects/report-study/reports/")

    assert "gold labels for 6 of 8 units" in page.locator("#basis-statement").inner_text()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.chart'))"
        ".every(img => img.complete && img.naturalWidth > 100)"
    )
    assert _charts_loaded(page) == [True, True, True]
    for kind in KINDS:
        assert _shown_table(page, kind) == _downloaded_csv(page, kind)
    assert _shown_table(page, "frequency")[1][:4] == ["Challenges", "ch.a", "Category A", "2"]

    # The period selector redraws the report in place; the CSV follows the new table.
    with page.expect_response(lambda r: "by=quarter" in r.url and "/reports/?" in r.url):
        page.select_option("#id_by", "quarter")
    page.wait_for_selector("#chart-trend img[src*='by=quarter']")
    trend = _shown_table(page, "trend")
    assert trend[0] == ["code", "label", "2021-Q1"]
    assert trend == _downloaded_csv(page, "trend")
    assert "by=quarter" in page.url

    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.chart'))"
        ".every(img => img.complete && img.naturalWidth > 100)"
    )
    screenshot(page, "report-page")
    assert page.js_errors == []
