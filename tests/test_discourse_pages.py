"""The staff import pages: start a forum import in the background, watch it, cancel it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from coding.importers.discourse import ImportOptions, create_run
from coding.models import ImportRun, Thread
from coding.tasks import run_discourse_import
from tests.factories import PASSWORD
from tests.fake_discourse import FakeDiscourse, FakeForum

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake():
    forum = FakeForum()
    for topic_id in range(1, 6):
        forum.add_topic(topic_id, posts=3, tags=["bert"])
    with FakeDiscourse(forum) as server:
        yield server


@pytest.fixture
def staff_client(client, users):
    client.login(username="staff", password=PASSWORD)
    return client


@pytest.fixture
def local_hosts_allowed(settings):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = True


def _start(client, url: str, **fields):
    data = {"base_url": url, "rate": "10", **fields}
    return client.post("/imports/", data)


@pytest.mark.parametrize("who", ["padmin", "alice", "bob", "outsider"])
def test_only_staff_may_see_or_start_imports(client, users, who):
    client.login(username=who, password=PASSWORD)

    assert client.get("/imports/").status_code == 403
    assert _start(client, "https://forum.test").status_code == 403
    assert not ImportRun.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/imports/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_starting_an_import_queues_a_background_task_and_shows_the_run(
    staff_client, fake, local_hosts_allowed
):
    response = _start(staff_client, fake.url, tags="bert", max_topics="3")

    run = ImportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{run.pk}/"
    assert run.state == ImportRun.State.QUEUED and run.created_by.username == "staff"
    assert run.params["tags"] == ["bert"] and run.params["max_topics"] == 3
    assert DBTaskResult.objects.filter(id=run.task_id).exists()
    page = staff_client.get(response["Location"]).content.decode()
    assert "Queued" in page and 'hx-trigger="every 1s"' in page


def test_the_worker_task_carries_out_the_run(staff_client, fake, local_hosts_allowed):
    _start(staff_client, fake.url)
    run = ImportRun.objects.get()

    assert run_discourse_import.call(run.pk) == ImportRun.State.DONE

    run.refresh_from_db()
    assert run.summary_line() == (
        "threads: 5 new, 0 updated, 0 unchanged; posts: 15 new, 0 updated, 0 unchanged"
    )
    assert Thread.objects.count() == 5
    fragment = staff_client.get(f"/imports/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="run-progress"')
    assert "5/5 topics" in fragment and "every 1s" not in fragment  # polling stops


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://forum.test", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://127.0.0.1:8000", "private or local address"),
        ("http://169.254.169.254/latest", "private or local address"),
    ],
)
def test_unsafe_forum_addresses_are_refused_with_a_message(staff_client, url, message):
    response = _start(staff_client, url)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportRun.objects.exists()


def test_bad_filters_are_refused_with_a_message(staff_client, fake, local_hosts_allowed):
    response = _start(
        staff_client, fake.url, categories="ok, ../../admin", since="2023-02-01", until="2022-01-01"
    )
    page = response.content.decode()
    assert "is not a valid name" in page
    assert "before the start of the window" in page
    assert not ImportRun.objects.exists()


def test_a_second_import_of_a_forum_being_imported_is_refused(
    staff_client, fake, local_hosts_allowed
):
    _start(staff_client, fake.url)
    first = ImportRun.objects.get()

    response = _start(staff_client, fake.url, tags="bert")

    assert response.status_code == 200
    assert f"is running (run #{first.pk}" in response.content.decode()
    assert ImportRun.objects.count() == 1


def test_a_queued_run_no_worker_picked_up_says_so(staff_client, fake, local_hosts_allowed):
    _start(staff_client, fake.url)
    run = ImportRun.objects.get()
    ImportRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=2))

    page = staff_client.get(f"/imports/{run.pk}/").content.decode()

    assert "no worker has picked it up" in page and "db_worker" in page


def test_cancelling_a_queued_run_closes_it_and_the_worker_skips_it(
    staff_client, fake, local_hosts_allowed
):
    _start(staff_client, fake.url)
    run = ImportRun.objects.get()

    response = staff_client.post(f"/imports/{run.pk}/cancel/", HTTP_HX_REQUEST="true")

    assert "Cancelled" in response.content.decode()
    assert ImportRun.objects.get().state == ImportRun.State.CANCELLED
    assert run_discourse_import.call(run.pk) == "not started"
    assert not Thread.objects.exists()


def test_cancelling_a_running_import_asks_it_to_stop(staff_client, fake):
    run = create_run(ImportOptions(base_url=fake.url))

    staff_client.post(f"/imports/{run.pk}/cancel/")

    run.refresh_from_db()
    assert run.cancel_requested and run.state == ImportRun.State.FETCHING
    assert "cancel requested" in staff_client.get(f"/imports/{run.pk}/").content.decode()


def test_a_run_whose_process_stopped_can_be_resumed_from_its_page(
    staff_client, fake, local_hosts_allowed
):
    run = create_run(ImportOptions(base_url=fake.url, refresh=True, rate=0))
    ImportRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=30),
        params={**run.params, "cursor": 3, "worker": {"host": "gone", "pid": 1}},
    )
    page = staff_client.get(f"/imports/{run.pk}/").content.decode()
    assert "No sign of life" in page and "Run again and resume" in page

    response = staff_client.post(f"/imports/{run.pk}/resume/")

    new_run = ImportRun.objects.latest("pk")
    assert response["Location"] == f"/imports/{new_run.pk}/"
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.FAILED
    assert new_run.params["cursor"] == 3 and new_run.params["resumes"] == run.pk
    run_discourse_import.call(new_run.pk)
    assert set(Thread.objects.values_list("external_id", flat=True)) == {1, 2, 3, 4, 5}


def test_the_list_of_runs_costs_a_fixed_number_of_queries(
    staff_client, fake, django_assert_num_queries
):
    for n in range(4):
        run = create_run(ImportOptions(base_url=f"{fake.url}/f{n}"))
        ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.DONE)
    # session with user, runs with their sources and creators
    with django_assert_num_queries(2):
        page = staff_client.get("/imports/").content.decode()
    assert page.count("/imports/") >= 4


def test_the_progress_fragment_costs_a_fixed_number_of_queries(
    staff_client, fake, django_assert_num_queries
):
    run = create_run(ImportOptions(base_url=fake.url))
    with django_assert_num_queries(2):
        staff_client.get(f"/imports/{run.pk}/", HTTP_HX_REQUEST="true")
