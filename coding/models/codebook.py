"""Codebooks: named, versioned trees of codes.

A version is an immutable snapshot of the whole tree once published; editing creates
a new version. A code keeps its identity across versions through its ``key``; renames
keep the key, while moves, merges and splits are recorded as ``CodeMapping`` rows from
the old version's keys to the new version's keys, so codings made against an old
version can be read in a new one without being rewritten.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Codebook(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def latest_version(self) -> CodebookVersion | None:
        return self.versions.order_by("-number").first()


class CodebookVersion(models.Model):
    codebook = models.ForeignKey(Codebook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    note = models.TextField(blank=True, help_text="What changed in this version.")
    changes = models.JSONField(
        default=list, blank=True, help_text="Structured list of the edits since the parent."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["codebook", "number"]
        constraints = [
            models.UniqueConstraint(fields=["codebook", "number"], name="unique_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.codebook.name} v{self.number}"


class Code(models.Model):
    """One node of a version's tree (group, category, subcategory, any depth)."""

    version = models.ForeignKey(CodebookVersion, on_delete=models.CASCADE, related_name="codes")
    key = models.CharField(max_length=100, help_text="Stable identity across versions.")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    name = models.CharField(max_length=300)
    definition = models.TextField(blank=True)
    when_to_use = models.TextField(blank=True)
    when_not_to_use = models.TextField(blank=True)
    examples = models.JSONField(
        default=list, blank=True, help_text='List of {"text": ..., "post_id": ... or null}.'
    )
    color = models.CharField(max_length=7, blank=True, help_text="#rrggbb")
    shortcut = models.CharField(max_length=1, blank=True)
    order = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    codable = models.BooleanField(
        default=True, help_text="Leaves are codable; a parent only when an admin allows it."
    )

    class Meta:
        ordering = ["version", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="unique_code_key"),
            models.UniqueConstraint(
                fields=["version", "shortcut"],
                condition=~Q(shortcut=""),
                name="unique_code_shortcut",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CodeMapping(models.Model):
    """How a code of one version maps to codes of the next (move, merge, split, remove)."""

    class Kind(models.TextChoices):
        RENAME = "rename", "Rename"
        MOVE = "move", "Move"
        MERGE = "merge", "Merge"
        SPLIT = "split", "Split"
        REMOVE = "remove", "Deactivate"

    from_version = models.ForeignKey(
        CodebookVersion, on_delete=models.CASCADE, related_name="mappings_out"
    )
    to_version = models.ForeignKey(
        CodebookVersion, on_delete=models.CASCADE, related_name="mappings_in"
    )
    old_key = models.CharField(max_length=100)
    new_key = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)

    class Meta:
        ordering = ["to_version", "old_key", "new_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_version", "to_version", "old_key", "new_key"],
                name="unique_code_mapping",
            )
        ]

    def __str__(self) -> str:
        return f"{self.old_key} -> {self.new_key or '∅'} ({self.kind})"


class ProjectUpgrade(models.Model):
    """A project moved from one codebook version to a newer one: who, when, what changed."""

    project = models.ForeignKey(
        "coding.Project", on_delete=models.CASCADE, related_name="codebook_upgrades"
    )
    from_version = models.ForeignKey(
        CodebookVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_version = models.ForeignKey(CodebookVersion, on_delete=models.PROTECT, related_name="+")
    upgraded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    upgraded_at = models.DateTimeField(auto_now_add=True)
    summary = models.JSONField(
        default=list, blank=True, help_text="The mapped codes and how many codings each touches."
    )

    class Meta:
        ordering = ["project", "-upgraded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.project} to {self.to_version}"
