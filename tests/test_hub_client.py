"""The Hub client against a fake Hub on 127.0.0.1: paging, rate limits, errors, redirects."""

from __future__ import annotations

import pytest

from coding.importers.hub import USER_AGENT, HubClient, HubError, parse_model
from tests.fake_hub import FakeHub, hub_item


def _models(count: int) -> list[dict]:
    return [
        hub_item(f"org/model-{i:02d}", modified=f"2023-01-{i + 1:02d}T00:00:00.000Z")
        for i in range(count)
    ]


def _client(hub: FakeHub, waits: list[float], **kwargs) -> HubClient:
    return HubClient(hub.url, page_size=4, sleep=waits.append, backoff=0.5, **kwargs)


def _all_ids(client: HubClient) -> list[str]:
    return [item["id"] for items, _next, _total in client.list_pages() for item in items]


def test_the_listing_follows_the_link_cursor_until_the_last_page():
    waits: list[float] = []
    with FakeHub(_models(10)) as hub:
        ids = _all_ids(_client(hub, waits))
        assert ids == [f"org/model-{i:02d}" for i in range(9, -1, -1)]
        assert len(hub.listing_requests) == 3
        first, *rest = hub.listing_requests
        assert first["sort"] == ["lastModified"]
        assert set(first["expand"]) >= {"createdAt", "config", "cardData", "tags", "likes"}
        assert all("cursor" in q for q in rest)
        assert set(hub.user_agents) == {USER_AGENT}
    assert waits == []


def test_a_429_waits_as_long_as_the_ratelimit_header_says_and_then_continues():
    waits: list[float] = []
    with FakeHub(_models(10)) as hub:
        hub.rate_limited[2] = {
            "RateLimit": '"api";r=0;t=42',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        }
        hub.rate_limited[4] = {"Retry-After": "7"}
        ids = _all_ids(_client(hub, waits))
    assert waits == [42.0, 7.0]
    assert len(ids) == 10 and len(set(ids)) == 10


def test_a_500_and_a_dropped_connection_back_off_exponentially_and_recover():
    waits: list[float] = []
    with FakeHub(_models(6)) as hub:
        hub.server_errors = {1}
        hub.dropped = {2}
        ids = _all_ids(_client(hub, waits))
    assert len(ids) == 6
    assert len(waits) == 2
    # Jittered between half and all of backoff * 2^(try-1).
    assert 0.25 <= waits[0] <= 0.5
    assert 0.5 <= waits[1] <= 1.0


def test_a_hub_that_keeps_failing_is_given_up_on_with_a_clear_message():
    waits: list[float] = []
    with FakeHub(_models(3)) as hub:
        hub.fail_from = 1
        client = _client(hub, waits, max_tries=3)
        with pytest.raises(HubError, match=r"gave up after 3 tries \(last: 500"):
            _all_ids(client)
        assert len(hub.listing_requests) == 3
    assert len(waits) == 2


def test_a_renamed_repo_is_followed_to_its_new_id():
    with FakeHub([hub_item("google-bert/bert-base-uncased")]) as hub:
        hub.renamed["bert-base-uncased"] = "google-bert/bert-base-uncased"
        item = _client(hub, []).model_info("bert-base-uncased")
    assert parse_model(item).repo_id == "google-bert/bert-base-uncased"


def test_a_redirect_to_another_host_is_refused():
    with FakeHub([]) as hub:
        hub.offsite["someone/model"] = "http://127.0.0.2:9/api/models/someone/model"
        with pytest.raises(HubError, match="redirect to another host refused"):
            _client(hub, []).model_info("someone/model")


def test_a_missing_repo_reports_the_hubs_own_message():
    with FakeHub([]) as hub, pytest.raises(HubError, match="404 Repository not found"):
        _client(hub, []).model_info("nobody/nothing")


def test_a_model_record_is_parsed_with_the_placeholder_date_as_unknown():
    record = parse_model(
        hub_item(
            "google-bert/bert-base-uncased",
            created="2022-03-02T23:29:04.000Z",
            modified="2024-02-19T11:06:12.000Z",
            downloads=72376843,
            likes=2065,
        )
    )
    assert record.created_at is None
    assert record.last_modified.isoformat() == "2024-02-19T11:06:12+00:00"
    assert (record.author, record.model_type, record.library) == (
        "google-bert",
        "bert",
        "transformers",
    )
    assert record.has_card_data is True
    assert (record.downloads, record.likes) == (72376843, 2065)
