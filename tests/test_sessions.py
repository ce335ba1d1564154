"""Signed-in requests: the session and its user read in one statement, with Django's checks."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

import coding.sessions
from coding.models import Session
from coding.sessions import SessionStore

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def coder():
    return get_user_model().objects.create_user("coder", password=PASSWORD)


def _sign_in(client, user) -> None:
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content


def test_the_session_row_names_its_user_and_one_statement_reads_both(client, coder):
    _sign_in(client, coder)
    row = Session.objects.get(session_key=client.session.session_key)
    assert row.user_id == coder.pk
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/projects/")
    assert response.status_code == 200
    assert f'<span class="who">{coder.username}' in response.content.decode()
    first = queries.captured_queries[0]["sql"]
    assert "coding_session" in first and "auth_user" in first
    assert not any(
        "auth_user" in q["sql"] and "coding_session" not in q["sql"]
        for q in queries.captured_queries
    )


def test_a_deactivated_user_is_signed_out(client, coder):
    _sign_in(client, coder)
    get_user_model().objects.filter(pk=coder.pk).update(is_active=False)
    response = client.get("/projects/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_password_changed_elsewhere_signs_the_session_out(client, coder):
    _sign_in(client, coder)
    coder.set_password("another-long-password-2")
    coder.save()
    response = client.get("/projects/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_deleted_users_sessions_go_with_them(client, coder):
    _sign_in(client, coder)
    assert Session.objects.filter(user=coder).count() == 1
    coder.delete()
    assert Session.objects.count() == 0
    response = client.get("/projects/")
    assert response.status_code == 302


def test_signing_out_leaves_no_session_naming_the_user(client, coder):
    _sign_in(client, coder)
    client.get("/projects/")
    client.post("/accounts/logout/")
    assert not Session.objects.filter(user=coder).exists()
    assert client.get("/projects/").status_code == 302


def test_a_session_of_another_user_id_reads_that_user(client, coder):
    """The row read with the session is used only for the user the session names."""
    other = get_user_model().objects.create_user("other", password=PASSWORD)
    _sign_in(client, coder)
    Session.objects.filter(session_key=client.session.session_key).update(user=other)
    response = client.get("/projects/")
    assert response.status_code == 200
    assert f'<span class="who">{coder.username}' in response.content.decode()


def test_deleting_a_user_in_the_admin_shows_no_session_key(client, coder):
    staff = get_user_model().objects.create_superuser("boss", password=PASSWORD)
    victim = Client()
    _sign_in(victim, coder)
    key = victim.session.session_key
    client.force_login(staff)
    page = client.get(f"/admin/auth/user/{coder.pk}/delete/")
    assert page.status_code == 200
    assert key not in page.content.decode()
    client.post(f"/admin/auth/user/{coder.pk}/delete/", {"post": "yes"})
    assert not get_user_model().objects.filter(pk=coder.pk).exists()
    assert not Session.objects.filter(session_key=key).exists()


def test_a_session_naming_a_user_deleted_meanwhile_is_still_written(coder):
    """The user column is no checked foreign key: a session written for a user deleted
    at that moment does not fail at commit (the store would retry without end)."""
    store = SessionStore()
    store[SESSION_KEY] = str(coder.pk)
    get_user_model().objects.filter(pk=coder.pk).delete()
    store.create()
    assert Session.objects.get(session_key=store.session_key).user_id == coder.pk
    assert SessionStore(store.session_key).get(SESSION_KEY) == str(coder.pk)


def test_session_data_decodes_as_djangos_and_a_tampered_copy_is_refused(coder, caplog):
    """A session seen before is not verified again, yet tampered data never is accepted."""
    store = SessionStore()
    store[SESSION_KEY] = str(coder.pk)
    store["_messages"] = [1, 2]
    store.create()
    data = Session.objects.get(session_key=store.session_key).session_data
    django_decoded = DatabaseSessionStore().decode(data)
    first, second = SessionStore().decode(data), SessionStore().decode(data)
    assert data in coding.sessions._VERIFIED  # the second was not verified again
    assert first == second == django_decoded == {SESSION_KEY: str(coder.pk), "_messages": [1, 2]}
    first["_messages"].append(3)  # one request's session is not another's
    assert SessionStore().decode(data)["_messages"] == [1, 2]
    payload, signature = data.rsplit(":", 1)
    other = "A" if signature[0] != "A" else "B"
    with caplog.at_level("WARNING", logger="django.security.SuspiciousSession"):
        assert SessionStore().decode(f"{payload}:{other}{signature[1:]}") == {}
    assert "Session data corrupted" in caplog.text
    assert SessionStore().decode("not signed data") == {}


def test_a_signed_in_client_with_a_tampered_session_cookie_row_is_signed_out(client, coder):
    _sign_in(client, coder)
    assert client.get("/projects/").status_code == 200
    row = Session.objects.get(session_key=client.session.session_key)
    payload, signature = row.session_data.rsplit(":", 1)
    row.session_data = f"{payload}:{signature[::-1]}"
    row.save()
    response = client.get("/projects/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_postgres_connection_keeps_one_plan_per_prepared_statement():
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"
