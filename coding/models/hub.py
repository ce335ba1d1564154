"""Hugging Face Hub model metadata, and how model-type names are read in forum text.

The study compared what the forum talks about with what the Hub receives: per model type
and month, forum threads mentioning the type and Hub models created with it. Hub imports
record their progress in ``ImportRun`` (kind ``hub``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class HubModel(models.Model):
    """One model repository on the Hub, as its listing describes it."""

    repo_id = models.CharField(max_length=300, unique=True, help_text="owner/name on the Hub.")
    author = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="Empty when the Hub does not know it."
    )
    last_modified = models.DateTimeField(null=True, blank=True)
    pipeline_tag = models.CharField(max_length=100, blank=True)
    library = models.CharField(max_length=100, blank=True)
    model_type = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="config.model_type"
    )
    tags = models.JSONField(default=list, blank=True)
    has_card_data = models.BooleanField(default=False)
    downloads = models.PositiveBigIntegerField(default=0)
    likes = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["repo_id"]
        indexes = [models.Index(fields=["model_type", "created_at"], name="hub_type_created")]

    def __str__(self) -> str:
        return self.repo_id


class ModelTypeRule(models.Model):
    """A reviewer's decision on how a model-type name is read in forum text.

    Names that are also ordinary words (``opt``, ``git``, ``clip``) are ambiguous: a
    reviewer either keeps counting them, excludes them, or maps them to another type.
    """

    class Action(models.TextChoices):
        COUNT = "count", "Count as this type"
        EXCLUDE = "exclude", "Exclude"
        MAP = "map", "Count as another type"

    name = models.CharField(max_length=100, unique=True)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.COUNT)
    maps_to = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=500, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(action="map") | ~models.Q(maps_to=""),
                name="model_type_rule_map_has_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.get_action_display()}"
