from datetime import timedelta

import pytest
from django.utils import timezone

from coding.models import Assignment
from coding.progress import memberships_with_progress, project_progress
from tests.factories_projects import make_sampled_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _done(assignment: Assignment, days_ago: int = 0) -> None:
    assignment.status = Assignment.Status.DONE
    assignment.completed_at = timezone.now() - timedelta(days=days_ago)
    assignment.save()


def _project_with_history(users):
    """Six units for Alice and Bob (K = 2); Alice finished two (one today), Bob left one."""
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=6, k=2
    )
    first, second = Assignment.objects.filter(coder=users["alice"]).order_by("unit__position")[:2]
    _done(first)
    _done(second, days_ago=2)
    returned = Assignment.objects.filter(coder=users["bob"]).first()
    returned.status = Assignment.Status.RETURNED
    returned.save()
    return project


def test_progress_counts_done_today_per_annotator_and_round_and_leaves_out_returned_units(users):
    project = _project_with_history(users)

    progress = project_progress(project)

    figures = {m.user.username: (m.assigned, m.done, m.done_today) for m in progress.members}
    assert figures == {"padmin": (0, 0, 0), "alice": (6, 2, 1), "bob": (5, 0, 0)}
    totals = progress.totals
    assert (totals.assigned, totals.done, totals.done_today) == (11, 2, 1)
    assert (progress.unit_count, progress.open_slots) == (6, 1)
    (main,) = progress.rounds
    assert (main.name, main.unit_count, main.assigned, main.done) == ("main", 6, 11, 2)


def test_an_annotators_progress_holds_only_their_own_work(users):
    project = _project_with_history(users)

    progress = project_progress(project, coder=users["bob"])

    assert [m.user.username for m in progress.members] == ["bob"]
    assert (progress.totals.assigned, progress.totals.done) == (5, 0)
    assert progress.rounds[0].assigned == 5
    assert progress.open_slots == 0


def test_the_project_list_carries_the_projects_and_the_users_own_figures(users):
    _project_with_history(users)
    (membership,) = memberships_with_progress(users["alice"])
    assert (membership.unit_count, membership.assigned, membership.done) == (6, 11, 2)
    assert (membership.own_assigned, membership.own_done, membership.own_done_today) == (6, 2, 1)
    assert memberships_with_progress(users["outsider"]) == []
