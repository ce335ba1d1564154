import random

import pytest

from coding.models import CodeApplication, Coding, GoldLabel, Round, Unit
from tests.browser.conftest import login, screenshot
from tests.factories import make_project, make_source, make_thread
from tests.factories_coding import make_codebook_version
from tests.factories_exports import code_unit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _thirty_coded_units(users):
    """30 units coded by alice and bob; seeded so that about a third disagree."""
    project = make_project("gold", admin=users["admin"], annotators=[users["alice"], users["bob"]])
    project.codebook_version = make_codebook_version("Gold codebook")
    project.save()
    round_ = Round.objects.create(project=project, name="Main")
    source = make_source("Gold forum", "https://gold.forum.test")
    rng = random.Random(7)
    keys = ["install", "memory", "docs"]
    for n in range(30):
        thread = make_thread(f"Thread {n}", source=source, external_id=n + 1)
        unit = Unit.objects.create(project=project, round=round_, thread=thread, position=n)
        first = sorted(rng.sample(keys, rng.randint(1, 2)))
        second = first if rng.random() < 0.65 else sorted(rng.sample(keys, rng.randint(1, 2)))
        code_unit(unit, users["alice"], first)
        code_unit(unit, users["bob"], second)
    return project


def test_admin_bulk_accepts_then_resolves_every_disagreement_with_the_keyboard(
    live_server, page, users
):
    project = _thirty_coded_units(users)

    def keys(unit, coder):
        applied = CodeApplication.objects.filter(coding__unit=unit, coding__coder=coder)
        return set(applied.values_list("code__key", flat=True))

    disagreements = [
        u for u in project.units.all() if keys(u, users["alice"]) != keys(u, users["bob"])
    ]
    assert 3 <= len(disagreements) <= 20

    login(page, live_server, "padmin")
    page.goto(f"{live_server.url}/projects/gold/adjudicate/")
    page.click("#bulk-accept")
    assert GoldLabel.objects.count() == 30 - len(disagreements)

    page.click("#queue tbody tr:first-child a")
    decided = {}
    refused = []
    rules = ["u", "i", "m"]
    for step in range(len(disagreements)):
        page.wait_for_selector("#decision-form")
        unit_id = int(page.url.rstrip("/").split("/")[-1])
        page.locator("body").press(rules[step % 3])
        chosen = page.eval_on_selector_all(
            "input[name=codes]:checked", "boxes => boxes.map(b => b.value)"
        )
        if not chosen:
            # The coders share no code: a gold label needs one (or "not relevant").
            page.locator("body").press("Enter")
            page.wait_for_load_state("load")
            assert page.get_by_text("Not saved: choose at least one code").is_visible()
            assert page.url.rstrip("/").endswith(f"/{unit_id}")
            page.locator("body").press("u")
            chosen = page.eval_on_selector_all(
                "input[name=codes]:checked", "boxes => boxes.map(b => b.value)"
            )
            refused.append(unit_id)
        decided[unit_id] = set(chosen)
        page.locator("body").press("Enter")
        page.wait_for_load_state("load")

    assert "/adjudicate/" in page.url and page.url.endswith("/adjudicate/")
    assert "100% adjudicated" in page.locator("#adjudication-progress").inner_text()
    screenshot(page, "adjudication-done")
    for unit_id, chosen in decided.items():
        gold = GoldLabel.objects.get(unit_id=unit_id)
        stored = {c.key for c in gold.codes.all()} | (
            {"__not_relevant__"} if gold.not_relevant else set()
        )
        assert stored == chosen
    assert Coding.objects.count() == 60
    # Some disagreements share no code, so intersection or majority was refused at least once.
    assert refused and all(decided[u] for u in refused)
    # The browser logs each refused decision's 400 response, and nothing else.
    bad_request = "the server responded with a status of 400 (Bad Request)"
    assert sum(bad_request in e for e in page.js_errors) == len(refused)
    assert [e for e in page.js_errors if bad_request not in e] == []
