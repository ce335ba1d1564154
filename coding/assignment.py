"""Who codes which unit: balanced assignment, reassignment and the annotators' queues.

A shared unit needs ``coders_per_unit`` distinct coders, any other unit one. Units are
handed out in sample order, each to the annotators with the fewest assignments so far,
so annotators' loads differ by at most one when they start level. Coders never learn
which units are shared.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q

from . import statements
from .models import Assignment, Membership, Project, Role, Unit

ACTIVE = (Assignment.Status.PENDING, Assignment.Status.DONE)


class AssignmentError(ValueError):
    """An assignment change that cannot be made; the message says why."""


_NEXT_UNIT = f"""
SELECT unit_id FROM coding_assignment
WHERE coder_id = %s AND project_id = %s AND status = '{Assignment.Status.PENDING}'
ORDER BY queue_rank, unit_id
LIMIT 1
"""  # noqa: S608


def next_unit_id(project: Project, user) -> int | None:
    """The id of the user's next unit to code in this project: their first pending
    assignment by round, then position in the round (one statement)."""
    row = statements.one(_NEXT_UNIT, [user.pk, project.pk])
    return row[0] if row else None


def next_unit_for(project: Project, user) -> Unit | None:
    """The user's next unit to code in this project: their first pending assignment."""
    unit_id = next_unit_id(project, user)
    return None if unit_id is None else Unit.objects.get(pk=unit_id)


def annotator_ids(project: Project) -> list[int]:
    return list(
        Membership.objects.filter(project=project, role=Role.ANNOTATOR)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def _loads(project: Project, coders: list[int]) -> dict[int, int]:
    counts = dict(
        Assignment.objects.filter(unit__project=project, coder_id__in=coders, status__in=ACTIVE)
        .values("coder_id")
        .annotate(n=Count("id"))
        .values_list("coder_id", "n")
    )
    return {coder: counts.get(coder, 0) for coder in coders}


@dataclass(frozen=True)
class AssignResult:
    assigned: int
    short: int  # coder slots that could not be filled: too few annotators
    returned: int = 0  # a removed member's unfinished units, handed back
    closed: bool = False  # the project was closed: nothing was handed to anyone


CLOSED = "the project is closed for coding; its units are no longer assigned"


def lock_open_project(project_id: int) -> bool:
    """Lock the project's row (every change of its units and assignments does, first, so
    two never wait on each other in opposite orders); whether it is still open."""
    status = (
        Project.objects.select_for_update()
        .filter(pk=project_id)
        .values_list("status", flat=True)
        .first()
    )
    return status == Project.Status.OPEN


@transaction.atomic
def assign_units(project: Project) -> AssignResult:
    """Give every unit of the project the coders it still lacks, keeping loads balanced.

    1. Lock the project; count each annotator's active assignments and each unit's
       active coders.
    2. Walk the units in sample order; a unit short of coders gets the least-loaded
       annotators who are not yet on it (ties broken by a seeded shuffle).
    3. Write the new assignments in bulk; a coder who had returned the unit gets it back.
    """
    # One assigner at a time per project: concurrent runs would both fill the same slots.
    if not lock_open_project(project.pk):
        raise AssignmentError(CLOSED)
    coders = annotator_ids(project)
    loads = _loads(project, coders)
    tiebreak = {coder: i for i, coder in enumerate(_shuffled(coders, project.seed))}
    units = list(
        Unit.objects.filter(project=project)
        .annotate(active=Count("assignments", filter=Q(assignments__status__in=ACTIVE)))
        .order_by("round__order", "position", "id")
        .values_list("id", "shared", "active")
    )
    k = max(1, project.coders_per_unit)
    needy = {uid: (k if shared else 1) - active for uid, shared, active in units}
    needy = {uid: need for uid, need in needy.items() if need > 0}
    if not needy:
        return AssignResult(0, 0)
    existing: dict[int, dict[int, tuple[str, int]]] = {}
    rows = Assignment.objects.filter(unit__project=project).values_list(
        "unit_id", "coder_id", "status", "id"
    )
    for unit_id, coder_id, status, pk in rows:
        if unit_id in needy:
            existing.setdefault(unit_id, {})[coder_id] = (status, pk)
    new: list[Assignment] = []
    revive: list[int] = []
    short = 0
    for unit_id, need in needy.items():
        on_unit = existing.get(unit_id, {})
        free = [c for c in coders if on_unit.get(c, ("",))[0] not in ACTIVE]
        free.sort(key=lambda c: (loads[c], tiebreak[c]))
        chosen = free[:need]
        short += need - len(chosen)
        for coder in chosen:
            loads[coder] += 1
            if coder in on_unit:
                revive.append(on_unit[coder][1])
            else:
                new.append(Assignment(unit_id=unit_id, coder_id=coder))
    Assignment.objects.bulk_create(new, batch_size=1000)
    for start in range(0, len(revive), 500):
        Assignment.objects.filter(pk__in=revive[start : start + 500]).update(
            status=Assignment.Status.PENDING, completed_at=None
        )
    return AssignResult(len(new) + len(revive), short)


def _shuffled(items: list[int], seed: int) -> list[int]:
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    return shuffled


@transaction.atomic
def remove_member(project: Project, user) -> AssignResult:
    """Take ``user`` off the project: their unfinished units go to the others.

    Finished assignments and all codings stay; pending assignments are marked returned
    and handed to the remaining annotators, keeping loads balanced. The last admin
    cannot be removed.
    """
    still_open = lock_open_project(project.pk)
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None:
        raise AssignmentError(f"{user} is not a member of {project}")
    if membership.role == Role.ADMIN and (
        Membership.objects.filter(project=project, role=Role.ADMIN).count() == 1
    ):
        raise AssignmentError("a project needs at least one admin; add another admin first")
    returned = Assignment.objects.filter(
        unit__project=project, coder=user, status=Assignment.Status.PENDING
    ).update(status=Assignment.Status.RETURNED)
    membership.delete()
    # A closed project's units are not coded any more: nobody takes the returned ones.
    result = assign_units(project) if still_open else AssignResult(0, 0, closed=True)
    return dataclasses.replace(result, returned=returned)


@transaction.atomic
def reassign(unit: Unit, from_coder, to_coder) -> Assignment:
    """Move one pending unit from one coder to another annotator of the project.

    The project's row is locked first, as every change of its assignments does, so two
    such changes (and the queue counts their triggers keep) never wait on each other in
    opposite orders."""
    if not lock_open_project(unit.project_id):
        raise AssignmentError(CLOSED)
    current = (
        Assignment.objects.select_for_update()
        .filter(unit=unit, coder=from_coder, status=Assignment.Status.PENDING)
        .first()
    )
    if current is None:
        raise AssignmentError(f"{from_coder} has no unfinished assignment of this unit")
    if not Membership.objects.filter(
        project_id=unit.project_id, user=to_coder, role=Role.ANNOTATOR
    ).exists():
        raise AssignmentError(f"{to_coder} is not an annotator of this project")
    target = Assignment.objects.filter(unit=unit, coder=to_coder).first()
    if target is not None and target.status in ACTIVE:
        raise AssignmentError(f"{to_coder} already has this unit")
    current.status = Assignment.Status.RETURNED
    current.save(update_fields=["status"])
    if target is None:
        return Assignment.objects.create(unit=unit, coder=to_coder)
    target.status = Assignment.Status.PENDING
    target.completed_at = None
    target.save(update_fields=["status", "completed_at"])
    return target


def add_assignments(pairs) -> None:
    """Create the (unit id, coder id) assignments that do not exist yet, pending, in bulk:
    an import writes thousands at once, and the queue counts are kept once per statement."""
    Assignment.objects.bulk_create(
        (Assignment(unit_id=unit_id, coder_id=coder_id) for unit_id, coder_id in sorted(pairs)),
        batch_size=1000,
        ignore_conflicts=True,
    )


def complete_assignments(pairs, now) -> None:
    """Mark the existing (unit id, coder id) assignments done at ``now``, a few hundred
    per statement; one that is done already keeps its time."""
    units_of: dict[int, list[int]] = {}
    for unit_id, coder_id in sorted(pairs):
        units_of.setdefault(coder_id, []).append(unit_id)
    for coder_id in sorted(units_of):  # count rows locked in key order, as the triggers do
        unit_ids = units_of[coder_id]
        for start in range(0, len(unit_ids), 500):
            Assignment.objects.filter(
                coder_id=coder_id, unit_id__in=unit_ids[start : start + 500]
            ).exclude(status=Assignment.Status.DONE).update(
                status=Assignment.Status.DONE, completed_at=now
            )
