import re

import pytest
from playwright.sync_api import Browser, expect

from coding.codebook_io import load_default
from coding.models import Assignment, Project, Thread, Unit
from coding.sampling import sample_size
from coding.synthetic import make_corpus
from tests.browser.conftest import login, screenshot
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_admin_creates_a_project_samples_30_threads_and_sees_both_annotators_coding(
    live_server, page, browser
):
    make_user("lead", is_staff=True)
    make_user("alice")
    make_user("bob")
    _codebook, version, _changed = load_default()
    make_corpus(60, 2, seed=5)
    login(page, live_server, "lead")

    page.click("nav >> text=Projects")
    page.click("text=New project")
    page.fill("#id_name", "Model reuse")
    page.fill("#id_slug", "model-reuse")
    page.select_option("#id_codebook_version", str(version.pk))
    page.fill("#id_coders_per_unit", "2")
    matching = page.locator("#selection-count strong")
    expect(matching).to_have_text("60")
    page.select_option("#id_accepted_answer", "yes")
    expect(matching).to_have_text(str(Thread.objects.filter(has_accepted_answer=True).count()))
    page.select_option("#id_accepted_answer", "")
    expect(matching).to_have_text("60")
    page.click("button:has-text('Create project')")
    expect(page.locator("h1")).to_have_text("Model reuse")
    expect(page.locator("#sample-size")).to_contain_text("of 60 units left to sample")

    page.click(".project-links >> text=Members")
    for name in ("alice", "bob"):
        page.fill("#id_username", name)
        page.click("button:has-text('Add')")
        expect(page.locator(".messages")).to_contain_text(f"{name} added as annotator")
    page.click("text=← Model reuse")

    calculated = page.locator("#sample-size strong")
    expect(calculated).to_have_text(f"n = {sample_size(60, 0.95, 0.05)}")
    page.fill("#id_margin", "0.1")
    expect(calculated).to_have_text(f"n = {sample_size(60, 0.95, 0.1)}")
    page.select_option("#id_confidence", "0.9")
    expect(calculated).to_have_text(f"n = {sample_size(60, 0.9, 0.1)}")
    page.fill("#id_round_name", "main")
    page.fill("#id_size", "30")
    page.fill("#id_seed", "17")
    page.click("button:has-text('Sample and assign')")

    expect(page.locator(".messages")).to_contain_text(
        "Sampled 30 of 60 units into round main (seed 17); 60 assignments made."
    )
    rows = page.locator("table.progress").first.locator("tbody tr")
    for name in ("alice", "bob"):
        row = rows.filter(has_text=name)
        expect(row).to_contain_text("0/30 done")
    expect(page.locator("table.progress").nth(1)).to_contain_text("30 of 60, seed 17")
    screenshot(page, "project-setup-admin")

    page.click(".project-links >> text=Units and codings")
    expect(page.locator("table.units tbody tr")).to_have_count(30)
    expect(page.locator("table.units tbody tr").first).to_contain_text(re.compile("alice: To do"))
    expect(page.locator("table.units tbody tr").first).to_contain_text(re.compile("bob: To do"))

    project = Project.objects.get(slug="model-reuse")
    assert project.codebook_version == version
    assert Unit.objects.filter(project=project).count() == 30
    assert Assignment.objects.filter(unit__project=project, coder__username="alice").count() == 30

    # Each annotator codes their first unit (the same, shared one) with a different code.
    alices = _code_first_unit(browser, live_server, "alice", 0)
    bobs = _code_first_unit(browser, live_server, "bob", 1)

    page.reload()
    first_row = page.locator("table.units tbody tr").first
    expect(first_row).to_contain_text(f"alice: {alices}")
    expect(first_row).to_contain_text(f"bob: {bobs}")
    page.click("text=← Model reuse")
    for name in ("alice", "bob"):
        expect(page.locator("table.progress").first.locator("tr", has_text=name)).to_contain_text(
            "1/30 done"
        )
    screenshot(page, "project-setup-admin-progress")
    assert page.js_errors == []


def _code_first_unit(browser: Browser, live_server, name: str, code_index: int) -> str:
    """``name`` starts coding from the project page, ticks one code and saves; returns it.

    Then checks that their own units page shows their code and nobody else's.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, live_server, name)
    page.goto(f"{live_server.url}/projects/model-reuse/")
    page.click("a.start")
    page.wait_for_url("**/units/*/code/")
    first_url = page.url
    label = page.locator("#code-list label").nth(code_index)
    code_name = label.locator(".code-name").inner_text()
    label.locator("input[name=code]").check()
    page.click("#save-next")
    page.wait_for_url(lambda url: url != first_url)
    page.goto(f"{live_server.url}/projects/model-reuse/units/")
    rows = page.locator("table.units tbody tr")
    expect(rows).to_have_count(30)
    expect(rows.first).to_contain_text(code_name)
    other = "bob" if name == "alice" else "alice"
    expect(page.locator("main")).not_to_contain_text(other)
    page.goto(f"{live_server.url}/projects/model-reuse/")
    expect(page.locator(".cards")).to_contain_text("1/30")
    context.close()
    return code_name


def test_annotator_sees_their_queue_and_starts_coding_from_the_project_page(live_server, page):
    from coding.assignment import assign_units
    from coding.models import Membership, Role
    from coding.sampling import draw_round

    lead = make_user("lead", is_staff=True)
    alice = make_user("alice")
    _codebook, version, _changed = load_default()
    make_corpus(12, 2, seed=5)
    project = Project.objects.create(
        name="Model reuse", slug="model-reuse", codebook_version=version, created_by=lead
    )
    Membership.objects.create(project=project, user=lead, role=Role.ADMIN)
    Membership.objects.create(project=project, user=alice, role=Role.ANNOTATOR)
    draw_round(project, size=5, seed=1)
    assign_units(project)

    login(page, live_server, "alice")
    page.click("nav >> text=Projects")
    expect(page.locator("table.projects")).to_contain_text("Annotator")
    expect(page.locator("table.projects")).to_contain_text("0/5 done")
    page.click("text=Model reuse")
    expect(page.locator(".queue li")).to_have_count(5)
    expect(page.locator("text=Draw a sample")).to_have_count(0)
    expect(page.locator("a.start")).to_have_attribute("href", "/projects/model-reuse/next/")
    assert page.js_errors == []
