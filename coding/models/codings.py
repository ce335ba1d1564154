"""Codings (one coder's codes for one unit) and gold labels (an admin's decision).

Coders' codings are never rewritten by codebook upgrades or adjudication: gold labels
are stored beside them. Every change to either is kept as an event with before/after.
``revision`` counts saves, so a save based on an older revision is refused as a
conflict instead of silently overwriting.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Coding(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    # Unit and coder each lead an index below (unique_coding, coding_coder_status), so
    # neither needs one of its own.
    unit = models.ForeignKey(
        "coding.Unit", on_delete=models.CASCADE, related_name="codings", db_index=False
    )
    coder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="codings", db_index=False
    )
    codebook_version = models.ForeignKey(
        "coding.CodebookVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for open coding in a project without a codebook.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    not_relevant = models.BooleanField(default=False)
    unsure = models.BooleanField(default=False)
    memo = models.TextField(blank=True)
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["unit", "coder"]
        constraints = [models.UniqueConstraint(fields=["unit", "coder"], name="unique_coding")]
        indexes = [models.Index(fields=["coder", "status"], name="coding_coder_status")]

    def __str__(self) -> str:
        return f"{self.coder} on {self.unit}"


class CodeApplication(models.Model):
    # The coding leads the unique index below, so it needs no index of its own.
    coding = models.ForeignKey(
        Coding, on_delete=models.CASCADE, related_name="applications", db_index=False
    )
    code = models.ForeignKey("coding.Code", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["coding", "code"]
        constraints = [
            models.UniqueConstraint(fields=["coding", "code"], name="unique_code_application")
        ]

    def __str__(self) -> str:
        return f"{self.code} in {self.coding}"


class Quote(models.Model):
    """Evidence for a code: code points [start, end) of a post's plain text."""

    application = models.ForeignKey(
        CodeApplication, on_delete=models.CASCADE, related_name="quotes"
    )
    post = models.ForeignKey("coding.Post", on_delete=models.PROTECT, related_name="+")
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["application", "post", "start"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="quote_span")
        ]

    def __str__(self) -> str:
        return self.text[:60]


class CodingEvent(models.Model):
    """One change to a coding: who, when, the state before and after."""

    coding = models.ForeignKey(Coding, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=30)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["coding", "at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.user} at {self.at:%Y-%m-%d %H:%M}"


class GoldLabel(models.Model):
    """An admin's decision for a unit; reports and exports prefer it where it exists."""

    class Rule(models.TextChoices):
        UNANIMOUS = "unanimous", "All coders agreed"
        SINGLE = "single", "Single coder"
        UNION = "union", "Union"
        INTERSECTION = "intersection", "Intersection"
        MAJORITY = "majority", "Majority"
        MANUAL = "manual", "Manual"

    unit = models.OneToOneField("coding.Unit", on_delete=models.CASCADE, related_name="gold")
    codebook_version = models.ForeignKey(
        "coding.CodebookVersion", on_delete=models.PROTECT, related_name="+"
    )
    codes = models.ManyToManyField("coding.Code", blank=True, related_name="+")
    not_relevant = models.BooleanField(default=False)
    rule = models.CharField(max_length=20, choices=Rule.choices)
    rationale = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now=True)
    is_open = models.BooleanField(default=False, help_text="Re-opened for a new decision.")
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["unit"]

    def __str__(self) -> str:
        return f"gold for {self.unit}"


class GoldEvent(models.Model):
    gold = models.ForeignKey(GoldLabel, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=30)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["gold", "at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.user} at {self.at:%Y-%m-%d %H:%M}"


class ExampleProposal(models.Model):
    """A coder's quote an admin proposed, during adjudication, as an example of a code.

    It enters the codebook (as a new version) only when the project closes, so no coder
    of a running project learns from another coder's work.
    """

    project = models.ForeignKey(
        "coding.Project", on_delete=models.CASCADE, related_name="example_proposals"
    )
    code_key = models.CharField(max_length=100)
    text = models.TextField()
    post = models.ForeignKey(
        "coding.Post", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(auto_now_add=True)
    applied_version = models.ForeignKey(
        "coding.CodebookVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["project", "proposed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "code_key", "text"], name="unique_example_proposal"
            )
        ]

    def __str__(self) -> str:
        return f"example for {self.code_key}: {self.text[:40]}"
