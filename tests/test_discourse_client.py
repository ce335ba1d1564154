"""The Discourse client against a real fake server: rate limits, faults, size cap, redirects."""

from __future__ import annotations

import pytest

from coding.importers.discourse import (
    USER_AGENT,
    DiscourseClient,
    DiscourseError,
    ImportOptions,
    NotFound,
    check_public_host,
    normalize_base_url,
    parse_topic,
    run_import,
)
from coding.models import ImportRun, Thread
from tests.fake_discourse import FakeDiscourse, FakeForum


@pytest.fixture
def fake():
    forum = FakeForum()
    for topic_id in range(1, 4):
        forum.add_topic(topic_id, posts=2)
    with FakeDiscourse(forum) as server:
        yield server


def _client(fake: FakeDiscourse, **options) -> tuple[DiscourseClient, list]:
    waits: list[tuple[float, str]] = []

    def sleep(seconds: float, reason: str) -> None:
        waits.append((seconds, reason))

    options = {"rate": 0, "backoff": 0.01, "timeout": 2, "max_tries": 4, **options}
    return DiscourseClient(fake.url, sleep=sleep, **options), waits


def test_requests_carry_a_user_agent_naming_the_tool_and_optional_api_headers(fake):
    client, _ = _client(fake, api_key="k3y", api_username="importer")
    client.get_json("/latest.json")
    headers = fake.headers[-1]
    assert headers["User-Agent"] == USER_AGENT and "forum-coding" in USER_AGENT
    assert headers["Api-Key"] == "k3y" and headers["Api-Username"] == "importer"


def test_a_proxy_named_in_the_environment_carries_the_requests(fake, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = DiscourseClient("http://forum.invalid", rate=0, timeout=2, max_tries=1)
    assert client.get_json("/t/1.json")["id"] == 1
    assert fake.requests[-1] == "http://forum.invalid/t/1.json"


def test_a_forum_listed_in_no_proxy_is_reached_directly(fake, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client, _waits = _client(fake)
    assert client.get_json("/t/1.json")["id"] == 1


def test_a_429_with_retry_after_is_waited_out_and_retried(fake):
    fake.fault("429", "/latest", seconds=7)
    client, waits = _client(fake)

    data = client.get_json("/latest.json")

    assert len(data["topic_list"]["topics"]) == 3
    assert waits == [(7.0, "rate limit")]
    assert fake.requests == ["/latest.json", "/latest.json"]


def test_a_429_with_only_wait_seconds_in_its_json_is_waited_out(fake):
    fake.fault("429json", "/t/1", seconds=3)
    client, waits = _client(fake)

    client.get_json("/t/1.json")

    assert waits == [(3.0, "rate limit")]


def test_a_429_asking_for_too_long_a_wait_fails_with_a_clear_message(fake):
    fake.fault("429", "/latest", seconds=3600)
    client, _ = _client(fake, max_wait=600)

    with pytest.raises(DiscourseError, match="asks to wait 3600 s"):
        client.get_json("/latest.json")


def test_server_errors_back_off_exponentially_then_succeed(fake):
    fake.fault("500", "/latest", times=2)
    client, waits = _client(fake, backoff=1.0)

    client.get_json("/latest.json")

    assert [reason for _, reason in waits] == ["backoff", "backoff"]
    first, second = (seconds for seconds, _ in waits)
    assert 0.5 <= first <= 1.5 and 1.0 <= second <= 3.0


def test_persistent_server_errors_give_up_without_echoing_the_body(fake):
    fake.fault("502", "/latest", times=10)
    client, _ = _client(fake)

    with pytest.raises(DiscourseError) as caught:
        client.get_json("/latest.json")

    assert str(caught.value) == "/latest.json: gave up after 4 tries (server error 502)"
    assert "SECRET" not in str(caught.value)
    assert len(fake.requests) == 4


def test_a_connection_reset_is_retried(fake):
    fake.fault("reset", "/t/2")
    client, waits = _client(fake)

    data = client.get_json("/t/2.json")

    assert data["id"] == 2
    assert len(fake.requests) == 2 and waits[0][1] == "backoff"


def test_a_response_slower_than_the_timeout_is_retried(fake):
    fake.fault("slow", "/t/3", seconds=2.5)
    client, waits = _client(fake, timeout=0.8)

    assert client.get_json("/t/3.json")["id"] == 3
    assert fake.requests[:2] == ["/t/3.json", "/t/3.json"]
    assert waits[0][1] == "backoff"


def test_malformed_json_is_retried_then_reported_without_the_body(fake):
    fake.fault("malformed", "/latest")
    client, _ = _client(fake)
    assert client.get_json("/latest.json")["topic_list"]

    fake.fault("malformed", "/latest", times=10)
    with pytest.raises(DiscourseError) as caught:
        client.get_json("/latest.json")
    assert "malformed JSON" in str(caught.value) and "SECRET" not in str(caught.value)


def test_a_response_over_the_size_cap_is_refused(fake):
    fake.fault("huge", "/latest", seconds=40)  # about 2.6 MB, streamed without a length
    client, _ = _client(fake, max_bytes=1024 * 1024)

    with pytest.raises(DiscourseError, match="larger than 1048576 bytes"):
        client.get_json("/latest.json")


def test_a_redirect_to_another_host_is_not_followed(fake):
    fake.fault("redirect_other", "/latest")
    client, _ = _client(fake)

    with pytest.raises(DiscourseError, match=r"redirected to another host \(127.0.0.2\)"):
        client.get_json("/latest.json")
    assert fake.requests == ["/latest.json"]


def test_a_redirect_within_the_forum_is_followed(fake):
    client, _ = _client(fake)

    data = client.get_json("/c/old-name/1.json")

    assert [t["id"] for t in data["topic_list"]["topics"]] == [3, 2, 1]
    assert fake.requests == ["/c/old-name/1.json", "/c/beginners/1.json"]


def test_a_missing_topic_raises_not_found(fake):
    client, _ = _client(fake)
    with pytest.raises(NotFound):
        client.get_json("/t/999.json")


def test_requests_are_spaced_by_the_configured_rate(fake):
    now = [100.0]
    waits = []

    def sleep(seconds, reason):
        waits.append((round(seconds, 6), reason))
        now[0] += seconds

    client = DiscourseClient(fake.url, rate=4, sleep=sleep, clock=lambda: now[0])
    client.get_json("/site.json")
    now[0] += 0.05  # time spent on the first request
    client.get_json("/site.json")
    now[0] += 0.5  # the caller was busy longer than the interval
    client.get_json("/site.json")

    assert waits == [(0.2, "rate")]
    assert len(fake.requests) == 3


@pytest.mark.django_db
def test_a_run_that_gives_up_fails_with_the_reason_and_keeps_finished_topics(fake):
    fake.fault("500", "/t/2.json", times=10)

    run, counts = run_import(
        ImportOptions(base_url=fake.url, rate=0),
        client_options={"backoff": 0.01, "max_tries": 3},
    )

    assert run.state == ImportRun.State.FAILED
    assert run.message == "/t/2.json: gave up after 3 tries (server error 500)"
    assert list(Thread.objects.values_list("external_id", flat=True)) == [1]
    assert counts.threads_new == 1


@pytest.mark.django_db
def test_a_rate_limited_run_shows_it_is_waiting(fake):
    fake.fault("429", "/t/1.json", seconds=2)
    states = []

    waiting_message = []

    def watch(progress):
        states.append((progress.state, progress.wait_reason))
        if progress.state == ImportRun.State.WAITING and not waiting_message:
            waiting_message.append(ImportRun.objects.get().message)

    run, _ = run_import(ImportOptions(base_url=fake.url, rate=0), on_progress=watch)

    assert (ImportRun.State.WAITING, "rate limit") in states
    assert waiting_message[0].startswith("Waiting ")
    assert waiting_message[0].endswith(" s: the forum asked to slow down (429).")
    assert run.state == ImportRun.State.DONE and run.wait_seconds >= 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Discuss.HuggingFace.co/", "https://discuss.huggingface.co"),
        ("http://127.0.0.1:8080/forum/", "http://127.0.0.1:8080/forum"),
    ],
)
def test_base_urls_are_normalized(value, expected):
    assert normalize_base_url(value) == expected


@pytest.mark.parametrize(
    "value", ["ftp://forum.test", "file:///etc/passwd", "forum.test", "https://u:p@forum.test"]
)
def test_base_urls_that_are_not_plain_http_are_refused(value):
    with pytest.raises(ValueError, match="forum address"):
        normalize_base_url(value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000", "http://localhost", "http://10.1.2.3", "http://169.254.169.254"],
)
def test_private_and_local_hosts_are_refused_for_web_imports(url):
    with pytest.raises(ValueError, match="private or local address"):
        check_public_host(url)


def test_parse_topic_reads_posts_tags_and_timestamps_from_recorded_json():
    forum = FakeForum(tag_shape="names", accepted_shape="old")
    topic = forum.add_topic(4, posts=25, tags=["bert"], accepted_post=2)
    forum.add_post(4, bump=False).post_type = 3  # a small action ("closed")
    data = forum.topic_json(topic)
    extra = [p.as_json(4) for p in topic.posts[20:]]

    record = parse_topic(data, extra, {1: "Beginners"})

    assert record.external_id == 4 and record.category == "Beginners"
    assert record.tags == ["bert"] and record.has_accepted_answer
    assert [p.post_number for p in record.posts] == list(range(1, 26))
    assert record.posts[1].is_accepted_answer and not record.posts[0].is_accepted_answer
    assert record.created_at == topic.created_at.replace(microsecond=0)
    assert record.complete


def test_parse_topic_refuses_json_that_is_not_a_topic():
    with pytest.raises(ValueError, match="no id"):
        parse_topic({"topic_list": {}}, [], {})
