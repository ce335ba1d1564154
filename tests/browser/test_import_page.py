"""Staff start a forum import in the browser, a real task worker runs it, the page follows."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect

from coding.models import ImportRun, Thread
from tests.browser.conftest import login, screenshot
from tests.child_process import ROOT, db_env, manage
from tests.factories import make_user
from tests.fake_discourse import FakeDiscourse, make_forum

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        manage("db_worker", "--no-startup-delay", "--interval", "0.2", "--no-reload"),
        env=db_env(IMPORT_ALLOW_PRIVATE_HOSTS="1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_an_import_shows_live_progress_survives_a_reload_and_a_worker_restart(
    live_server, page, settings
):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_user("staff", is_staff=True)
    forum = make_forum(40, 160, seed=3)
    with FakeDiscourse(forum) as fake:
        fake.hold("/t/20.json")  # the forum stalls on topic 20 until released
        worker = start_worker()
        try:
            login(page, live_server, "staff")
            page.click("nav >> text=Imports")
            page.fill("#id_base_url", fake.url)
            page.fill("#id_rate", "10")  # slow enough to watch
            page.click("button:has-text('Start import')")

            topics = page.get_by_test_id("topics")
            # Topics are fetched in id order, so 19 are done while topic 20 is held.
            expect(topics).to_have_text("19/40 topics", timeout=30_000)
            expect(page.locator(".state")).to_have_text("Fetching")
            screenshot(page, "import-progress")

            page.reload()
            expect(topics).to_have_text("19/40 topics")
            run = ImportRun.objects.get()
            assert run.state == ImportRun.State.FETCHING and run.topics_done == 19

            # The worker dies mid-run; the page notices and the import can be resumed.
            stop(worker)
            expect(page.get_by_text("No sign of life")).to_be_visible(timeout=10_000)
            fake.release()
            page.click("button:has-text('Run again and resume')")
            expect(page.locator(".state")).to_have_text("Queued")

            fetched_before = set(fake.topic_fetches())
            worker = start_worker()
            expect(page.locator(".state")).to_have_text("Done", timeout=30_000)
            expect(topics).to_have_text("21/21 topics")
            screenshot(page, "import-done")
        finally:
            stop(worker)

    assert Thread.objects.count() == 40
    resumed = set(fake.topic_fetches()) - fetched_before
    assert not resumed & {f"/t/{n}.json" for n in range(1, 20)}
    assert ImportRun.objects.latest("pk").threads_new == 21
    assert page.js_errors == []
