import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory

from coding.access import get_project_for_user
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_members_get_their_project_with_their_role(users):
    project = make_project(admin=users["admin"], annotators=[users["alice"]])
    assert get_project_for_user(_request(users["admin"]), project.slug).user_role == "admin"
    assert get_project_for_user(_request(users["alice"]), project.slug).user_role == "annotator"
    assert get_project_for_user(_request(users["admin"]), project.slug, admin=True) == project


def test_annotator_is_refused_admin_actions(users):
    project = make_project(admin=users["admin"], annotators=[users["alice"]])
    with pytest.raises(PermissionDenied):
        get_project_for_user(_request(users["alice"]), project.slug, admin=True)


def test_outsider_and_site_staff_do_not_learn_that_a_project_exists(users):
    project = make_project(admin=users["admin"], annotators=[users["alice"]])
    for name in ("outsider", "staff"):
        with pytest.raises(Http404):
            get_project_for_user(_request(users[name]), project.slug)
    with pytest.raises(Http404):
        get_project_for_user(_request(users["admin"]), "no-such-project")


def test_home_lists_only_the_users_own_projects(client, users):
    make_project("mine", admin=users["admin"], annotators=[users["alice"]])
    make_project("theirs", admin=users["bob"])
    client.force_login(users["alice"])
    body = client.get("/").content.decode()
    assert "Mine" in body
    assert "Theirs" not in body


def test_pages_require_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
