"""Projects, their members, rounds, units and assignments."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Project admin"
    ANNOTATOR = "annotator", "Annotator"


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user) -> ProjectQuerySet:
        """Projects the user is a member of, in any role."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user).distinct()


class Project(models.Model):
    """A coding study: a pinned codebook version, a corpus selection, members and units."""

    class UnitType(models.TextChoices):
        THREAD = "thread", "Thread"
        POST = "post", "Single post"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class CodingMode(models.TextChoices):
        CLOSED = "closed", "Codebook codes"
        OPEN = "open", "Open codes (free text)"
        BOTH = "both", "Codebook and open codes"

    class OpenAutocomplete(models.TextChoices):
        OWN = "own", "The coder's own open codes"
        PROJECT = "project", "Every open code used in the project"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    codebook_version = models.ForeignKey(
        "coding.CodebookVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="projects",
    )
    unit_type = models.CharField(max_length=10, choices=UnitType.choices, default=UnitType.THREAD)
    selection = models.JSONField(
        default=dict,
        blank=True,
        help_text="Corpus filter: sources, categories, tags, created window, accepted answer.",
    )
    coders_per_unit = models.PositiveSmallIntegerField(default=2)
    overlap = models.FloatField(
        default=1.0, help_text="Share of units coded by coders_per_unit coders; the rest by one."
    )
    seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    coding_mode = models.CharField(
        max_length=10, choices=CodingMode.choices, default=CodingMode.CLOSED
    )
    open_autocomplete = models.CharField(
        max_length=10,
        choices=OpenAutocomplete.choices,
        default=OpenAutocomplete.OWN,
        help_text=(
            "Open-code suggestions from the coder's own codes only, or from every code used "
            "in the project (coders then see the texts others wrote, though not where)."
        ),
    )
    reports_visible_to_annotators = models.BooleanField(
        default=False,
        help_text="Annotators may read the reports (only once every unit has a gold label).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def role_of(self, user) -> str | None:
        """The user's role here, or None for an outsider."""
        if not user.is_authenticated:
            return None
        # No ORDER BY: (project, user) is unique, and Meta.ordering would join two tables.
        roles = self.memberships.filter(user=user).order_by().values_list("role", flat=True)
        return next(iter(roles[:1]), None)


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Round(models.Model):
    """A named batch of units (calibration, main, ...), read separately for agreement."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    name = models.CharField(max_length=100)
    order = models.PositiveIntegerField(default=0)
    seed = models.BigIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True, help_text="How the sample was drawn.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_round_name")
        ]

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    """A sampled thread (or single post) of a project: what codings, gold labels speak of."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="units")
    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="units")
    thread = models.ForeignKey("coding.Thread", on_delete=models.PROTECT, related_name="+")
    post = models.ForeignKey(
        "coding.Post", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    position = models.PositiveIntegerField(default=0, help_text="Order within the sample.")
    shared = models.BooleanField(
        default=True, help_text="Coded by coders_per_unit coders (never shown to coders)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "thread"],
                condition=models.Q(post__isnull=True),
                name="unique_thread_unit",
            ),
            models.UniqueConstraint(
                fields=["project", "post"],
                condition=models.Q(post__isnull=False),
                name="unique_post_unit",
            ),
        ]

    def __str__(self) -> str:
        return f"unit {self.pk}"


def queue_rank(round_order: int, position: int) -> int:
    """A unit's place in every coder's queue: by round, then position in the round."""
    return round_order * 2**31 + position


class AssignmentQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """As Django's, filling each assignment's project and queue rank from its unit."""
        objs = list(objs)
        missing = sorted({a.unit_id for a in objs if a.project_id is None or a.queue_rank is None})
        places = {}
        for start in range(0, len(missing), 5000):
            places.update(
                (pk, (project_id, queue_rank(order, position)))
                for pk, project_id, order, position in Unit.objects.filter(
                    pk__in=missing[start : start + 5000]
                )
                .order_by()
                .values_list("pk", "project_id", "round__order", "position")
            )
        for assignment in objs:
            if assignment.unit_id in places:
                assignment.project_id, assignment.queue_rank = places[assignment.unit_id]
        return super().bulk_create(objs, *args, **kwargs)


class Assignment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "To do"
        DONE = "done", "Done"
        RETURNED = "returned", "Returned for reassignment"

    # Unit and coder each lead an index below (unique_assignment, assignment_queue), so
    # neither needs one of its own: every save of a coding updates its assignment's
    # status, and each index is one more write.
    unit = models.ForeignKey(
        Unit, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    coder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="assignments",
        db_index=False,
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    assigned_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The unit's project and place in the queue, copied from the unit (neither changes
    # once a unit exists), so a coder's next unit and progress are one index range.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", editable=False)
    queue_rank = models.BigIntegerField(editable=False)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["unit", "coder"]
        constraints = [models.UniqueConstraint(fields=["unit", "coder"], name="unique_assignment")]
        indexes = [
            models.Index(fields=["coder", "status"], name="assignment_queue"),
            models.Index(
                fields=["coder", "project", "status", "queue_rank", "unit"],
                name="assignment_next",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coder} on {self.unit}"

    def save(self, *args, **kwargs) -> None:
        if self.project_id is None or self.queue_rank is None:
            unit = (
                Unit.objects.filter(pk=self.unit_id)
                .order_by()
                .values_list("project_id", "round__order", "position")
                .get()
            )
            self.project_id, self.queue_rank = unit[0], queue_rank(unit[1], unit[2])
        super().save(*args, **kwargs)


class QueueCount(models.Model):
    """A coder's queue in a project counted: units assigned (not returned) and done.

    Database triggers on the assignments table (migration 0011; on PostgreSQL once per
    statement, migration 0014) keep these rows right
    whatever writes an assignment (the ORM, bulk inserts, the coding screen's fixed
    statements, cascading deletes), so the coding screen reads its progress from one
    row instead of counting the coder's queue on every page. Plain ids, no foreign
    keys: a deleted project's rows count nothing and are never read.
    """

    project_id = models.BigIntegerField()
    coder_id = models.BigIntegerField()
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project_id", "coder_id"], name="unique_queue_count")
        ]

    def __str__(self) -> str:
        return f"coder {self.coder_id} in project {self.project_id}: {self.done}/{self.total}"
