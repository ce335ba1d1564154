import pytest
from django.test import override_settings
from django.urls import path

from coding.views import site as views
from config.urls import urlpatterns as site_urlpatterns
from tests.factories import make_thread, make_user

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("internal detail that must not leak")


urlpatterns = [path("boom/", _boom), *site_urlpatterns]
handler404 = "coding.views.site.page_not_found"
handler500 = "coding.views.site.server_error"
handler403 = "coding.views.site.permission_denied"


def test_every_page_carries_a_strict_content_security_policy(client):
    client.force_login(make_user("alice"))
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    body = response.content.decode()
    assert "htmx" in body
    assert "<script>" not in body
    assert 'hx-headers=\'{"X-CSRFToken": "' in body


@override_settings(DEBUG=False)
def test_a_missing_page_is_a_friendly_404(client):
    client.force_login(make_user("alice"))
    response = client.get("/threads/999999/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_a_crash_is_a_friendly_500_without_a_traceback():
    from django.test import Client

    response = Client(raise_request_exception=False).get("/boom/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "internal detail" not in body
    assert "Traceback" not in body


def test_a_form_posted_without_csrf_token_gets_a_friendly_page():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_thread_page_shows_posts_in_order(client):
    thread = make_thread(posts=["<p>the question</p>", "<p>the answer</p>"])
    client.force_login(make_user("alice"))
    body = client.get(thread.get_absolute_url()).content.decode()
    assert body.index("the question") < body.index("the answer")


def test_health_check_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert views.healthz
