"""Every page, fragment, download and JSON endpoint, for every role.

The URL list comes from Django's resolver, so a new view fails this test until its
expected statuses are written into ``EXPECTED``. Each request runs inside a savepoint
that is rolled back, so one role's POSTs never change what the next request sees.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from coding.models import Assignment, Codebook, GoldLabel, ImportRun, OpenCode, Project, Role
from tests.factories import make_project, make_user
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "annotator", "other_annotator", "project_admin", "staff")

BOB_MEMO = "BOB-PRIVATE-MEMO-7f3a"
GOLD_RATIONALE = "GOLD-RATIONALE-SECRET-91c2"
BOB_OPEN_CODE = "BOB-OPEN-CODE-5d1e"

# Statuses per role: anonymous, annotator of the project (alice), annotator of another
# project, admin of the project, site staff (not a member of the project).
# "login" is a redirect to the sign-in page; 302 any other redirect.
LOGIN = "login"


def _row(anonymous, annotator, other, admin, staff) -> dict[str, object]:
    return dict(zip(ROLES, (anonymous, annotator, other, admin, staff), strict=True))


STAFF_ONLY = _row(LOGIN, 403, 403, 403, 200)
STAFF_ONLY_POST = _row(LOGIN, 403, 403, 403, 302)
ANY_USER = _row(LOGIN, 200, 200, 200, 200)
MEMBERS = _row(LOGIN, 200, 404, 200, 404)
PROJECT_ADMIN = _row(LOGIN, 403, 404, 200, 404)

# (method, URL name) -> expected status per role.
EXPECTED: dict[tuple[str, str], dict[str, object]] = {
    ("GET", "home"): ANY_USER,
    ("GET", "healthz"): _row(200, 200, 200, 200, 200),
    ("GET", "login"): _row(200, 200, 200, 200, 200),
    ("POST", "logout"): _row(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    ("GET", "password_change"): ANY_USER,
    ("GET", "password_change_done"): ANY_USER,
    # Audit log
    ("GET", "audit_log"): STAFF_ONLY,
    ("GET", "project_audit_log"): PROJECT_ADMIN,
    # Imports (staff)
    ("GET", "imports"): STAFF_ONLY,
    ("GET", "import_detail"): STAFF_ONLY,
    ("POST", "import_cancel"): STAFF_ONLY_POST,
    ("POST", "import_resume"): _row(LOGIN, 403, 403, 403, 404),  # a Hub run: not resumable
    # Corpus
    ("GET", "corpus_list"): ANY_USER,
    ("GET", "thread_detail"): ANY_USER,
    # Codebooks
    ("GET", "codebook_list"): ANY_USER,
    ("POST", "codebook_load"): STAFF_ONLY_POST,
    ("POST", "codebook_create"): STAFF_ONLY_POST,
    ("GET", "codebook_detail"): _row(LOGIN, 200, 200, 200, 200),
    ("GET", "codebook_editor"): _row(LOGIN, 403, 403, 200, 200),
    ("GET", "codebook_history"): ANY_USER,
    ("GET", "codebook_export"): ANY_USER,
    ("GET", "project_codebook"): PROJECT_ADMIN,
    # Projects
    ("GET", "project_list"): ANY_USER,
    ("GET", "project_create"): STAFF_ONLY,
    ("GET", "project_selection_count"): STAFF_ONLY,
    ("GET", "project_detail"): MEMBERS,
    ("GET", "project_sample_size"): PROJECT_ADMIN,
    ("POST", "project_sample"): _row(LOGIN, 403, 404, 400, 404),
    ("POST", "project_assign"): _row(LOGIN, 403, 404, 302, 404),
    ("GET", "project_members"): PROJECT_ADMIN,
    ("POST", "member_remove"): _row(LOGIN, 403, 404, 302, 404),
    ("GET", "project_units"): MEMBERS,  # annotators: their own units only
    ("GET", "unit_reassign"): PROJECT_ADMIN,
    # Coding screen: the annotator opens a unit assigned to them
    ("GET", "code_unit"): MEMBERS,
    ("GET", "coding_history"): PROJECT_ADMIN,
    ("GET", "code_next"): _row(LOGIN, 302, 404, 302, 404),
    # Adjudication
    ("GET", "adjudication_queue"): PROJECT_ADMIN,
    ("POST", "adjudication_bulk_accept"): _row(LOGIN, 403, 404, 302, 404),
    ("POST", "adjudication_close"): _row(LOGIN, 403, 404, 302, 404),
    ("GET", "adjudicate_unit"): PROJECT_ADMIN,
    # Open coding and the affinity board
    ("GET", "open_code_unit"): MEMBERS,
    ("GET", "open_code_next"): _row(LOGIN, 302, 404, 302, 404),
    ("GET", "affinity_board"): PROJECT_ADMIN,
    ("POST", "board_action"): _row(LOGIN, 403, 404, 302, 404),
    ("POST", "board_codebook"): _row(LOGIN, 403, 404, 302, 404),
    ("GET", "open_provisional"): PROJECT_ADMIN,
    ("GET", "open_codes_csv"): PROJECT_ADMIN,
    ("GET", "open_mapping_csv"): PROJECT_ADMIN,
    ("GET", "board_image"): PROJECT_ADMIN,
    # Agreement
    ("GET", "agreement"): PROJECT_ADMIN,
    ("GET", "agreement_chart"): PROJECT_ADMIN,
    # Exports and imports of coded data
    ("GET", "exports"): PROJECT_ADMIN,
    ("GET", "export_pseudonym_key"): PROJECT_ADMIN,
    ("POST", "import_codings"): _row(LOGIN, 403, 404, 302, 404),
    ("GET", "export_download"): PROJECT_ADMIN,
    # Reports: annotators only once enabled and fully adjudicated (a separate test)
    ("GET", "report"): PROJECT_ADMIN,
    ("GET", "report_chart"): PROJECT_ADMIN,
    ("GET", "report_csv"): PROJECT_ADMIN,
    # Forum vs Hub trends
    ("GET", "trends"): ANY_USER,
    ("GET", "trends_chart"): ANY_USER,
    ("GET", "trends_table"): ANY_USER,
    ("GET", "trends_review"): STAFF_ONLY,
    ("POST", "trends_import"): _row(LOGIN, 403, 403, 403, 302),
    ("POST", "trends_hub_import"): _row(LOGIN, 403, 403, 403, 302),
}


def url_patterns(resolver=None, prefix: str = "", namespace: str = ""):
    """(name, route, pattern) for every named URL pattern, recursively."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_patterns(entry, route, inner)
        elif isinstance(entry, URLPattern):
            yield (f"{namespace}{entry.name}" if entry.name else None), route, entry


def app_patterns() -> dict[str, tuple[str, URLPattern]]:
    """The app's own URLs: everything outside Django's admin site."""
    found = {}
    for name, route, pattern in url_patterns():
        if route.startswith("admin/"):
            continue
        assert name, f"the URL {route!r} has no name, so it cannot be checked by role"
        found[name] = (route, pattern)
    return found


def _methods(name: str) -> list[str]:
    return [method for method, key in EXPECTED if key == name]


@pytest.fixture
def world(users):
    """The coded project with planted secrets, a second project, a codebook, an import."""
    project = make_coded_project(users)
    alice, bob = users["alice"], users["bob"]
    unit = project.units.order_by("position").first()
    bob_coding = unit.codings.get(coder=bob)
    bob_coding.memo = BOB_MEMO
    bob_coding.save()
    OpenCode.objects.create(coding=bob_coding, text=BOB_OPEN_CODE, normalized=BOB_OPEN_CODE.lower())
    project.coding_mode = Project.CodingMode.BOTH
    project.save()
    gold = unit.gold
    gold.rationale = GOLD_RATIONALE
    gold.save()
    other = make_user("carol")
    make_project("elsewhere", admin=make_user("dave"), annotators=[other])
    # A Hub run has no forum source.
    run = ImportRun.objects.create(kind=ImportRun.Kind.HUB)
    codebook = Codebook.objects.get(versions=project.codebook_version)
    assert project.memberships.get(user=alice).role == Role.ANNOTATOR
    users = {
        "anonymous": None,
        "annotator": alice,
        "other_annotator": other,
        "project_admin": users["admin"],
        "staff": users["staff"],
    }
    pk_for = {
        "import_detail": run.pk,
        "import_cancel": run.pk,
        "import_resume": run.pk,
        "thread_detail": unit.thread_id,
    }
    return {
        "project": project,
        "unit": unit,
        "users": users,
        "pk_for": pk_for,
        "codebook": codebook,
        "bob": bob,
    }


def _kwargs(name: str, pattern: URLPattern, world: dict) -> dict:
    values = {
        "slug": world["project"].slug,
        "unit_id": world["unit"].pk,
        "pk": world["pk_for"].get(name, world["codebook"].pk),
        "user_id": world["bob"].pk,
        "fmt": {
            "codebook_export": "csv",
            "export_download": "long",
            "trends_chart": "svg",
            "board_image": "svg",
        }.get(name, "csv"),
        "kind": "frequency",
        "name": "forum",
    }
    return {key: values[key] for key in pattern.pattern.converters}


def _request(client, method: str, url: str):
    """The response and its whole body (streamed downloads too), then a rollback."""
    with transaction.atomic():
        response = client.get(url) if method == "GET" else client.post(url, {})
        body = b"".join(response.streaming_content) if response.streaming else response.content
        transaction.set_rollback(True)
    return response, body.decode(errors="replace")


def _status(response) -> object:
    if response.status_code == 302 and response["Location"].startswith("/accounts/login/"):
        return LOGIN
    return response.status_code


def test_every_url_of_the_app_has_expected_statuses_for_every_role():
    names = set(app_patterns())
    listed = {name for _, name in EXPECTED}
    assert names - listed == set(), "views without expected statuses per role"
    assert listed - names == set(), "expected statuses for views that no longer exist"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_status_from_every_url(client, world, role):
    from django.urls import reverse

    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    wrong = []
    # Signing out last, so every other request is made signed in.
    for name, (_, pattern) in sorted(app_patterns().items(), key=lambda i: (i[0] == "logout", i)):
        url = reverse(name, kwargs=_kwargs(name, pattern, world))
        for method in _methods(name):
            response, body = _request(client, method, url)
            expected = EXPECTED[(method, name)][role]
            if _status(response) != expected:
                wrong.append(f"{method} {url}: {_status(response)}, expected {expected}")
            if role in ("annotator", "other_annotator"):
                assert BOB_MEMO not in body, f"{method} {url} shows bob's memo to {role}"
                assert GOLD_RATIONALE not in body, f"{method} {url} shows gold to {role}"
                assert BOB_OPEN_CODE not in body, f"{method} {url} shows bob's open code"
    assert wrong == [], "\n".join(wrong)


def _decide_every_unit(project, admin) -> None:
    """Every unit coded by all its coders and given a decided gold label."""
    Assignment.objects.filter(unit__project=project).update(status=Assignment.Status.DONE)
    for unit in project.units.filter(gold__isnull=True):
        GoldLabel.objects.create(
            unit=unit,
            codebook_version=project.codebook_version,
            rule=GoldLabel.Rule.MANUAL,
            decided_by=admin,
        )


def test_annotators_see_reports_only_once_an_admin_enabled_them_after_adjudication(client, users):
    project = make_coded_project(users)
    report = f"/projects/{project.slug}/reports/"
    client.force_login(users["alice"])
    assert client.get(report).status_code == 403

    client.force_login(users["admin"])
    client.post(report, {"visible": "1"})
    project.refresh_from_db()
    assert not project.reports_visible_to_annotators  # two units still lack gold

    _decide_every_unit(project, users["admin"])
    client.post(report, {"visible": "1"})
    client.force_login(users["alice"])
    assert client.get(report).status_code == 200
    assert client.get(f"{report}frequency/table.csv").status_code == 200

    GoldLabel.objects.filter(unit__project=project).update(is_open=True)
    assert client.get(report).status_code == 403


def test_annotators_reading_reports_cannot_ask_for_single_coders_codings(client, users):
    project = make_coded_project(users)
    _decide_every_unit(project, users["admin"])
    project.reports_visible_to_annotators = True
    project.save()
    client.force_login(users["alice"])
    for basis in ("coder:bob", "all", "coder:alice"):
        response = client.get(
            f"/projects/{project.slug}/reports/frequency/table.csv", {"basis": basis}
        )
        assert response.status_code == 400
        assert b"basis" in response.content
