"""Web-started imports reach only public addresses, checked on the connected socket.

The host name is checked when the form is sent and again when the worker starts; a name
can still resolve elsewhere a moment later (DNS rebinding), so the connection itself is
checked too. Command-line imports, run by a trusted shell user, may use local forums.
"""

from __future__ import annotations

import pytest

from coding.importers.discourse import (
    DiscourseClient,
    DiscourseError,
    DiscourseImport,
    ImportOptions,
    create_run,
)
from coding.importers.public_http import is_public_address
from coding.models import ImportRun, Thread
from tests.fake_discourse import FakeDiscourse, FakeForum


@pytest.fixture
def fake():
    forum = FakeForum()
    for topic_id in range(1, 4):
        forum.add_topic(topic_id, posts=2)
    with FakeDiscourse(forum) as server:
        yield server


def _client(url: str, **options) -> DiscourseClient:
    return DiscourseClient(url, rate=0, max_tries=2, backoff=0.01, timeout=2, **options)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_public_only_client_refuses_a_local_address_before_sending_a_request(fake, host):
    url = fake.url.replace("127.0.0.1", host)
    client = _client(url, public_only_hosts=True)

    with pytest.raises(DiscourseError, match=r"private or local address \(127\.0\.0\.1\)"):
        client.get_json("/latest.json")
    assert fake.requests == []


def test_the_same_client_without_the_guard_reads_the_local_forum(fake):
    data = _client(fake.url).get_json("/latest.json")

    assert len(data["topic_list"]["topics"]) == 3


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.9", "172.16.5.5", "169.254.169.254", "::1",
     "::ffff:127.0.0.1", "fe80::1%eth0", "fd00::1", "0.0.0.0", "100.64.0.1"],  # noqa: S104
)  # fmt: skip
def test_loopback_private_link_local_and_metadata_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_ordinary_internet_addresses_are_public(address):
    assert is_public_address(address)


@pytest.mark.django_db
def test_a_web_started_run_whose_forum_resolves_locally_fails_and_writes_nothing(fake, settings):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = False
    options = ImportOptions(base_url=fake.url.replace("127.0.0.1", "localhost"), rate=0)
    run = create_run(options, extra_params={"from_web": True})

    importer = DiscourseImport(run)
    importer.execute()

    run.refresh_from_db()
    assert run.state == ImportRun.State.FAILED
    assert "private or local address" in run.message
    assert Thread.objects.count() == 0
    assert fake.requests == []


@pytest.mark.django_db
def test_a_web_started_run_may_read_a_local_forum_when_the_setting_allows_it(fake, settings):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = True
    run = create_run(ImportOptions(base_url=fake.url, rate=0), extra_params={"from_web": True})

    DiscourseImport(run).execute()

    run.refresh_from_db()
    assert run.state == ImportRun.State.DONE
    assert Thread.objects.count() == 3


@pytest.mark.django_db
def test_a_command_line_run_may_read_a_local_forum(fake, settings):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = False
    run = create_run(ImportOptions(base_url=fake.url, rate=0))

    DiscourseImport(run).execute()

    run.refresh_from_db()
    assert run.state == ImportRun.State.DONE
    assert Thread.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["500", "malformed"])
def test_a_failed_run_never_shows_the_forums_own_answer(fake, kind):
    fake.fault(kind, "/latest", times=10)
    run = create_run(ImportOptions(base_url=fake.url, rate=0))

    DiscourseImport(run, client_options={"max_tries": 2, "backoff": 0.01}).execute()

    run.refresh_from_db()
    assert run.state == ImportRun.State.FAILED
    assert "SECRET-UPSTREAM-PAGE" not in run.message
    assert "/latest.json" in run.message
