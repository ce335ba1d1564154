import pytest

from tests.browser.conftest import login, screenshot
from tests.factories import make_project, make_thread, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_user_logs_in_through_the_login_page_and_sees_their_projects(live_server, page):
    alice = make_user("alice")
    make_project("pretrained-reuse", admin=make_user("lead"), annotators=[alice])
    make_thread()

    login(page, live_server, "alice")

    assert page.locator("h1").inner_text() == "Welcome, alice"
    assert "Pretrained-Reuse" in page.locator("main table").inner_text()
    assert "Annotator" in page.locator("main table").inner_text()
    path = screenshot(page, "login-home")
    assert path.stat().st_size > 5000
    assert page.js_errors == []


def test_wrong_password_shows_an_error_and_stays_on_the_login_page(live_server, page):
    make_user("alice")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")

    assert "/accounts/login/" in page.url
    assert "correct username and password" in page.locator("[role=alert]").inner_text()


def test_htmx_loads_without_violating_the_content_security_policy(live_server, page):
    make_user("alice")
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security" in msg.text else None,
    )

    login(page, live_server, "alice")

    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("document.body.classList.contains('js')")
    assert violations == []
