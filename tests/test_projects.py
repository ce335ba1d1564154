import pytest
from django.utils import timezone

from coding.models import (
    Assignment,
    CodeApplication,
    Coding,
    Membership,
    Project,
    Role,
    Round,
    Unit,
)
from tests.factories import make_source, make_user
from tests.factories_projects import make_codebook_version, make_sampled_project, make_threads

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _finish(assignment: Assignment, codes=()) -> Coding:
    """Mark an assignment done with a submitted coding carrying ``codes``."""
    assignment.status = Assignment.Status.DONE
    assignment.completed_at = timezone.now()
    assignment.save()
    coding = Coding.objects.create(
        unit=assignment.unit,
        coder=assignment.coder,
        codebook_version=assignment.unit.project.codebook_version,
        status=Coding.Status.SUBMITTED,
        submitted_at=timezone.now(),
    )
    for code in codes:
        CodeApplication.objects.create(coding=coding, code=code)
    return coding


def _code_both(project, users):
    """Alice and Bob code the same shared unit with different codes."""
    unit = Unit.objects.filter(project=project, shared=True).order_by("position").first()
    codes = list(project.codebook_version.codes.order_by("order"))
    _finish(unit.assignments.get(coder=users["alice"]), [codes[0]])
    _finish(unit.assignments.get(coder=users["bob"]), [codes[1]])
    return unit, codes


def _study(users, threads=8, slug="study"):
    return make_sampled_project(
        slug, admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=threads
    )


# The project list -------------------------------------------------------------------


def test_project_list_shows_each_project_with_role_and_progress(client, users):
    project = _study(users)
    _code_both(project, users)
    client.force_login(users["alice"])

    body = client.get("/projects/").content.decode()

    assert "Study" in body
    assert "Annotator" in body
    assert "1/8 done" in body  # her own: one of her eight assignments
    assert "New project" not in body


def test_project_list_shows_admins_the_whole_projects_progress(client, users):
    project = _study(users)
    _code_both(project, users)
    client.force_login(users["admin"])
    body = client.get("/projects/").content.decode()
    assert "Project admin" in body
    assert "2/16 done" in body


def test_staff_see_a_new_project_button(client, users):
    client.force_login(users["staff"])
    assert "New project" in client.get("/projects/").content.decode()


@pytest.mark.parametrize("projects", [1, 4])
def test_project_list_uses_a_constant_number_of_queries(
    client, users, projects, django_assert_num_queries
):
    for i in range(projects):
        _study(users, threads=3 + i, slug=f"study-{i}")
    client.force_login(users["alice"])
    with django_assert_num_queries(4):
        response = client.get("/projects/")
    assert response.content.decode().count("/projects/study-") == projects


# Creating a project ----------------------------------------------------------------


def test_staff_create_a_project_and_become_its_admin(client, users):
    version = make_codebook_version()
    source = make_source()
    make_threads(5, source=source)
    client.force_login(users["staff"])

    response = client.post(
        "/projects/new/",
        {
            "name": "Model reuse",
            "slug": "model-reuse",
            "codebook_version": version.pk,
            "unit_type": "thread",
            "coders_per_unit": 3,
            "overlap_percent": 40,
            "sources": [source.pk],
            "categories": ["Beginners"],
            "created_after": "2021-01-01",
            "created_before": "2021-06-30",
            "accepted_answer": "no",
        },
    )

    assert response.status_code == 302
    project = Project.objects.get(slug="model-reuse")
    assert response["Location"] == "/projects/model-reuse/"
    assert (project.codebook_version, project.coders_per_unit, project.overlap) == (version, 3, 0.4)
    assert project.selection == {
        "sources": [source.pk],
        "categories": ["Beginners"],
        "created_after": "2021-01-01",
        "created_before": "2021-06-30",
        "accepted_answer": False,
    }
    assert Membership.objects.get(project=project).role == Role.ADMIN
    assert Membership.objects.get(project=project).user == users["staff"]


def test_a_bad_project_form_names_the_wrong_field_and_creates_nothing(client, users):
    version = make_codebook_version()
    client.force_login(users["staff"])
    response = client.post(
        "/projects/new/",
        {
            "name": "X",
            "slug": "not a slug!",
            "codebook_version": version.pk,
            "unit_type": "thread",
            "coders_per_unit": 0,
            "overlap_percent": 100,
            "created_after": "2022-01-01",
            "created_before": "2021-01-01",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "valid “slug”" in body
    assert "greater than or equal to 1" in body
    assert "before its start" in body
    assert not Project.objects.exists()


def test_the_new_project_page_counts_the_threads_the_selection_matches(client, users):
    source = make_source()
    make_threads(12, source=source)
    other = make_source("Other forum", "https://other.test")
    make_threads(5, source=other, start_id=100)
    client.force_login(users["staff"])

    assert "<strong>17</strong> threads" in client.get("/projects/new/").content.decode()
    fragment = client.get(
        "/projects/new/matching/",
        {"sources": [source.pk], "categories": ["Beginners", "Datasets"]},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert fragment.strip().startswith('<p id="selection-count"')
    assert "<strong>6</strong> threads" in fragment
    client.force_login(users["admin"])
    assert client.get("/projects/new/matching/").status_code == 403


def test_the_slug_new_is_refused(client, users):
    version = make_codebook_version()
    client.force_login(users["staff"])
    response = client.post(
        "/projects/new/",
        {
            "name": "New",
            "slug": "new",
            "codebook_version": version.pk,
            "unit_type": "thread",
            "coders_per_unit": 2,
            "overlap_percent": 100,
        },
    )
    assert "taken by the new-project page" in response.content.decode()
    assert not Project.objects.exists()


def test_only_staff_may_create_projects(client, users):
    client.force_login(users["admin"])
    assert client.get("/projects/new/").status_code == 403
    assert client.post("/projects/new/", {"name": "x"}).status_code == 403
    assert not Project.objects.exists()


# The project page --------------------------------------------------------------------


def test_admin_sees_set_up_progress_per_annotator_and_per_round(client, users):
    project = _study(users)
    _code_both(project, users)
    client.force_login(users["admin"])

    body = client.get("/projects/study/").content.decode()

    assert "alice" in body
    assert "bob" in body
    assert "main" in body
    assert "sources: Forum study" in body
    assert "Draw a sample" in body
    assert "Codebook study v1" in body


def test_annotator_sees_only_their_queue_and_progress(client, users):
    project = _study(users)
    _code_both(project, users)
    client.force_login(users["alice"])

    response = client.get("/projects/study/")
    body = response.content.decode()

    assert "Start coding" in body
    assert 'href="/projects/study/next/"' in body
    assert "1/8" in body
    assert "bob" not in body
    assert "Draw a sample" not in body
    assert "shared" not in body.lower()


def test_outsiders_and_staff_do_not_learn_that_a_project_exists(client, users):
    _study(users)
    for name in ("outsider", "staff"):
        client.force_login(users[name])
        assert client.get("/projects/study/").status_code == 404
        assert client.get("/projects/study/units/").status_code == 404
        assert client.get("/projects/study/members/").status_code == 404


def test_annotators_may_not_use_admin_pages(client, users):
    project = _study(users)
    unit = Unit.objects.filter(project=project).first()
    client.force_login(users["alice"])
    assert client.get("/projects/study/members/").status_code == 403
    assert client.post("/projects/study/sample/", {"margin": 0.05}).status_code == 403
    assert client.post("/projects/study/assign/").status_code == 403
    assert client.get("/projects/study/sample-size/").status_code == 403
    assert client.get(f"/projects/study/units/{unit.pk}/reassign/").status_code == 403


@pytest.mark.parametrize("threads", [4, 40])
def test_admin_project_page_uses_a_constant_number_of_queries(
    client, users, threads, django_assert_num_queries
):
    _study(users, threads=threads)
    client.force_login(users["admin"])
    with django_assert_num_queries(11):
        assert client.get("/projects/study/").status_code == 200


@pytest.mark.parametrize("threads", [4, 40])
def test_annotator_project_page_uses_a_constant_number_of_queries(
    client, users, threads, django_assert_num_queries
):
    _study(users, threads=threads)
    client.force_login(users["alice"])
    with django_assert_num_queries(8):
        assert client.get("/projects/study/").status_code == 200


# Sampling from the page ----------------------------------------------------------------


def test_the_calculator_updates_n_as_confidence_and_margin_change(client, users):
    make_sampled_project(admin=users["admin"], annotators=[users["alice"]], threads=10, size=1)
    make_threads(11_000, source=make_source("Forum study"), start_id=100)
    client.force_login(users["admin"])

    response = client.get(
        "/projects/study/sample-size/",
        {"confidence": "0.95", "margin": "0.05"},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert body.strip().startswith('<p id="sample-size"')
    assert 'data-n="372"' in body
    assert "of 11009 units left to sample" in body

    wider = client.get(
        "/projects/study/sample-size/",
        {"confidence": "0.99", "margin": "0.1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert 'data-n="164"' in wider
    bad = client.get("/projects/study/sample-size/", {"margin": "2"}).content.decode()
    assert "less than or equal to 0.5" in bad


def test_admin_samples_a_round_from_the_page_and_it_is_assigned(client, users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=10, size=2
    )
    client.force_login(users["admin"])

    response = client.post(
        "/projects/study/sample/",
        {"round_name": "second", "confidence": "0.95", "margin": "0.05", "size": "5", "seed": "3"},
        follow=True,
    )

    assert "Sampled 5 of 8 units into round second (seed 3)" in response.content.decode()
    second = Round.objects.get(project=project, name="second")
    assert second.seed == 3
    assert Assignment.objects.filter(unit__round=second).count() == 10


def test_a_sample_too_large_is_refused_with_a_message_and_nothing_is_written(client, users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"]], threads=10, size=2
    )
    client.force_login(users["admin"])
    response = client.post(
        "/projects/study/sample/",
        {"round_name": "big", "confidence": "0.95", "margin": "0.05", "size": "50"},
    )
    assert response.status_code == 400
    assert "only 8 are left to sample" in response.content.decode()
    assert not Round.objects.filter(project=project, name="big").exists()


# Members ---------------------------------------------------------------------------------


def test_admin_adds_an_annotator_by_username(client, users):
    project = _study(users)
    carol = make_user("carol")
    client.force_login(users["admin"])
    response = client.post(
        "/projects/study/members/", {"username": "carol", "role": "annotator"}, follow=True
    )
    assert "carol added as annotator" in response.content.decode()
    assert Membership.objects.get(project=project, user=carol).role == Role.ANNOTATOR
    again = client.post("/projects/study/members/", {"username": "carol", "role": "annotator"})
    assert "already a member" in again.content.decode()
    nobody = client.post("/projects/study/members/", {"username": "zed", "role": "annotator"})
    assert "No account named &#x27;zed&#x27;" in nobody.content.decode()


def test_an_annotator_added_by_two_admins_at_once_is_added_once_with_a_message(
    client, users, monkeypatch
):
    from coding.project_forms import MemberForm

    project = _study(users)
    carol = make_user("carol")
    Membership.objects.create(project=project, user=carol, role=Role.ANNOTATOR)
    # The other admin's add lands between this form's check and its write.
    monkeypatch.setattr(MemberForm, "clean_username", lambda form: carol)
    client.force_login(users["admin"])
    response = client.post("/projects/study/members/", {"username": "carol", "role": "admin"})
    assert response.status_code == 400
    assert "carol is already a member of this project." in response.content.decode()
    assert Membership.objects.get(project=project, user=carol).role == Role.ANNOTATOR


def test_removing_an_annotator_from_the_page_hands_their_units_to_the_others(client, users):
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"], carol], threads=9, k=2
    )
    done = Assignment.objects.filter(coder=carol).first()
    _finish(done)
    client.force_login(users["admin"])

    response = client.post(f"/projects/study/members/{carol.pk}/remove/", follow=True)

    assert "carol removed" in response.content.decode()
    # Her finished unit still counts, on a row of its own.
    row = '<tr><td>carol</td><td class="muted">removed (finished units kept)</td>'
    assert row + '<td class="num">1</td><td class="num">1</td>' in response.content.decode()
    detail = client.get("/projects/study/").content.decode()
    assert '<tr><td>carol</td><td class="muted">removed</td>' in detail
    assert not Assignment.objects.filter(coder=carol, status="pending").exists()
    assert Assignment.objects.get(pk=done.pk).status == "done"
    assert Coding.objects.filter(coder=carol).count() == 1
    assert (
        not Unit.objects.filter(project=project)
        .exclude(
            pk__in=Assignment.objects.filter(
                status="pending", coder__in=[users["alice"], users["bob"]]
            ).values("unit")
        )
        .exclude(pk=done.unit_id)
        .exists()
    )


# Units, codings and blind coding ---------------------------------------------------------


def test_admin_sees_every_coders_codings_per_unit(client, users):
    project = _study(users)
    _unit, codes = _code_both(project, users)
    client.force_login(users["admin"])
    body = client.get("/projects/study/units/").content.decode()
    assert "alice" in body
    assert "bob" in body
    assert codes[0].name in body
    assert codes[1].name in body


def test_annotator_cannot_see_other_codings(client, users):
    project = _study(users)
    _unit, codes = _code_both(project, users)
    client.force_login(users["alice"])

    body = client.get("/projects/study/units/").content.decode()

    assert codes[0].name in body
    assert codes[1].name not in body
    assert "bob" not in body
    assert "Reassign" not in body
    assert body.count('class="status-') == 8


@pytest.mark.parametrize("threads", [4, 40])
def test_units_table_uses_a_constant_number_of_queries(
    client, users, threads, django_assert_num_queries
):
    project = _study(users, threads=threads)
    _code_both(project, users)
    client.force_login(users["admin"])
    with django_assert_num_queries(8):
        assert client.get("/projects/study/units/").status_code == 200


def test_admin_reassigns_a_unit_from_the_page(client, users):
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], carol], threads=4, k=1
    )
    assignment = Assignment.objects.filter(coder=users["alice"]).first()
    client.force_login(users["admin"])
    url = f"/projects/study/units/{assignment.unit_id}/reassign/"

    response = client.post(url, {"from_coder": users["alice"].pk, "to_coder": carol.pk})

    assert response.status_code == 302
    assert assignment.unit.assignments.get(coder=carol).status == "pending"
    same = client.post(url, {"from_coder": carol.pk, "to_coder": carol.pk})
    assert "Choose another annotator" in same.content.decode()
    assert project.units.count() == 4


def test_home_page_links_each_project_to_its_page(client, users):
    _study(users, threads=2)
    client.force_login(users["alice"])
    assert 'href="/projects/study/"' in client.get("/").content.decode()


# A closed project ------------------------------------------------------------------------


def _closed(users):
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"], carol], threads=8, k=2
    )
    finished = Assignment.objects.filter(coder=users["alice"]).order_by("unit__position").first()
    coding = _finish(finished, [project.codebook_version.codes.order_by("order").first()])
    coding.memo = "seen before closing"
    coding.save()
    Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    return project, carol, finished


def test_a_closed_project_samples_and_assigns_nothing_and_says_why(client, users):
    project, carol, _ = _closed(users)
    before = Assignment.objects.count()
    client.force_login(users["admin"])

    sample = client.post(
        "/projects/study/sample/",
        {"round_name": "late", "confidence": "0.95", "margin": "0.05", "size": "1"},
    )
    assert sample.status_code == 400
    assert "closed for coding; nothing sampled" in sample.content.decode()
    assign = client.post("/projects/study/assign/", follow=True)
    assert "Nothing assigned: the project is closed for coding" in assign.content.decode()
    pending = Assignment.objects.filter(coder=users["bob"], status="pending").first()
    reassign = client.post(
        f"/projects/study/units/{pending.unit_id}/reassign/",
        {"from_coder": users["bob"].pk, "to_coder": carol.pk},
    )
    assert "the project is closed for coding" in reassign.content.decode()
    removed = client.post(f"/projects/study/members/{carol.pk}/remove/", follow=True)
    assert "the project is closed, so they stay unassigned" in removed.content.decode()
    assert not Round.objects.filter(project=project, name="late").exists()
    assert Assignment.objects.count() == before
    assert not Assignment.objects.filter(coder=carol, status="pending").exists()


def test_in_a_closed_project_coders_read_their_coding_but_are_not_sent_to_code(client, users):
    _, _, finished = _closed(users)
    client.force_login(users["alice"])

    queue = client.get("/projects/study/").content.decode()
    assert "This project is closed for coding." in queue and "Start coding" not in queue
    following = client.get("/projects/study/next/", follow=True)
    assert following.redirect_chain[-1][0] == "/projects/study/"
    assert "This project is closed for coding." in following.content.decode()
    page = client.get(f"/projects/study/units/{finished.unit_id}/code/").content.decode()
    assert "this project is closed for coding; your coding is shown as stored" in page
    assert "Memo: seen before closing" in page
    assert 'id="save-next"' not in page
    assert " checked disabled" in page
