"""Staff start a live Hub import from the trends page; it runs as a background task."""

from __future__ import annotations

import pytest

from coding.models import HubModel, ImportRun
from tests.fake_hub import FakeHub, hub_item

pytestmark = pytest.mark.django_db

IMMEDIATE = {
    "default": {
        "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default"],
    }
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _models() -> list[dict]:
    return [
        hub_item(f"org/m{i}", created=f"2022-0{1 + i % 9}-01T00:00:00.000Z",
                 modified=f"2023-01-{10 + i:02d}T00:00:00.000Z")
        for i in range(7)
    ]  # fmt: skip


def test_staff_start_a_hub_import_and_see_its_result_on_the_trends_page(client, users, settings):
    settings.TASKS = IMMEDIATE
    with FakeHub(_models()) as hub:
        settings.HUB_URL = hub.url
        client.force_login(users["staff"])
        response = client.post("/trends/hub-import/", {"since": "2022-03-01"}, follow=True)
    body = response.content.decode()
    assert "queued" in body
    run = ImportRun.objects.get(kind=ImportRun.Kind.HUB)
    assert run.state == ImportRun.State.DONE
    assert run.created_by == users["staff"]
    assert run.params["query"]["since"] == "2022-03-01"
    assert set(HubModel.objects.values_list("repo_id", flat=True)) == {
        f"org/m{i}" for i in range(7) if 1 + i % 9 >= 3
    }
    assert run.message in body
    fragment = client.get("/trends/?part=hub-run", headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div id="hub-run"')
    assert "hx-trigger" not in fragment.content.decode()


def test_a_second_hub_import_is_refused_while_one_is_queued(client, users, settings):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default"]}
    }
    client.force_login(users["staff"])
    client.post("/trends/hub-import/", {})
    response = client.post("/trends/hub-import/", {}, follow=True)
    assert "is still running" in response.content.decode()
    assert ImportRun.objects.filter(kind=ImportRun.Kind.HUB).count() == 1
    assert 'hx-trigger="every 1s"' in client.get("/trends/").content.decode()


def test_a_bad_window_is_refused_with_a_message(client, users, settings):
    settings.TASKS = IMMEDIATE
    client.force_login(users["staff"])
    response = client.post(
        "/trends/hub-import/", {"since": "2023-01-01", "until": "2022-01-01"}, follow=True
    )
    assert "This date is before the start of the window." in response.content.decode()
    assert not ImportRun.objects.exists()


def test_only_staff_may_start_a_hub_import(client, users, settings):
    settings.TASKS = IMMEDIATE
    for name in ("admin", "alice", "outsider"):
        client.force_login(users[name])
        assert client.post("/trends/hub-import/", {}).status_code == 403
    assert not ImportRun.objects.exists()
