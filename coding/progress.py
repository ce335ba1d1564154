"""Coding progress counted in SQL: per project, per annotator, per round, today.

"Assigned" counts a coder's active assignments (to do or done); units returned by a
coder who left count for whoever took them over. "Today" is since midnight UTC.
Every function is one query, whatever the size of the project.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from .models import Assignment, Membership, Project, Round

DONE = Assignment.Status.DONE
PENDING = Assignment.Status.PENDING


def start_of_today() -> datetime:
    return datetime.combine(timezone.now().astimezone(UTC).date(), time.min, tzinfo=UTC)


def _counts(prefix: str, extra: Q | None = None) -> dict[str, Count]:
    """assigned / done / today counts over the assignments reached through ``prefix``."""
    active = Q(**{f"{prefix}status__in": (PENDING, DONE)})
    done = Q(**{f"{prefix}status": DONE})
    today = done & Q(**{f"{prefix}completed_at__gte": start_of_today()})
    if extra is not None:
        active, done, today = active & extra, done & extra, today & extra
    field = prefix.rstrip("_") or "id"
    return {
        "assigned": Count(field, filter=active, distinct=True),
        "done": Count(field, filter=done, distinct=True),
        "done_today": Count(field, filter=today, distinct=True),
    }


def project_totals(project: Project) -> dict[str, int]:
    """Units, assignments assigned/done/today and units fully coded, in one query."""
    return Project.objects.filter(pk=project.pk).aggregate(
        unit_count=Count("units", distinct=True),
        **_counts("units__assignments__"),
    )


def annotators_progress(project: Project) -> QuerySet[Membership]:
    """Each member with their own assigned / done / done today in this project."""
    own = Q(user__assignments__unit__project=project)
    return (
        Membership.objects.filter(project=project)
        .select_related("user")
        .annotate(**_counts("user__assignments__", own))
        .order_by("role", "user__username")
    )


def rounds_progress(project: Project, coder=None) -> QuerySet[Round]:
    """Each round with its units and assignments assigned / done / today.

    With ``coder``, only that coder's assignments are counted (an annotator's view).
    """
    extra = Q(units__assignments__coder=coder) if coder is not None else None
    return (
        Round.objects.filter(project=project)
        .annotate(
            unit_count=Count("units", distinct=True), **_counts("units__assignments__", extra)
        )
        .order_by("order", "id")
    )


def memberships_with_progress(user) -> QuerySet[Membership]:
    """The user's projects with the whole project's and the user's own progress."""
    mine = Q(project__units__assignments__coder_id=F("user_id"))
    totals = _counts("project__units__assignments__")
    own = {
        f"own_{key}": value for key, value in _counts("project__units__assignments__", mine).items()
    }
    return (
        Membership.objects.filter(user=user)
        .select_related("project", "project__codebook_version__codebook")
        .annotate(unit_count=Count("project__units", distinct=True), **totals, **own)
        .order_by("project__name")
    )


def coder_totals(project: Project, user) -> dict[str, int]:
    """One coder's assigned / done / done today in this project."""
    return Assignment.objects.filter(unit__project=project, coder=user).aggregate(**_counts(""))


def open_slots(project: Project) -> int:
    """Coder slots the sample still needs filled (shared units need K coders, others one)."""
    k = max(1, project.coders_per_unit)
    figures = Project.objects.filter(pk=project.pk).aggregate(
        shared=Count("units", filter=Q(units__shared=True), distinct=True),
        single=Count("units", filter=Q(units__shared=False), distinct=True),
        active=Count(
            "units__assignments",
            filter=Q(units__assignments__status__in=(PENDING, DONE)),
            distinct=True,
        ),
    )
    return max(0, figures["shared"] * k + figures["single"] - figures["active"])
