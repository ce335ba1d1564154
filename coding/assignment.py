"""Who codes which unit: the annotators' queues."""

from __future__ import annotations

from .models import Assignment, Project, Unit


def next_unit_for(project: Project, user) -> Unit | None:
    """The user's next unit to code in this project: their oldest pending assignment."""
    assignment = (
        Assignment.objects.filter(
            unit__project=project, coder=user, status=Assignment.Status.PENDING
        )
        .select_related("unit")
        .order_by("unit__round__order", "unit__position", "unit_id")
        .first()
    )
    return assignment.unit if assignment else None
