"""A coder's queue counted by the database: the kept counts (``QueueCount``, maintained by
triggers on the assignments table) equal a fresh count after every kind of change, and
the coding screen shows them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.utils import timezone

from coding import statements
from coding.assignment import (
    add_assignments,
    assign_units,
    complete_assignments,
    reassign,
    remove_member,
)
from coding.models import Assignment, Membership, QueueCount, Role, Unit
from tests.factories import make_user
from tests.factories_projects import make_sampled_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _fresh() -> dict[tuple[int, int], tuple[int, int]]:
    rows = (
        Assignment.objects.values("project_id", "coder_id")
        .annotate(
            total=Count("id", filter=~Q(status=Assignment.Status.RETURNED)),
            done=Count("id", filter=Q(status=Assignment.Status.DONE)),
        )
        .order_by()
    )
    return {(r["project_id"], r["coder_id"]): (r["total"], r["done"]) for r in rows}


def _kept() -> dict[tuple[int, int], tuple[int, int]]:
    return {
        (q.project_id, q.coder_id): (q.total, q.done)
        for q in QueueCount.objects.all()
        if q.total or q.done
    }


def _check() -> None:
    fresh = {key: value for key, value in _fresh().items() if value != (0, 0)}
    assert _kept() == fresh


def test_counts_follow_every_kind_of_assignment_change(users):
    carol = make_user("carol")
    annotators = [users["alice"], users["bob"], carol]
    project = make_sampled_project(admin=users["admin"], annotators=annotators, threads=12)
    _check()
    assert _kept()[(project.pk, users["alice"].pk)][0] > 0

    # Completing through the ORM, a queryset update and a fixed statement.
    first, second, third = Assignment.objects.filter(coder=users["alice"]).order_by("pk")[:3]
    first.status = Assignment.Status.DONE
    first.save()
    Assignment.objects.filter(pk=second.pk).update(status=Assignment.Status.DONE)
    statements.execute(
        "UPDATE coding_assignment SET status = %s WHERE id = %s",
        [Assignment.Status.DONE, third.pk],
    )
    _check()
    # A change that leaves the status alone, and one back to pending.
    Assignment.objects.filter(pk=first.pk).update(completed_at=None)
    Assignment.objects.filter(pk=third.pk).update(status=Assignment.Status.PENDING)
    _check()

    # Moving a unit to another coder, then taking a member off the project.
    pending = Assignment.objects.filter(
        coder=users["bob"], status=Assignment.Status.PENDING
    ).exclude(unit__assignments__coder=carol)
    moved = pending.first()
    reassign(moved.unit, users["bob"], carol)
    _check()
    bobs = Assignment.objects.filter(coder=users["bob"], status=Assignment.Status.PENDING)
    Assignment.objects.filter(pk=bobs.first().pk).update(status=Assignment.Status.DONE)
    remove_member(project, users["bob"])
    _check()
    # Only the finished unit stays in the removed member's queue.
    assert _kept()[(project.pk, users["bob"].pk)] == (1, 1)

    # An assignment moved to another coder by a plain update.
    moved_on = Assignment.objects.filter(coder=users["bob"]).first()
    Assignment.objects.filter(pk=moved_on.pk).update(coder=make_user("dave"))
    _check()

    # A member who comes back is counted from the assignments already there.
    Membership.objects.create(project=project, user=users["bob"], role=Role.ANNOTATOR)
    assign_units(project)
    _check()

    # Deleting a unit deletes its assignments; deleting every unit, all of them.
    Unit.objects.filter(pk=moved.unit_id).delete()
    _check()
    Unit.objects.filter(project=project).delete()
    _check()
    assert not _kept()


def test_bulk_created_assignments_are_counted(users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=30
    )
    counts = _kept()
    assert counts[(project.pk, users["alice"].pk)] == (30, 0)
    assert counts[(project.pk, users["bob"].pk)] == (30, 0)
    assert (project.pk, users["outsider"].pk) not in counts


def test_one_statement_changing_many_assignments_is_counted(users):
    """PostgreSQL counts per statement (migration 0014): a statement that changes many
    rows of several coders at once, in either direction, or changes none."""
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"], carol], threads=40
    )
    everyone = Assignment.objects.filter(unit__project=project)
    half = list(everyone.order_by("pk").values_list("pk", flat=True)[::2])
    assert everyone.filter(pk__in=half).update(status=Assignment.Status.DONE) == len(half)
    _check()
    everyone.filter(pk__in=half[:7]).update(status=Assignment.Status.RETURNED)
    _check()
    assert everyone.filter(pk=-1).update(status=Assignment.Status.DONE) == 0
    everyone.update(completed_at=None)
    _check()
    everyone.filter(status=Assignment.Status.RETURNED).update(status=Assignment.Status.PENDING)
    _check()
    everyone.filter(coder=users["alice"]).update(coder=make_user("dave"))
    _check()
    # Units and their assignments moved to another project, then a mixed bulk insert.
    other = make_sampled_project(
        "other", admin=users["admin"], annotators=[users["bob"]], threads=3
    )
    moved = list(everyone.filter(coder=carol).values_list("pk", flat=True)[:5])
    Assignment.objects.filter(pk__in=moved).update(project=other)
    _check()
    Assignment.objects.filter(pk__in=moved).update(project=project)
    spare = Unit.objects.filter(project=other).exclude(assignments__coder=carol)
    Assignment.objects.bulk_create(
        Assignment(unit=unit, coder=carol, status=status)
        for unit, status in zip(
            spare, [Assignment.Status.DONE, Assignment.Status.RETURNED, "pending"], strict=False
        )
    )
    _check()
    everyone.filter(pk__in=half[7:20]).delete()
    _check()
    dave = User.objects.get(username="dave")
    assert {key for key in _kept() if key[0] == project.pk} == {
        (project.pk, user.pk) for user in (users["bob"], carol, dave)
    }


def test_importers_bulk_writes_of_assignments(users):
    """``add_assignments`` skips pairs that exist; ``complete_assignments`` finishes
    pending and returned ones, keeps a done one's time, and the counts follow."""
    carol = make_user("carol")
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=6
    )
    units = list(Unit.objects.filter(project=project).order_by("pk"))
    alice = Assignment.objects.filter(coder=users["alice"]).order_by("unit_id")
    done, returned, pending = alice[0], alice[1], alice[2]
    earlier = timezone.now() - timedelta(days=3)
    Assignment.objects.filter(pk=done.pk).update(status="done", completed_at=earlier)
    Assignment.objects.filter(pk=returned.pk).update(status="returned")
    before = Assignment.objects.count()
    add_assignments([(u.pk, carol.pk) for u in units[:4]] + [(done.unit_id, users["alice"].pk)])
    assert Assignment.objects.count() == before + 4
    _check()
    now = timezone.now()
    pairs = [(a.unit_id, users["alice"].pk) for a in (done, returned, pending)]
    add_assignments([(units[5].pk, carol.pk)])
    complete_assignments([*pairs, (units[5].pk, carol.pk)], now)
    _check()
    status = {
        a.pk: (a.status, a.completed_at)
        for a in Assignment.objects.filter(pk__in=[done.pk, returned.pk, pending.pk])
    }
    assert status == {
        done.pk: ("done", earlier),
        returned.pk: ("done", now),
        pending.pk: ("done", now),
    }
    assert Assignment.objects.get(unit=units[5], coder=carol).status == "done"
    assert Assignment.objects.filter(coder=carol, status="pending").count() == 4


def test_the_coding_screen_shows_the_kept_progress(client, users):
    project = make_sampled_project(
        admin=users["admin"], annotators=[users["alice"], users["bob"]], threads=4
    )
    client.force_login(users["alice"])
    unit = Assignment.objects.filter(coder=users["alice"]).order_by("pk").first().unit
    url = f"/projects/{project.slug}/units/{unit.pk}/code/"
    assert "0 of 4 done" in client.get(url).content.decode()
    body = {"base_revision": 0, "codes": [], "not_relevant": True, "submit": True}
    saved = client.post(url, json.dumps(body), content_type="application/json")
    assert saved.status_code == 200
    assert "1 of 4 done" in client.get(saved.json()["next"]).content.decode()
    _check()


def test_the_triggers_are_in_place():
    """A migration that rebuilds the assignments table (as SQLite's schema editor does
    for most field changes) drops its triggers; the counts would then drift unseen."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'coding_assignment'::regclass "
                "AND NOT tgisinternal"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'coding_assignment'"
            )
        expected = {
            "coding_queuecount_insert",
            "coding_queuecount_delete",
            "coding_queuecount_update",
        }
        assert {row[0] for row in cursor.fetchall()} == expected
        if connection.vendor == "postgresql":
            # Per statement (migration 0014): per-row updates of one coder's count row
            # within a transaction made writing a long queue quadratic.
            cursor.execute(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = 'coding_assignment'::regclass AND NOT tgisinternal"
            )
            definitions = [row[0] for row in cursor.fetchall()]
            assert all("FOR EACH STATEMENT" in d for d in definitions), definitions


def test_a_save_writes_no_index_that_a_composite_one_covers():
    """Each foreign key that leads a unique or composite index has no index of its own
    (migration 0013); the indexes a save relies on are still there."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = {
            index
            for table in ("coding_assignment", "coding_coding", "coding_codeapplication")
            for index in connection.introspection.get_constraints(cursor, table)
        }
    assert not found & {
        "coding_assignment_coder_id_5ebd34af",
        "coding_assignment_unit_id_c6eac686",
        "coding_codeapplication_coding_id_6fc318c8",
        "coding_coding_coder_id_646aeb05",
        "coding_coding_unit_id_e9fb31e0",
    }
    assert {"assignment_queue", "assignment_next", "coding_coder_status"} <= found
