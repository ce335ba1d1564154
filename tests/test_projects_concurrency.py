"""Two admins at once: concurrent samples and assignments never collide or overfill."""

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q

from coding.assignment import assign_units
from coding.models import Assignment, Unit
from coding.sampling import draw_round
from tests.factories import make_user
from tests.factories_projects import make_sampled_project, make_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _in_threads(*jobs) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(job) -> None:
        try:
            start.wait()
            with transaction.atomic():
                job()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def test_two_rounds_sampled_at_once_take_disjoint_units():
    lead, alice = make_user("lead"), make_user("alice")
    project = make_sampled_project(admin=lead, annotators=[alice], threads=10, size=2)
    make_threads(60, source=project.units.first().thread.source, start_id=1000)

    errors = _in_threads(
        lambda: draw_round(project, size=30, seed=1, round_name="first"),
        lambda: draw_round(project, size=30, seed=2, round_name="second"),
    )

    assert errors == []
    units = Unit.objects.filter(project=project)
    assert units.count() == 62
    assert units.values("thread").distinct().count() == 62


def test_assigning_twice_at_once_fills_each_slot_once():
    lead, alice, bob, carol = (make_user(n) for n in ("lead", "alice", "bob", "carol"))
    project = make_sampled_project(admin=lead, annotators=[alice], threads=40, k=2)
    project.memberships.create(user=bob, role="annotator")
    project.memberships.create(user=carol, role="annotator")

    errors = _in_threads(lambda: assign_units(project), lambda: assign_units(project))

    assert errors == []
    per_unit = Unit.objects.filter(project=project).annotate(
        n=Count("assignments", filter=Q(assignments__status__in=("pending", "done")))
    )
    assert set(per_unit.values_list("n", flat=True)) == {2}
    assert Assignment.objects.filter(unit__project=project).count() == 80
