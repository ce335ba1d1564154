"""The audit log: sign-ins, imports, codebook changes, adjudications and exports, with who,
when and what, readable by staff (everything) and project admins (their project)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.signals import user_login_failed

from coding.models import AuditEvent, Codebook
from tests.factories import PASSWORD, make_project
from tests.factories_exports import make_coded_project
from tests.fake_discourse import FakeDiscourse, FakeForum

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_sign_ins_and_failed_sign_ins_are_recorded_without_the_password(client, users):
    client.post("/accounts/login/", {"username": "alice", "password": "wrong-guess-123"})
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    failed = AuditEvent.objects.get(action=Action.SIGN_IN_FAILED)
    signed_in = AuditEvent.objects.get(action=Action.SIGN_IN)
    assert failed.username == "alice" and failed.user is None
    assert signed_in.user == users["alice"] and signed_in.ip == "127.0.0.1"
    for event in (failed, signed_in):
        assert "wrong-guess" not in str(event.detail) and PASSWORD not in str(event.detail)


def test_starting_a_forum_import_is_recorded(client, users, settings):
    settings.IMPORT_ALLOW_PRIVATE_HOSTS = True
    forum = FakeForum()
    forum.add_topic(1, posts=1)
    client.force_login(users["staff"])
    with FakeDiscourse(forum) as fake:
        response = client.post("/imports/", {"base_url": fake.url, "rate": "10"})

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=Action.IMPORT)
    assert event.user == users["staff"]
    assert event.object_type == "importrun"
    assert event.detail["base_url"] == fake.url


def test_codebook_changes_are_recorded(client, users):
    client.force_login(users["staff"])
    client.post("/codebooks/new/", {"name": "Taxonomy"})
    codebook = Codebook.objects.get(name="Taxonomy")
    upload = io.BytesIO(b"key,name\ninstall,Installation\n")
    upload.name = "taxonomy.csv"
    client.post("/codebooks/load/", {"file": upload, "name": "Taxonomy"})

    events = AuditEvent.objects.filter(action=Action.CODEBOOK).order_by("at", "id")
    assert [e.detail["op"] for e in events] == ["create", "load"]
    assert events[0].object_id == str(codebook.pk)
    assert events[1].detail["file"] == "taxonomy.csv"


def test_adjudications_and_exports_are_recorded_in_the_project(client, users):
    project = make_coded_project(users)
    unit = project.units.order_by("position")[1]
    client.force_login(users["admin"])
    client.post(
        f"/projects/{project.slug}/adjudicate/{unit.pk}/",
        {"codes": ["docs"], "rule": "union", "rationale": "ok", "base_revision": ""},
    )
    client.get(f"/projects/{project.slug}/exports/long/", {"pseudonymize": "1"})

    decided = AuditEvent.objects.get(action=Action.ADJUDICATE)
    assert decided.project == project and decided.object_id == str(unit.pk)
    assert decided.detail["codes"] == ["docs"]
    exported = AuditEvent.objects.get(action=Action.EXPORT)
    assert exported.project == project and exported.user == users["admin"]
    assert exported.detail["format"] == "long"


def test_staff_read_the_whole_log_and_project_admins_only_their_projects(client, users):
    mine = make_coded_project(users)
    theirs = make_project("theirs", admin=users["bob"])
    client.force_login(users["admin"])
    client.get(f"/projects/{mine.slug}/exports/wide/")
    client.force_login(users["bob"])
    client.get(f"/projects/{theirs.slug}/exports/gold/")

    client.force_login(users["staff"])
    everything = client.get("/audit/").content.decode()
    assert f"{mine.name}" in everything and "Theirs" in everything
    assert "format=wide" in everything and "format=gold" in everything

    client.force_login(users["admin"])
    own = client.get(f"/projects/{mine.slug}/audit/")
    assert own.status_code == 200
    assert "format=wide" in own.content.decode() and "format=gold" not in own.content.decode()
    assert client.get("/audit/").status_code == 403
    assert client.get(f"/projects/{theirs.slug}/audit/").status_code == 404

    client.force_login(users["alice"])
    assert client.get(f"/projects/{mine.slug}/audit/").status_code == 403


def test_the_log_filters_by_known_actions_only(client, users):
    client.post("/accounts/login/", {"username": "nobody", "password": "x"})
    client.force_login(users["staff"])

    failed = client.get("/audit/", {"action": "sign_in_failed"}).content.decode()
    exports = client.get("/audit/", {"action": "export"}).content.decode()
    unknown = client.get("/audit/", {"action": "username__startswith"})

    assert "nobody" in failed and "nobody" not in exports
    assert unknown.status_code == 200 and "nobody" in unknown.content.decode()


def test_an_export_whose_query_holds_a_nul_character_is_recorded_on_every_database(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])

    response = client.get(f"/projects/{project.slug}/exports/long/", {"q": "a\x00b"})

    assert response.status_code == 200
    assert AuditEvent.objects.get(action=Action.EXPORT).detail["query"]["q"] == "a\ufffdb"


def test_sign_ins_refused_by_the_throttle_are_recorded_and_check_no_password(
    client, users, settings
):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/accounts/login/", {"username": "alice", "password": "guess-123456"})
    checked = []
    user_login_failed.connect(checked.append, dispatch_uid="test-throttled")
    try:
        refused = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    finally:
        user_login_failed.disconnect(dispatch_uid="test-throttled")

    assert refused.status_code == 429
    assert 'value="alice"' in refused.content.decode()
    assert checked == []  # the password was not even checked
    failed = AuditEvent.objects.filter(action=Action.SIGN_IN_FAILED, username="alice")
    assert [e.detail.get("throttled", False) for e in failed.order_by("id")] == [
        False,
        False,
        True,
    ]
    assert not AuditEvent.objects.filter(action=Action.SIGN_IN).exists()
