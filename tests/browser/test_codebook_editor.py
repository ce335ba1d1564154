"""An admin renames and merges codes in the browser; the pinned project reads its codings
unchanged until the admin upgrades it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from coding.codebook import Node, load_nodes
from coding.models import CodeApplication, Coding, Round, Unit
from tests.browser.conftest import login, screenshot
from tests.factories import make_project, make_thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def build_study(users):
    codebook, version, _ = load_nodes(
        "Study",
        "",
        [
            Node(key="problems", name="Problems", codable=False),
            Node(key="problems.install", name="Install", parent="problems"),
            Node(key="problems.setup", name="Setup", parent="problems"),
            Node(key="help", name="Help"),
        ],
    )
    project = make_project("study", admin=users["admin"], annotators=[users["alice"]])
    project.codebook_version = version
    project.save()
    round_ = Round.objects.create(project=project, name="main")
    unit = Unit.objects.create(project=project, round=round_, thread=make_thread())
    coding = Coding.objects.create(unit=unit, coder=users["alice"], codebook_version=version)
    for key in ("problems.setup", "help"):
        CodeApplication.objects.create(coding=coding, code=version.codes.get(key=key))
    return codebook, project


def test_admin_renames_and_merges_and_the_pinned_project_reads_old_codes_until_upgraded(
    page, live_server, users
):
    codebook, _ = build_study(users)
    login(page, live_server, "padmin")
    page.goto(f"{live_server.url}/codebooks/{codebook.pk}/edit/")
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_role("link", name="Help").click()
    page.get_by_role("textbox", name="Rename").fill("Answers")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_contain_text("Saved as version 2")
    expect(page.get_by_role("status")).to_be_focused()  # read out, keyboard stays in place

    page.get_by_role("link", name="Setup").click()
    expect(page.locator("#code-panel h2").first).to_have_text("Setup")
    expect(page.locator(".tree a.selected")).to_be_focused()
    page.get_by_role("combobox", name="Merge into").select_option(label="Problems > Install")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("status")).to_contain_text("Saved as version 3: Merged 'Setup'")
    assert page.evaluate("window.stillTheSamePage") is True  # htmx swaps, no reloads
    screenshot(page, "codebook-editor")

    page.goto(f"{live_server.url}/codebooks/{codebook.pk}/history/")
    versions = page.locator("ol.versions")
    expect(versions).to_contain_text("Renamed 'Help' to 'Answers'")
    expect(versions).to_contain_text("Merged 'Setup' into 'Install'")
    page.get_by_label("From").select_option("1")
    page.get_by_label("to", exact=True).select_option("3")
    page.get_by_role("button", name="Show differences").click()
    diff = page.locator("#diff")
    expect(diff).to_contain_text("From v1 to v3")
    expect(diff).to_contain_text("Renamed 'Help' to 'Answers'")
    expect(diff).to_contain_text("Setup → Install")
    screenshot(page, "codebook-history")

    page.goto(f"{live_server.url}/projects/study/codebook/")
    usage = page.locator("table.usage")
    expect(usage).to_contain_text("Problems > Setup")
    expect(usage).to_contain_text("Help")
    expect(usage).not_to_contain_text("Answers")
    page.get_by_label("Newer version").select_option("3")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("Upgrading from v1 to v3")
    page.get_by_role("button", name="Upgrade to v3").click()

    expect(page.locator(".messages")).to_contain_text("Upgraded to Study v3")
    expect(usage).to_contain_text("Problems > Install")
    expect(usage).to_contain_text("Answers")
    expect(usage).not_to_contain_text("Setup")
    expect(page.locator("ul.upgrades")).to_contain_text("padmin · v1 → v3")
    screenshot(page, "project-codebook-upgraded")
    assert (
        Coding.objects.get().applications.get(code__key="problems.setup").code.version.number == 1
    )
    assert page.js_errors == []


def test_a_code_name_of_300_unbroken_letters_wraps_instead_of_widening_the_pages(
    page, live_server, users
):
    codebook, _ = build_study(users)
    long_name = "Unbrokenname" * 25
    login(page, live_server, "padmin")
    editor = f"{live_server.url}/codebooks/{codebook.pk}/edit/"
    page.goto(editor)
    add = page.locator("form.op.add")
    add.locator("select[name=parent]").select_option("problems")
    add.locator("input[name=name]").fill(long_name)
    add.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Saved as version 2")).to_be_visible()
    for url in (editor, f"{editor}?code=problems", f"{live_server.url}/codebooks/{codebook.pk}/"):
        page.goto(url)
        expect(page.get_by_text(long_name).first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, (url, width)
    page.goto(f"{live_server.url}/codebooks/{codebook.pk}/history/")
    page.get_by_role("button", name="Show differences").click()
    expect(page.locator(".diff-table")).to_contain_text(long_name)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.js_errors == []
