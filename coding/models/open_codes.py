"""Open coding: coders' free-text codes, the affinity board that groups them, and what the
board becomes (a codebook whose codes keep a mapping from every open code, and provisional
closed codes for the open-coded units).

Open codes belong to a ``Coding`` and are saved through the same revision-checked save, so
they share its queue, blindness, history and concurrency rules. The board never rewrites
them: a card stands for one normalized text, and merges and renames happen on cards.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OpenCode(models.Model):
    """One free-text code a coder wrote for a unit."""

    coding = models.ForeignKey("coding.Coding", on_delete=models.CASCADE, related_name="open_codes")
    text = models.CharField(max_length=300)
    normalized = models.CharField(max_length=300, db_index=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["coding", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["coding", "normalized"], name="unique_open_code")
        ]

    def __str__(self) -> str:
        return self.text


class OpenCodeQuote(models.Model):
    """Evidence for an open code: code points [start, end) of a post's plain text."""

    open_code = models.ForeignKey(OpenCode, on_delete=models.CASCADE, related_name="quotes")
    post = models.ForeignKey("coding.Post", on_delete=models.PROTECT, related_name="+")
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["open_code", "post", "start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="open_quote_span"
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]


class BoardGroup(models.Model):
    """A group (or, with a parent, a subgroup) on a project's affinity board."""

    project = models.ForeignKey(
        "coding.Project", on_delete=models.CASCADE, related_name="board_groups"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    name = models.CharField(max_length=200)
    definition = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "order", "id"]

    def __str__(self) -> str:
        return self.name


class BoardCard(models.Model):
    """One distinct open code (by normalized text) on the board, placed in a group or not.

    ``label`` is the name shown and carried into the codebook; a merged card points at the
    card it was merged into and its open codes count there.
    """

    project = models.ForeignKey(
        "coding.Project", on_delete=models.CASCADE, related_name="board_cards"
    )
    normalized = models.CharField(max_length=300)
    label = models.CharField(max_length=300)
    group = models.ForeignKey(
        BoardGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="cards"
    )
    merged_into = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="merged"
    )
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "normalized"], name="unique_board_card")
        ]

    def __str__(self) -> str:
        return self.label


class BoardEvent(models.Model):
    """One change on the board: who, when, what, the state before and after."""

    project = models.ForeignKey(
        "coding.Project", on_delete=models.CASCADE, related_name="board_events"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=30)
    summary = models.CharField(max_length=500)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-at", "-id"]

    def __str__(self) -> str:
        return self.summary


class OpenCodeMapping(models.Model):
    """Which code of a codebook version an open code (normalized text) became."""

    project = models.ForeignKey(
        "coding.Project", on_delete=models.CASCADE, related_name="open_code_mappings"
    )
    version = models.ForeignKey(
        "coding.CodebookVersion", on_delete=models.CASCADE, related_name="open_code_mappings"
    )
    normalized = models.CharField(max_length=300)
    code = models.ForeignKey("coding.Code", on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=1000, help_text="Group path, ' > ' between levels.")

    class Meta:
        ordering = ["project", "version", "path", "normalized"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "version", "normalized"], name="unique_open_code_mapping"
            )
        ]

    def __str__(self) -> str:
        return f"{self.normalized} -> {self.path}"


class ProvisionalCode(models.Model):
    """A closed code a unit gets from its open codes through the mapping, for review.

    Coders' codings are left as they are; an accepted provisional code is an admin's
    decision and only then becomes part of the unit's gold label.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "To review"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    unit = models.ForeignKey("coding.Unit", on_delete=models.CASCADE, related_name="provisional")
    version = models.ForeignKey(
        "coding.CodebookVersion", on_delete=models.CASCADE, related_name="+"
    )
    code = models.ForeignKey("coding.Code", on_delete=models.CASCADE, related_name="+")
    sources = models.JSONField(default=list, help_text="The open codes it comes from.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["unit", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "version", "code"], name="unique_provisional_code"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} for {self.unit}"
