import pytest
from django.core.cache import cache

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_counts():
    cache.clear()
    yield
    cache.clear()


def _attempt(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_five_failures_lock_the_account_even_with_the_right_password(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    make_user("alice")
    for _ in range(5):
        assert _attempt(client, "alice", "wrong").status_code == 200
    locked = _attempt(client, "alice", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_from_one_address_lock_that_address_for_other_accounts(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    make_user("bob")
    for n in range(3):
        _attempt(client, f"guess{n}", "wrong", ip="10.9.9.9")
    assert _attempt(client, "bob", PASSWORD, ip="10.9.9.9").status_code == 429
    assert _attempt(client, "bob", PASSWORD, ip="10.1.1.1").status_code == 302


def test_a_successful_sign_in_below_the_limit_clears_the_account_count(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    make_user("carol")
    _attempt(client, "carol", "wrong", ip="10.0.0.2")
    _attempt(client, "carol", "wrong", ip="10.0.0.3")
    assert _attempt(client, "carol", PASSWORD, ip="10.0.0.4").status_code == 302
    client.logout()
    _attempt(client, "carol", "wrong", ip="10.0.0.5")
    _attempt(client, "carol", "wrong", ip="10.0.0.6")
    assert _attempt(client, "carol", PASSWORD, ip="10.0.0.7").status_code == 302
