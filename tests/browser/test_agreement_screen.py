import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.factories import make_user
from tests.factories_codings import make_coded_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_reads_agreement_switches_to_categories_and_copies_the_methods(live_server, page):
    users = {name: make_user(name) for name in ("padmin", "alice", "bob")}
    users["admin"] = users["padmin"]
    project = make_coded_project(users)
    login(page, live_server, "padmin")

    page.goto(f"{live_server.url}/projects/{project.slug}/agreement/")
    assert page.locator("h1").inner_text() == f"Agreement · {project.name}"
    assert page.locator("tr[data-code='load-error']").count() == 1
    chart_width = page.locator("img.chart").evaluate("img => img.complete && img.naturalWidth")
    assert chart_width > 100

    page.select_option("#id_level", "category")
    page.wait_for_selector("tr[data-code='loading']")
    assert "level=category" in page.url
    assert page.locator("tr[data-code='load-error']").count() == 0
    assert "codes rolled up to categories" in page.locator("#methods-text").input_value()
    expect(page.locator("img.chart")).to_have_js_property("complete", True)
    assert page.locator("img.chart").evaluate("img => img.naturalWidth") > 100

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy]")
    expect(page.locator("button[data-copy]")).to_have_text("Copied")
    assert page.js_errors == []
    # Last: after a screenshot Playwright's injected styles trip the page's strict CSP.
    screenshot(page, "agreement-categories")
