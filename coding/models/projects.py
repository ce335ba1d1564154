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


class Assignment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "To do"
        DONE = "done", "Done"
        RETURNED = "returned", "Returned for reassignment"

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="assignments")
    coder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    assigned_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["unit", "coder"]
        constraints = [models.UniqueConstraint(fields=["unit", "coder"], name="unique_assignment")]
        indexes = [models.Index(fields=["coder", "status"], name="assignment_queue")]

    def __str__(self) -> str:
        return f"{self.coder} on {self.unit}"
