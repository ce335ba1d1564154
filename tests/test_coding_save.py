"""Saving a coding: validation, quotes, history, and saves that never overwrite silently."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from coding.models import Assignment, Coding, CodingEvent, Post, Quote, Unit
from tests.factories_coding import make_coding_project, payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _url(project, unit) -> str:
    return f"/projects/{project.slug}/units/{unit.pk}/code/"


def _post(client, project, unit, body):
    return client.post(_url(project, unit), json.dumps(body), content_type="application/json")


def _setup(client, users, **kwargs):
    project = make_coding_project(users, **kwargs)
    unit = project.units.order_by("position").first()
    client.force_login(users["alice"])
    return project, unit


def _emoji_quote(unit, code="memory"):
    post = Post.objects.get(thread=unit.thread, post_number=1)
    text = "Loading fails 😭 with OOM."
    start = post.plain_text.index(text)  # Python counts code points, as the server does
    return {"code": code, "post": post.pk, "start": start, "end": start + len(text), "text": text}


def test_a_draft_save_stores_the_coding_and_its_history(client, users):
    project, unit = _setup(client, users)
    response = _post(client, project, unit, payload(codes=["install"], memo="first look"))
    assert response.status_code == 200
    assert response.json()["revision"] == 1
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert coding.status == Coding.Status.DRAFT
    assert coding.memo == "first look"
    assert [a.code.key for a in coding.applications.all()] == ["install"]
    event = CodingEvent.objects.get(coding=coding)
    assert event.user == users["alice"]
    assert event.before is None
    # A first save has no state before it: stored as SQL NULL, as the ORM stores None.
    assert CodingEvent.objects.filter(coding=coding, before__isnull=True).exists()
    assert event.after["codes"] == ["install"]
    assert Assignment.objects.get(unit=unit, coder=users["alice"]).status == "pending"


def test_submitting_completes_the_assignment_and_points_to_the_next_unit(client, users):
    project, unit = _setup(client, users)
    response = _post(client, project, unit, payload(codes=["docs"], unsure=True, submit=True))
    assert response.status_code == 200
    second = project.units.exclude(pk=unit.pk).get()
    assert response.json()["next"] == f"/projects/{project.slug}/units/{second.pk}/code/"
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert coding.status == Coding.Status.SUBMITTED and coding.submitted_at is not None
    assert coding.unsure is True
    assignment = Assignment.objects.get(unit=unit, coder=users["alice"])
    assert assignment.status == Assignment.Status.DONE
    assert assignment.completed_at is not None
    assert Assignment.objects.get(unit=unit, coder=users["bob"]).status == "pending"


def test_submitting_the_last_unit_points_to_the_queue_done_page(client, users):
    project, unit = _setup(client, users, units=1)
    response = _post(client, project, unit, payload(not_relevant=True, submit=True))
    assert response.json()["next"] == f"/projects/{project.slug}/next/"


def test_submitting_nothing_is_refused_with_a_reason(client, users):
    project, unit = _setup(client, users)
    response = _post(client, project, unit, payload(submit=True))
    assert response.status_code == 400
    assert "at least one code" in response.json()["error"]
    assert not Coding.objects.exists()


def test_a_save_based_on_an_old_revision_is_a_conflict_that_keeps_the_stored_coding(client, users):
    project, unit = _setup(client, users)
    assert _post(client, project, unit, payload(0, codes=["install"])).status_code == 200
    # A second tab, opened before the first save, still believes revision 0.
    response = _post(client, project, unit, payload(0, codes=["docs"], memo="other tab"))
    assert response.status_code == 409
    body = response.json()
    assert body["conflict"] is True
    assert "changed elsewhere" in body["error"]
    assert body["revision"] == 1
    assert body["stored"]["codes"] == ["install"]
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert coding.revision == 1 and coding.memo == ""
    assert CodingEvent.objects.filter(coding=coding).count() == 1


def test_an_explicit_overwrite_after_a_conflict_replaces_the_stored_coding(client, users):
    project, unit = _setup(client, users)
    _post(client, project, unit, payload(0, codes=["install"]))
    conflict = _post(client, project, unit, payload(0, codes=["docs"])).json()
    response = _post(client, project, unit, payload(conflict["revision"], codes=["docs"]))
    assert response.status_code == 200
    assert response.json()["revision"] == 2
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert [a.code.key for a in coding.applications.all()] == ["docs"]
    last = coding.events.order_by("-id").first()
    assert last.before["codes"] == ["install"] and last.after["codes"] == ["docs"]


def test_a_double_submit_of_the_same_payload_is_idempotent(client, users):
    project, unit = _setup(client, users)
    body = payload(0, codes=["memory"], quotes=[_emoji_quote(unit)], submit=True)
    first = _post(client, project, unit, body)
    second = _post(client, project, unit, body)
    assert first.status_code == second.status_code == 200
    assert first.json()["revision"] == second.json()["revision"] == 1
    assert second.json()["saved"] is False
    assert CodingEvent.objects.count() == 1
    assert Quote.objects.count() == 1


def test_a_quote_with_emoji_is_stored_as_code_point_offsets(client, users):
    project, unit = _setup(client, users)
    quote = _emoji_quote(unit)
    response = _post(client, project, unit, payload(codes=["memory"], quotes=[quote]))
    assert response.status_code == 200
    stored = Quote.objects.get()
    post = Post.objects.get(pk=quote["post"])
    assert (stored.start, stored.end) == (quote["start"], quote["end"])
    assert post.plain_text[stored.start : stored.end] == "Loading fails 😭 with OOM."
    # UTF-16 would count the emoji twice: the end would be one further.
    assert stored.end - stored.start == 25


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": 1}, "does not match post"),
        ({"text": "Loading fails :( with OOM."}, "does not match post"),
        ({"end": 0, "start": 0}, "is empty"),
        ({"start": 999_999, "end": 1_000_000, "text": ""}, "past the end of post"),
        ({"code": "install"}, "not among the codes"),
    ],
)
def test_a_quote_that_does_not_fit_is_refused_and_nothing_is_written(
    client, users, change, message
):
    project, unit = _setup(client, users)
    quote = {**_emoji_quote(unit), **change}
    response = _post(client, project, unit, payload(codes=["memory"], quotes=[quote]))
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert "Quote 1" in response.json()["error"]
    assert not Coding.objects.exists()


def test_the_same_quote_twice_is_refused_by_number(client, users):
    project, unit = _setup(client, users)
    quote = _emoji_quote(unit)
    body = payload(codes=["memory"], quotes=[quote, {**quote}])
    response = _post(client, project, unit, body)
    assert response.status_code == 400
    assert response.json()["error"] == "Quote 2 repeats quote 1 (same code and span)."
    assert not Coding.objects.exists()


def test_a_submitted_coding_cannot_be_saved_without_codes(client, users):
    project, unit = _setup(client, users)
    _post(client, project, unit, payload(0, codes=["docs"], submit=True))
    # An autosave after unticking the only code, before another is chosen.
    response = _post(client, project, unit, payload(1, memo="rethinking"))
    assert response.status_code == 400
    assert "a submitted coding needs at least one code" in response.json()["error"]
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert coding.revision == 1 and coding.status == Coding.Status.SUBMITTED
    assert [a.code.key for a in coding.applications.all()] == ["docs"]
    # Marked not relevant instead, it saves.
    response = _post(client, project, unit, payload(1, not_relevant=True, memo="off topic"))
    assert response.status_code == 200
    coding.refresh_from_db()
    assert coding.not_relevant and coding.status == Coding.Status.SUBMITTED


def test_a_stale_empty_draft_saved_after_a_submit_elsewhere_is_a_conflict(client, users):
    project, unit = _setup(client, users)
    _post(client, project, unit, payload(0, memo="draft in tab A"))
    _post(client, project, unit, payload(1, codes=["docs"], submit=True))  # tab B
    response = _post(client, project, unit, payload(1, memo="tab A goes on"))
    assert response.status_code == 409
    assert response.json()["stored"]["codes"] == ["docs"]


def test_a_save_after_the_session_ended_gets_a_401_with_a_message(client, users):
    project, unit = _setup(client, users)
    client.logout()
    response = _post(client, project, unit, payload(codes=["docs"]))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "signed out" in response.json()["error"]
    assert not Coding.objects.exists()
    # The page itself still sends a signed-out reader to the sign-in page.
    page = client.get(_url(project, unit))
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")


def test_a_save_from_a_page_older_than_the_sign_in_gets_json_asking_for_a_reload(users):
    client = Client(enforce_csrf_checks=True)
    project, unit = _setup(client, users)
    client.get(_url(project, unit))  # sets the form token cookie
    response = client.post(
        _url(project, unit),
        json.dumps(payload(codes=["docs"])),
        content_type="application/json",
        HTTP_X_CSRFTOKEN="x" * 32,
    )
    assert response.status_code == 403
    assert "reload the page" in response.json()["error"]
    assert not Coding.objects.exists()


def test_a_quote_from_another_units_post_is_refused(client, users):
    project, unit = _setup(client, users)
    other = project.units.exclude(pk=unit.pk).first()
    quote = _emoji_quote(other)
    response = _post(client, project, unit, payload(codes=["memory"], quotes=[quote]))
    assert response.status_code == 400
    assert "not in this unit" in response.json()["error"]


@pytest.mark.parametrize("key", ["nope", "old", "problems"])
def test_unknown_retired_or_header_codes_are_refused_by_name(client, users, key):
    project, unit = _setup(client, users)
    response = _post(client, project, unit, payload(codes=["docs", key]))
    assert response.status_code == 400
    assert key in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps(payload(codes="docs")),
        json.dumps(payload(memo=5)),
        json.dumps({"codes": []}),
    ],
)
def test_malformed_requests_get_a_clear_400(client, users, body):
    project, unit = _setup(client, users)
    response = client.post(_url(project, unit), body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]


def test_removing_a_code_removes_its_quotes(client, users):
    project, unit = _setup(client, users)
    _post(client, project, unit, payload(0, codes=["memory", "docs"], quotes=[_emoji_quote(unit)]))
    response = _post(client, project, unit, payload(1, codes=["docs"]))
    assert response.status_code == 200
    assert Quote.objects.count() == 0
    coding = Coding.objects.get()
    assert [a.code.key for a in coding.applications.all()] == ["docs"]
    assert coding.events.count() == 2


def test_a_resave_keeps_removes_and_adds_codes_with_their_quotes(client, users):
    project, unit = _setup(client, users)
    first = [_emoji_quote(unit, "memory"), _emoji_quote(unit, "docs")]
    _post(client, project, unit, payload(0, codes=["memory", "docs"], quotes=first))
    kept_app = Coding.objects.get().applications.get(code__key="docs").pk
    post = Post.objects.get(thread=unit.thread, post_number=1)
    second = [
        {"code": "docs", "post": post.pk, "start": 0, "end": 4, "text": post.plain_text[:4]},
        _emoji_quote(unit, "install"),
        _emoji_quote(unit, "docs"),
    ]
    response = _post(
        client, project, unit, payload(1, codes=["docs", "install"], quotes=second, submit=True)
    )
    assert response.status_code == 200
    assert response.json()["revision"] == 2
    coding = Coding.objects.get()
    apps = {a.code.key: a.pk for a in coding.applications.all()}
    assert sorted(apps) == ["docs", "install"]
    assert apps["docs"] == kept_app  # a code kept keeps its application
    stored = sorted(
        (q.application.code.key, q.post_id, q.start, q.end, q.text)
        for q in Quote.objects.filter(application__coding=coding)
    )
    assert stored == sorted((q["code"], q["post"], q["start"], q["end"], q["text"]) for q in second)
    event = coding.events.order_by("-id").first()
    assert event.action == "submit"
    assert event.before["codes"] == ["docs", "memory"]
    assert event.after["codes"] == ["docs", "install"]
    assert len(event.after["quotes"]) == 3
    next_unit = project.units.exclude(pk=unit.pk).get()
    assert response.json()["next"] == f"/projects/{project.slug}/units/{next_unit.pk}/code/"
    assert Assignment.objects.get(unit=unit, coder=users["alice"]).status == "done"
    # What the page shows next time is what was stored.
    page = client.get(_url(project, unit))
    shown = json.loads(
        page.content.decode()
        .split('"coding-data" type="application/json">')[1]
        .split("</script>")[0]
    )
    assert shown["revision"] == 2 and shown["state"]["codes"] == ["docs", "install"]


def test_outsiders_and_unassigned_members_cannot_save(client, users):
    project, unit = _setup(client, users)
    client.force_login(users["outsider"])
    refused = _post(client, project, unit, payload(codes=["docs"]))
    assert refused.status_code == 404
    assert "Not saved: this is no longer available to you" in refused.json()["error"]
    client.force_login(users["admin"])  # an admin reads every unit but codes only their own
    response = _post(client, project, unit, payload(codes=["docs"]))
    assert response.status_code == 403
    assert not Coding.objects.exists()


def test_a_closed_project_refuses_saves(client, users):
    project, unit = _setup(client, users)
    project.status = "closed"
    project.save()
    response = _post(client, project, unit, payload(codes=["docs"]))
    assert response.status_code == 403
    assert "closed" in response.json()["error"]


def _save_queries(client, users, django_assert_num_queries, *, posts, codes, slug):
    project, unit = _setup(client, users, slug=slug, posts_per_thread=posts, extra_codes=codes)
    _post(client, project, unit, payload(0, codes=["memory", "docs"], quotes=[_emoji_quote(unit)]))
    body = payload(
        1, codes=["memory", "install"], quotes=[_emoji_quote(unit), _emoji_quote(unit, "install")]
    )
    # Session and user (one statement), access (project, role, unit, assignment: one
    # statement). SQLite: validation (codes and quoted posts: one statement), then in one
    # transaction the assignment's lock, the stored coding with its codes and quotes, one
    # write per table, then the next unit. PostgreSQL, in one transaction: the lock and
    # the validation in one statement, the stored coding, then the writes and the next
    # unit in one statement.
    with django_assert_num_queries(_SAVE_QUERIES[connection.vendor]):
        response = _post(client, project, unit, body)
    assert response.status_code == 200


_SAVE_QUERIES = {"sqlite": 13, "postgresql": 7}


def test_a_save_uses_the_same_queries_for_a_small_and_a_large_unit(
    client, users, django_assert_num_queries
):
    _save_queries(client, users, django_assert_num_queries, posts=3, codes=10, slug="small")
    _save_queries(client, users, django_assert_num_queries, posts=60, codes=80, slug="large")


# Concurrency: real threads, each with its own database connection ----------------------


def _concurrent_saves(project, unit, user, bodies):
    """Send every body at once from its own thread; return the status codes."""
    barrier = threading.Barrier(len(bodies))
    results: list[int | BaseException] = [0] * len(bodies)

    def run(index, body):
        try:
            client = Client()
            client.force_login(user)
            barrier.wait(timeout=30)
            results[index] = _post(client, project, unit, body).status_code
        except BaseException as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    close_old_connections()
    return results


def _race_from_the_same_revision(users):
    project = make_coding_project(users)
    unit = Unit.objects.filter(project=project).first()
    bodies = [payload(0, codes=["docs"], memo=f"tab {n}") for n in range(8)]
    results = _concurrent_saves(project, unit, users["alice"], bodies)
    assert sorted(results) == [200] + [409] * 7
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert coding.revision == 1
    assert CodingEvent.objects.filter(coding=coding).count() == 1
    winner = results.index(200)
    assert coding.memo == f"tab {winner}"


@pytest.mark.django_db(transaction=True)
def test_eight_tabs_saving_at_once_on_sqlite_or_postgres_keep_exactly_one(users):
    _race_from_the_same_revision(users)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_on_postgres_never_overwrite_silently(users):
    _race_from_the_same_revision(users)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_double_clicks_on_postgres_write_one_event(users):
    project = make_coding_project(users)
    unit = Unit.objects.filter(project=project).first()
    body = payload(0, codes=["install"], submit=True)
    results = _concurrent_saves(project, unit, users["alice"], [body] * 6)
    assert results == [200] * 6
    coding = Coding.objects.get(unit=unit, coder=users["alice"])
    assert coding.revision == 1
    assert CodingEvent.objects.filter(coding=coding).count() == 1
    assert Assignment.objects.get(unit=unit, coder=users["alice"]).status == "done"
