"""The coding screen: what each role sees, blind coding, the queue, history, query counts."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.contrib import messages
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client, RequestFactory
from django.utils.html import json_script

from coding import frame
from coding.codebook import apply_edit, upgrade_project
from coding.models import Assignment, Code, Coding, Post, Unit
from coding.templatetags.stored_html import json_script_with
from coding.views.code import CodePanel
from tests.factories_coding import make_coding_project, payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _url(project, unit) -> str:
    return f"/projects/{project.slug}/units/{unit.pk}/code/"


def _save(client, project, unit, user, body):
    client.force_login(user)
    response = client.post(_url(project, unit), json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response


def _first_unit(project) -> Unit:
    return project.units.order_by("position").first()


def _initial_data(response) -> dict:
    body = response.content.decode()
    start = body.index('<script id="coding-data" type="application/json">') + len(
        '<script id="coding-data" type="application/json">'
    )
    return json.loads(body[start : body.index("</script>", start)])


def test_an_annotator_sees_the_posts_in_order_and_the_codebook_tree(client, users):
    project = make_coding_project(users, posts_per_thread=3)
    unit = _first_unit(project)
    Post.objects.filter(thread=unit.thread, post_number=3).update(is_accepted_answer=True)
    client.force_login(users["alice"])
    response = client.get(_url(project, unit))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index('id="post-1"') < body.index('id="post-2"') < body.index('id="post-3"')
    assert "Accepted answer" in body
    assert "😭" in body
    assert 'value="install"' in body and "<kbd>i</kbd>" in body
    assert "Trouble installing a library." in body  # the definition, shown on focus
    assert 'value="problems"' not in body  # a header has no checkbox
    assert "Problems" in body
    assert "Retired code" not in body
    assert "0 of 2 done" in body
    data = _initial_data(response)
    assert [p["number"] for p in data["posts"]] == [1, 2, 3]
    assert data["revision"] == 0 and data["canCode"] is True


def test_hostile_post_fields_reach_the_coding_page_escaped_or_sanitized(client, users):
    project = make_coding_project(users, posts_per_thread=2)
    unit = _first_unit(project)
    Post.objects.filter(thread=unit.thread, post_number=2).update(
        author='<script>alert("author")</script>',
        html='<p onclick="a()">Hi <img src=x onerror="b()"><a href="javascript:c()">l</a></p>',
        is_accepted_answer=True,
    )
    client.force_login(users["alice"])
    body = client.get(_url(project, unit)).content.decode()
    assert "&lt;script&gt;alert(&quot;author&quot;)&lt;/script&gt;" in body
    assert '<script>alert("author")' not in body
    assert "onerror" not in body and "onclick" not in body and "javascript:" not in body
    article = body[body.index('id="post-2"') - 40 : body.index('id="post-2"')]
    assert 'class="post accepted"' in article
    assert "Accepted answer</strong>" in body and "Thread context" not in body


def test_a_post_unit_shows_the_opening_post_as_thread_context(client, users):
    project = make_coding_project(users, posts_per_thread=3, unit_type="post")
    unit = _first_unit(project)
    client.force_login(users["alice"])
    body = client.get(_url(project, unit)).content.decode()
    assert 'class="post context" id="post-1"' in body
    assert 'class="post" id="post-2"' in body
    assert 'id="post-3"' not in body
    assert body.count("Thread context</span>") == 1
    assert [p["quotable"] for p in _initial_data(client.get(_url(project, unit)))["posts"]] == [
        False,
        True,
    ]


def test_the_page_has_no_inline_script_and_embeds_its_data_as_json(client, users):
    project = make_coding_project(users)
    client.force_login(users["alice"])
    response = client.get(_url(project, _first_unit(project)))
    body = response.content.decode()
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "<script>" not in body
    assert "js/coding.js" in body and "css/coding.css" in body


def test_an_annotator_sees_their_saved_coding_again(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    _save(client, project, unit, users["alice"], payload(codes=["docs"], memo="Alice memo"))
    response = client.get(_url(project, unit))
    body = response.content.decode()
    assert 'value="docs" checked' in body
    assert "Alice memo" in body
    data = _initial_data(response)
    assert data["revision"] == 1
    assert data["state"]["codes"] == ["docs"]


def test_the_codebook_list_follows_its_codes_and_each_coders_checks(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    _save(client, project, unit, users["alice"], payload(codes=["docs"]))
    client.force_login(users["bob"])
    assert 'value="docs" checked' not in client.get(_url(project, unit)).content.decode()
    # An edit makes a new version (a version's codes never change); the project moves
    # to it, and the page shows the new text at once.
    old = project.codebook_version
    apply_edit(old.codebook, "rename", base=old.number, key="docs", name="Docs are missing")
    edited = apply_edit(
        old.codebook,
        "edit",
        base=old.number + 1,
        key="docs",
        definition="The documentation leaves it out.",
    )
    upgrade_project(project, edited, user=users["admin"], expected_from=old.pk)
    client.force_login(users["alice"])
    page = client.get(_url(project, unit)).content.decode()
    assert "Docs are missing" in page and "Documentation gap" not in page
    assert "The documentation leaves it out." in page
    assert 'value="docs" checked' in page and 'value="install" checked' not in page
    client.force_login(users["admin"])  # reads every coding, codes nothing: boxes disabled
    page = client.get(_url(project, unit)).content.decode()
    assert 'value="docs" disabled' in page


def test_annotator_cannot_see_other_codings_on_the_page_or_in_json(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    _save(client, project, unit, users["bob"], payload(codes=["install"], memo="BOB-SECRET"))
    _save(client, project, unit, users["alice"], payload(codes=["docs"]))
    client.force_login(users["alice"])
    page = client.get(_url(project, unit)).content.decode()
    assert "BOB-SECRET" not in page
    assert "bob" not in page
    assert 'value="install" checked' not in page
    # The save's JSON reply and a conflict's stored version carry only alice's coding.
    reply = client.post(
        _url(project, unit),
        json.dumps(payload(0, codes=["memory"])),
        content_type="application/json",
    )
    assert reply.status_code == 409
    assert "BOB-SECRET" not in reply.content.decode()
    assert reply.json()["stored"]["codes"] == ["docs"]


def test_an_annotator_cannot_open_a_unit_that_is_not_assigned_to_them(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    Assignment.objects.filter(unit=unit, coder=users["alice"]).delete()
    client.force_login(users["alice"])
    assert client.get(_url(project, unit)).status_code == 404


def test_an_outsider_gets_404_for_the_screen_the_queue_and_the_history(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    client.force_login(users["outsider"])
    assert client.get(_url(project, unit)).status_code == 404
    assert client.get(f"/projects/{project.slug}/next/").status_code == 404
    assert client.get(f"/projects/{project.slug}/units/{unit.pk}/history/").status_code == 404


def test_a_unit_of_another_project_is_not_found(client, users):
    project = make_coding_project(users)
    other = make_coding_project(users, slug="other")
    client.force_login(users["alice"])
    assert client.get(_url(project, _first_unit(other))).status_code == 404


def test_an_admin_reads_every_coding_but_cannot_code_an_unassigned_unit(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    _save(client, project, unit, users["alice"], payload(codes=["docs"], memo="ALICE-MEMO"))
    _save(client, project, unit, users["bob"], payload(codes=["install"], memo="BOB-MEMO"))
    client.force_login(users["admin"])
    response = client.get(_url(project, unit))
    body = response.content.decode()
    assert response.status_code == 200
    assert "ALICE-MEMO" in body and "BOB-MEMO" in body
    assert "Documentation gap" in body and "Installation" in body
    assert "Read only" in body
    assert 'id="save-next"' not in body
    assert _initial_data(response)["canCode"] is False


def test_admins_see_the_history_of_every_change_and_annotators_do_not(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    _save(client, project, unit, users["alice"], payload(0, codes=["docs"]))
    _save(client, project, unit, users["alice"], payload(1, codes=["install"], submit=True))
    client.force_login(users["admin"])
    body = client.get(f"/projects/{project.slug}/units/{unit.pk}/history/").content.decode()
    assert body.count("<td>alice</td>") == 4  # two events, each by alice on alice's coding
    assert "codes: docs" in body and "codes: install" in body
    assert "submit" in body
    client.force_login(users["alice"])
    assert client.get(f"/projects/{project.slug}/units/{unit.pk}/history/").status_code == 403


def test_next_opens_the_first_pending_unit_then_reports_an_empty_queue(client, users):
    project = make_coding_project(users, units=2)
    first, second = project.units.order_by("position")
    client.force_login(users["alice"])
    response = client.get(f"/projects/{project.slug}/next/")
    assert response.url == _url(project, first)
    _save(client, project, first, users["alice"], payload(codes=["docs"], submit=True))
    assert client.get(f"/projects/{project.slug}/next/").url == _url(project, second)
    _save(client, project, second, users["alice"], payload(not_relevant=True, submit=True))
    response = client.get(f"/projects/{project.slug}/next/", follow=False)
    assert response.url == f"/projects/{project.slug}/"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("queue is done" in m for m in messages)
    # A done unit still opens, showing the submitted coding.
    page = client.get(_url(project, first)).content.decode()
    assert "Submitted" in page and "2 of 2 done" in page


def test_a_post_unit_shows_its_post_with_the_opening_post_as_context(client, users):
    project = make_coding_project(users, unit_type="post", posts_per_thread=4)
    unit = _first_unit(project)
    client.force_login(users["alice"])
    response = client.get(_url(project, unit))
    body = response.content.decode()
    assert 'id="post-1"' in body and 'id="post-2"' in body
    assert 'id="post-3"' not in body and 'id="post-4"' not in body
    assert "Thread context" in body
    posts = _initial_data(response)["posts"]
    assert [(p["number"], p["quotable"]) for p in posts] == [(1, False), (2, True)]


def test_a_shortcut_on_a_reserved_key_is_not_offered(client, users):
    project = make_coding_project(users)
    Code.objects.filter(version=project.codebook_version, key="docs").update(shortcut="j")
    client.force_login(users["alice"])
    data = _initial_data(client.get(_url(project, _first_unit(project))))
    shortcuts = {c["key"]: c["shortcut"] for c in data["codes"]}
    assert shortcuts["docs"] == "" and shortcuts["install"] == "i"


def _page_queries(client, users, django_assert_num_queries, *, posts, codes, slug, who):
    project = make_coding_project(users, slug=slug, posts_per_thread=posts, extra_codes=codes)
    unit = _first_unit(project)
    for user in (users["alice"], users["bob"]):
        _save(client, project, unit, user, payload(codes=["docs", "memory"], memo="m"))
    client.force_login(users[who])
    with django_assert_num_queries(_PAGE_QUERIES[who]):
        response = client.get(_url(project, unit))
    assert response.status_code == 200
    # The codebook version's codes are read once per process, then kept.
    with django_assert_num_queries(_PAGE_QUERIES[who] - 1):
        assert client.get(_url(project, unit)).status_code == 200
    assert Coding.objects.filter(unit=unit).count() == 2


# Session and user in one statement; project, role, unit, assignment and queue progress
# in one; the posts with the annotator's coding, its codes and quotes in one; the codes.
# The admin reads the posts, and all codings instead (2 queries), and has no queue.
_PAGE_QUERIES = {"alice": 4, "admin": 6}


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_the_coding_page_uses_the_same_queries_for_small_and_large_units(
    client, users, django_assert_num_queries, who
):
    _page_queries(
        client, users, django_assert_num_queries, posts=3, codes=10, slug="small", who=who
    )
    _page_queries(
        client, users, django_assert_num_queries, posts=60, codes=80, slug="large", who=who
    )


def test_codes_retired_by_a_codebook_upgrade_are_named_and_left_out_of_the_next_save(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    _save(client, project, unit, users["alice"], payload(codes=["docs", "install"]))
    Code.objects.filter(version=project.codebook_version, key="docs").update(active=False)
    response = client.get(_url(project, unit))
    assert "earlier codebook version are not in this one: docs" in response.content.decode()
    data = _initial_data(response)
    assert data["state"]["codes"] == ["install"]
    assert data["revision"] == 1
    _save(client, project, unit, users["alice"], payload(1, codes=["install"], submit=True))
    assert Coding.objects.get(coder=users["alice"]).applications.get().code.key == "install"


def _tokens_named(body: str) -> str:
    return re.sub(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+', r"\1T", body)


def test_the_page_in_the_kept_frame_is_the_page_rendered_whole(client, users, monkeypatch):
    project = make_coding_project(users, posts_per_thread=3)
    unit = _first_unit(project)
    # Text shaped like the frame's marks, where a page's text goes.
    unit.thread.title = "frame-slot <!--frame:content--> frame-csrf"
    unit.thread.save()

    def both(who) -> tuple[str, str]:
        client.force_login(users[who])
        framed = client.get(_url(project, unit)).content.decode()
        with monkeypatch.context() as patched:
            # As if messages were waiting: the page renders whole, frame and all.
            patched.setattr(frame, "get_messages", lambda request: [object()])
            whole = client.get(_url(project, unit)).content.decode()
        assert f"frame-{frame._WORD}" not in framed
        assert _tokens_named(framed) == _tokens_named(whole)
        return framed, whole

    for who in ("alice", "admin", "alice"):
        framed, _ = both(who)
        assert f'<span class="who">{users[who].username}</span>' in framed
        assert "Audit log" not in framed
    assert "frame-slot &lt;!--frame:content--&gt; frame-csrf" in framed
    # A user made staff gets the staff frame at once.
    users["alice"].is_staff = True
    users["alice"].save()
    framed, _ = both("alice")
    assert "Audit log" in framed and f"{users['alice'].username} · staff" in framed


def test_a_message_waiting_shows_on_the_coding_page(client, users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    client.force_login(users["alice"])
    storage = CookieStorage(RequestFactory().get("/"))
    client.cookies[storage.cookie_name] = storage._encode(
        [Message(messages.SUCCESS, "Welcome back: your queue is waiting.")]
    )
    body = client.get(_url(project, unit)).content.decode()
    assert "Welcome back: your queue is waiting." in body
    assert "Welcome back" not in client.get(_url(project, unit)).content.decode()


def test_the_token_on_the_coding_page_lets_the_page_save(users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["alice"])
    body = browser.get(_url(project, unit)).content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', body).group(1)
    body = payload(codes=["install"])
    refused = browser.post(_url(project, unit), json.dumps(body), content_type="application/json")
    assert refused.status_code == 403
    saved = browser.post(
        _url(project, unit),
        json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert saved.status_code == 200, saved.content


def test_the_coding_page_sends_the_csrf_cookie_only_to_a_browser_without_it(users):
    project = make_coding_project(users)
    unit = _first_unit(project)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["alice"])
    first = browser.get(_url(project, unit))
    assert settings.CSRF_COOKIE_NAME in first.cookies
    secret = browser.cookies[settings.CSRF_COOKIE_NAME].value
    again = browser.get(_url(project, unit))
    assert settings.CSRF_COOKIE_NAME not in again.cookies
    # The page's token still matches the cookie the browser holds.
    token = re.search(r'"X-CSRFToken": "([^"]+)"', again.content.decode()).group(1)
    saved = browser.post(
        _url(project, unit),
        json.dumps(payload(codes=["install"])),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert saved.status_code == 200, saved.content
    assert browser.cookies[settings.CSRF_COOKIE_NAME].value == secret
    # A malformed cookie is replaced, as on every other page.
    browser.cookies[settings.CSRF_COOKIE_NAME] = "not-a-secret"
    replaced = browser.get(_url(project, unit))
    assert replaced.cookies[settings.CSRF_COOKIE_NAME].value not in ("", "not-a-secret")
    # Other pages go on pushing the cookie's expiry.
    assert settings.CSRF_COOKIE_NAME in browser.get("/accounts/password/").cookies


def test_the_coding_data_is_what_json_script_gives():
    codes = [
        Code(key="a&b", name="</script><script>alert(1)</script>", order=1, codable=True),
        Code(key="ü", name="Ünïcode > ascii", order=2, codable=True),
    ]
    panel = CodePanel(codes)
    initial = {"unit": 1, "posts": [{"id": 2, "text": "<b>&amp;</b> “quoted” \u2028"}]}
    expected = json_script({**initial, "codes": panel.initial}, "coding-data")
    given = json_script_with(initial, "codes", panel.initial_json, "coding-data")
    assert given == expected
    assert "</script><script>" not in given
    assert json_script_with({}, "codes", panel.initial_json, "x") == json_script(
        {"codes": panel.initial}, "x"
    )
    assert json_script_with(initial, "<&>", panel.initial_json, "a&b") == json_script(
        {**initial, "<&>": panel.initial}, "a&b"
    )
    for wrong in (
        (initial, "codes", "[]", "coding-data"),
        ({**initial, "codes": []}, "codes", panel.initial_json, "coding-data"),
        ([1], "codes", panel.initial_json, "coding-data"),
        (initial, "codes", panel.initial_json, ""),
    ):
        with pytest.raises(ValueError):
            json_script_with(*wrong)


@pytest.mark.parametrize("slug", ["study", "study-2024", "s0", "9"])
def test_the_coding_screens_urls_are_djangos_reversed_urls(slug):
    from django.urls import get_script_prefix, reverse, set_script_prefix

    from coding.views.code import _queue_url, _unit_url

    kept = get_script_prefix()
    try:
        for prefix in ("/", "/coding/", "/"):
            set_script_prefix(prefix)
            for unit_id in (0, 1, 7, 10, 99, 12345, 10**12):
                assert _unit_url(slug, unit_id) == reverse("code_unit", args=[slug, unit_id])
                assert _unit_url(slug, unit_id).startswith(prefix + "projects/")
            assert _queue_url(slug) == reverse("code_next", args=[slug])
    finally:
        set_script_prefix(kept)
