"""Hostile text typed by users (code names and definitions, memos, rationales, open codes,
project and round names) runs nowhere: every page that shows it is opened in Chromium with the
content-security policy enforced and again with it switched off."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from coding.models import Code, CodeApplication, Coding, GoldLabel, OpenCode, Project
from coding.open_coding import normalize
from tests.browser.conftest import login
from tests.factories_coding import make_coding_project
from tests.xss_payloads import PAYLOADS

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
ALL = "\n".join(PAYLOADS)


def hostile_project(users: dict) -> Project:
    """A project where every user-entered field holds every payload."""
    project = make_coding_project(users, slug="hostile", units=2)
    project.name = f"Study {PAYLOADS[0]}"
    project.description = ALL
    project.coding_mode = Project.CodingMode.BOTH
    project.save()
    project.rounds.update(name=PAYLOADS[3][:100])
    version = project.codebook_version
    hostile = Code.objects.bulk_create(
        Code(
            version=version,
            key=f"hostile{n}",
            name=payload[:300],
            definition=payload,
            when_to_use=payload,
            when_not_to_use=payload,
            examples=[{"text": payload}],
            order=100 + n,
        )
        for n, payload in enumerate(PAYLOADS)
    )
    unit = project.units.order_by("position").first()
    for coder in (users["alice"], users["bob"]):
        coding = Coding.objects.create(
            unit=unit,
            coder=coder,
            codebook_version=version,
            status=Coding.Status.SUBMITTED,
            memo=ALL,
            submitted_at=timezone.now(),
            revision=1,
        )
        CodeApplication.objects.bulk_create(
            CodeApplication(coding=coding, code=code) for code in hostile[:10]
        )
        OpenCode.objects.bulk_create(
            OpenCode(coding=coding, text=text[:300], normalized=normalize(text)[:300], order=n)
            for n, text in enumerate(dict.fromkeys(PAYLOADS))
        )
    gold = GoldLabel.objects.create(
        unit=unit,
        codebook_version=version,
        rule=GoldLabel.Rule.MANUAL,
        rationale=ALL,
        decided_by=users["admin"],
    )
    gold.codes.set(hostile[:5])
    return project


def pages_for(project: Project) -> dict[str, list[str]]:
    slug = project.slug
    unit = project.units.order_by("position").first().pk
    codebook = project.codebook_version.codebook_id
    return {
        "alice": [
            "/",
            f"/projects/{slug}/",
            f"/projects/{slug}/units/",
            f"/projects/{slug}/units/{unit}/code/",
            f"/projects/{slug}/units/{unit}/open/",
            f"/codebooks/{codebook}/",
        ],
        "padmin": [
            f"/projects/{slug}/",
            f"/projects/{slug}/units/",
            f"/projects/{slug}/units/{unit}/code/",
            f"/projects/{slug}/units/{unit}/history/",
            f"/projects/{slug}/adjudicate/",
            f"/projects/{slug}/adjudicate/{unit}/",
            f"/projects/{slug}/codebook/",
            f"/projects/{slug}/agreement/",
            f"/projects/{slug}/reports/",
            f"/projects/{slug}/exports/",
            f"/projects/{slug}/members/",
            f"/projects/{slug}/board/",
            f"/projects/{slug}/board/provisional/",
            f"/codebooks/{codebook}/",
            f"/codebooks/{codebook}/edit/",
            f"/codebooks/{codebook}/history/",
        ],
    }


def visit_all(browser: Browser, live_server, pages: dict[str, list[str]], *, csp: bool) -> list:
    """Open every page as its user; return what ran or was blocked, page by page."""
    problems, shown = [], set()
    for username, paths in pages.items():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.add_init_script(SENTINEL)
        dialogs: list[str] = []
        page.on(
            "dialog", lambda dialog, seen=dialogs: (seen.append(dialog.message), dialog.dismiss())
        )
        login(page, live_server, username)
        for path in paths:
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, (username, path, response.status)
            has_header = "content-security-policy" in response.headers
            assert has_header == csp, (path, "CSP header present" if has_header else "no CSP")
            # Focus and hover what a user would: the first controls and code rows.
            for _ in range(6):
                page.keyboard.press("Tab")
            for row in page.locator("li, tr, .code").all()[:15]:
                if row.is_visible():
                    row.hover(timeout=2000)
            if "window.__xss()" in page.inner_text("body"):
                shown.add(path)
            ran = page.evaluate("window.__xss_calls")
            blocked = page.evaluate("window.__csp_violations")
            if ran or blocked or dialogs:
                problems.append((username, path, ran, blocked, list(dialogs)))
            dialogs.clear()
        context.close()
    # The payloads are on the pages as text: the test looked at what it meant to.
    for part in ("code/", "open/", "adjudicate/", "board/", "edit/"):
        assert any(p.endswith(part) for p in shown), f"no payload text on a {part} page"
    return problems


def canary(browser: Browser, live_server) -> tuple[list, list]:
    """A handler injected into a page: what the sentinel and the violation log saw."""
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(SENTINEL)
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=window.__xss()>')"
    )
    page.wait_for_function("window.__xss_calls.length + window.__csp_violations.length > 0")
    seen = page.evaluate("[window.__xss_calls, window.__csp_violations]")
    context.close()
    return seen


def test_hostile_user_text_runs_nowhere_with_the_policy_enforced(browser, live_server, users):
    project = hostile_project(users)
    assert len(PAYLOADS) >= 50

    assert visit_all(browser, live_server, pages_for(project), csp=True) == []
    ran, blocked = canary(browser, live_server)
    assert ran == [] and blocked  # the policy blocks a handler, and the log sees it


def test_hostile_user_text_runs_nowhere_with_the_policy_switched_off(
    browser, live_server, users, settings
):
    project = hostile_project(users)
    settings.CONTENT_SECURITY_POLICY = None

    assert visit_all(browser, live_server, pages_for(project), csp=False) == []
    ran, blocked = canary(browser, live_server)
    assert ran and blocked == []  # with no policy, an injected handler would be caught
