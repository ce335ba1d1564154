"""Coding progress counted in SQL: per project, per annotator, per round, today.

"Assigned" counts a coder's active assignments (to do or done); units returned by a
coder who left count for whoever took them over. "Today" is since midnight UTC.

The database does the counting in one GROUP BY over the project's assignments (by
coder and round) and one over its units (by round); what Python adds up afterwards are
those few groups, never the rows. A fixed handful of queries, whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from .models import Assignment, Membership, Project, Round, Unit

DONE = Assignment.Status.DONE
PENDING = Assignment.Status.PENDING


def start_of_today() -> datetime:
    return datetime.combine(timezone.now().astimezone(UTC).date(), time.min, tzinfo=UTC)


def _counts() -> dict[str, Count]:
    done = Q(status=DONE)
    return {
        "assigned": Count("id", filter=Q(status__in=(PENDING, DONE))),
        "done": Count("id", filter=done),
        "done_today": Count("id", filter=done & Q(completed_at__gte=start_of_today())),
    }


@dataclass
class Figures:
    assigned: int = 0
    done: int = 0
    done_today: int = 0

    def add(self, group: dict) -> None:
        self.assigned += group["assigned"]
        self.done += group["done"]
        self.done_today += group["done_today"]


def _sum(groups: Iterable[dict]) -> Figures:
    figures = Figures()
    for group in groups:
        figures.add(group)
    return figures


def _attach(obj, figures: Figures, prefix: str = "") -> None:
    for name in ("assigned", "done", "done_today"):
        setattr(obj, prefix + name, getattr(figures, name))


@dataclass
class ProjectProgress:
    """A project's figures: totals, per member and per round (all members' or one's)."""

    unit_count: int
    shared_count: int
    totals: Figures
    members: list[Membership]
    rounds: list[Round]
    open_slots: int
    # Coders taken off the project whose finished units still count in the totals.
    former: list = field(default_factory=list)


def project_progress(project: Project, coder=None) -> ProjectProgress:
    """Totals, members and rounds with their figures, in four queries (five when coders
    taken off the project still have finished units).

    With ``coder``, only that coder's assignments are counted and no other member is
    listed (an annotator's view). Open slots: shared units need ``coders_per_unit``
    coders, the others one; slots no annotator holds are open.
    """
    assignments = Assignment.objects.filter(unit__project=project)
    if coder is not None:
        assignments = assignments.filter(coder=coder)
    groups = list(
        assignments.order_by()
        .values("coder_id", "unit__round_id")
        .annotate(**_counts())
        .values("coder_id", "unit__round_id", "assigned", "done", "done_today")
    )
    units = list(
        Unit.objects.filter(project=project)
        .order_by()
        .values("round_id")
        .annotate(n=Count("id"), shared=Count("id", filter=Q(shared=True)))
    )
    members = Membership.objects.filter(project=project).select_related("user")
    if coder is not None:
        members = members.filter(user=coder)
    members = list(members.order_by("role", "user__username"))
    for member in members:
        _attach(member, _sum(g for g in groups if g["coder_id"] == member.user_id))
    current = {m.user_id for m in members}
    gone = {g["coder_id"] for g in groups if g["assigned"]} - current if coder is None else set()
    former = list(get_user_model().objects.filter(pk__in=gone).order_by("username"))
    for user in former:
        _attach(user, _sum(g for g in groups if g["coder_id"] == user.pk))
    rounds = list(Round.objects.filter(project=project).order_by("order", "id"))
    units_in = {u["round_id"]: u["n"] for u in units}
    for round_ in rounds:
        round_.unit_count = units_in.get(round_.pk, 0)
        _attach(round_, _sum(g for g in groups if g["unit__round_id"] == round_.pk))
    totals = _sum(groups)
    unit_count = sum(u["n"] for u in units)
    shared_count = sum(u["shared"] for u in units)
    needed = shared_count * max(1, project.coders_per_unit) + unit_count - shared_count
    return ProjectProgress(
        unit_count=unit_count,
        shared_count=shared_count,
        totals=totals,
        members=members,
        rounds=rounds,
        open_slots=(
            0
            if coder is not None or project.status != Project.Status.OPEN
            else max(0, needed - totals.assigned)
        ),
        former=former,
    )


def memberships_with_progress(user) -> list[Membership]:
    """The user's projects, each with the project's and the user's own figures.

    Three queries: the memberships, one GROUP BY over their projects' assignments and
    one over their units.
    """
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("project", "project__codebook_version__codebook")
        .order_by("project__name")
    )
    projects = [m.project_id for m in memberships]
    groups = list(
        Assignment.objects.filter(unit__project__in=projects)
        .order_by()
        .values("unit__project_id")
        .annotate(
            **_counts(),
            **{
                f"own_{name}": Count("id", filter=count.filter & Q(coder=user))
                for name, count in _counts().items()
            },
        )
    )
    units = dict(
        Unit.objects.filter(project__in=projects)
        .order_by()
        .values("project_id")
        .annotate(n=Count("id"))
        .values_list("project_id", "n")
    )
    by_project = {g["unit__project_id"]: g for g in groups}
    for membership in memberships:
        group = by_project.get(membership.project_id, {})
        membership.unit_count = units.get(membership.project_id, 0)
        for name in ("assigned", "done", "done_today"):
            setattr(membership, name, group.get(name, 0))
            setattr(membership, f"own_{name}", group.get(f"own_{name}", 0))
    return memberships
