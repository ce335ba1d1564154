from collections import Counter

import pytest
from django.db.models import Count, Q
from django.utils import timezone

from coding.assignment import (
    AssignmentError,
    assign_units,
    next_unit_for,
    reassign,
    remove_member,
)
from coding.models import Assignment, Coding, Membership, Role, Unit
from tests.factories import make_user
from tests.factories_projects import make_sampled_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ACTIVE = ("pending", "done")


def _loads(project) -> Counter:
    return Counter(
        dict(
            Assignment.objects.filter(unit__project=project, status__in=ACTIVE)
            .values("coder__username")
            .annotate(n=Count("id"))
            .values_list("coder__username", "n")
        )
    )


def _coders_per_unit(project) -> dict[int, int]:
    return dict(
        Unit.objects.filter(project=project)
        .annotate(n=Count("assignments", filter=Q(assignments__status__in=ACTIVE)))
        .values_list("pk", "n")
    )


def test_each_shared_unit_goes_to_exactly_k_distinct_coders_and_the_rest_to_one(users):
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"],
        annotators=[users["alice"], users["bob"], carol],
        threads=31,
        k=2,
        overlap=0.5,
    )
    shared = set(Unit.objects.filter(project=project, shared=True).values_list("pk", flat=True))
    per_unit = _coders_per_unit(project)

    assert len(shared) == round(31 * 0.5)
    assert all(per_unit[pk] == (2 if pk in shared else 1) for pk in per_unit)
    loads = _loads(project)
    assert sum(loads.values()) == 2 * len(shared) + (31 - len(shared))
    assert max(loads.values()) - min(loads.values()) <= 1
    assert set(loads) == {"alice", "bob", "carol"}


def test_assigning_again_changes_nothing(users):
    project = make_sampled_project(admin=users["admin"], annotators=[users["alice"], users["bob"]])
    before = Assignment.objects.count()
    assert assign_units(project).assigned == 0
    assert Assignment.objects.count() == before


def test_too_few_annotators_leave_open_slots_that_a_new_annotator_fills(users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"]], threads=10, k=2
    )
    assert _loads(project) == Counter({"alice": 10})
    Membership.objects.create(project=project, user=users["bob"], role=Role.ANNOTATOR)

    result = assign_units(project)

    assert (result.assigned, result.short) == (10, 0)
    assert set(_coders_per_unit(project).values()) == {2}


def test_removing_a_coder_returns_unfinished_units_to_others_and_keeps_finished_codings(users):
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"],
        annotators=[users["alice"], users["bob"], carol],
        threads=30,
        k=2,
    )
    carols = list(Assignment.objects.filter(coder=carol).order_by("unit__position"))
    finished = carols[:3]
    for assignment in finished:
        assignment.status = Assignment.Status.DONE
        assignment.completed_at = timezone.now()
        assignment.save()
        Coding.objects.create(
            unit=assignment.unit,
            coder=carol,
            codebook_version=project.codebook_version,
            status=Coding.Status.SUBMITTED,
        )

    result = remove_member(project, carol)

    assert not Membership.objects.filter(project=project, user=carol).exists()
    assert result.assigned == len(carols) - 3
    statuses = Counter(Assignment.objects.filter(coder=carol).values_list("status", flat=True))
    assert statuses == Counter({"done": 3, "returned": len(carols) - 3})
    assert Coding.objects.filter(coder=carol, status="submitted").count() == 3
    assert set(_coders_per_unit(project).values()) == {2}
    loads = _loads(project)
    assert abs(loads["alice"] - loads["bob"]) <= 1
    assert next_unit_for(project, carol) is None


def test_the_last_admin_cannot_be_removed(users):
    project = make_sampled_project(admin=users["admin"], annotators=[users["alice"]], threads=2)
    with pytest.raises(AssignmentError, match="at least one admin"):
        remove_member(project, users["admin"])
    with pytest.raises(AssignmentError, match="not a member"):
        remove_member(project, users["outsider"])


def test_an_admin_reassigns_a_pending_unit_to_another_annotator(users):
    carol = make_user("carol")
    make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"], carol], threads=6, k=1
    )
    assignment = Assignment.objects.filter(coder=users["alice"]).first()
    unit = assignment.unit
    target = carol if not unit.assignments.filter(coder=carol).exists() else users["bob"]

    reassign(unit, users["alice"], target)

    assignment.refresh_from_db()
    assert assignment.status == "returned"
    assert unit.assignments.get(coder=target).status == "pending"
    with pytest.raises(AssignmentError, match="no unfinished assignment"):
        reassign(unit, users["alice"], target)
    with pytest.raises(AssignmentError, match="already has this unit"):
        reassign(unit, target, target)
    with pytest.raises(AssignmentError, match="not an annotator"):
        reassign(unit, target, users["outsider"])
    reassign(unit, target, users["alice"])
    assignment.refresh_from_db()
    assert assignment.status == "pending"


def test_next_unit_follows_the_sample_order_and_skips_finished_units(users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"]], threads=5, k=1
    )
    queue = list(Assignment.objects.filter(coder=users["alice"]).order_by("unit__position"))
    assert next_unit_for(project, users["alice"]) == queue[0].unit
    queue[0].status = Assignment.Status.DONE
    queue[0].save()
    assert next_unit_for(project, users["alice"]) == queue[1].unit
    assert next_unit_for(project, users["bob"]) is None


def test_a_coder_removed_and_added_back_gets_their_returned_units_again(users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=5, k=2
    )
    removed = remove_member(project, users["bob"])
    assert (removed.assigned, removed.short) == (0, 5)
    assert Assignment.objects.filter(coder=users["bob"], status="returned").count() == 5

    Membership.objects.create(project=project, user=users["bob"], role=Role.ANNOTATOR)
    result = assign_units(project)

    assert (result.assigned, result.short) == (5, 0)
    assert Assignment.objects.filter(coder=users["bob"], status="pending").count() == 5
    assert set(_coders_per_unit(project).values()) == {2}
