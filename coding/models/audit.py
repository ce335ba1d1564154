"""The audit log: who signed in, imported, changed a codebook, adjudicated or exported."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        SIGN_IN = "sign_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        IMPORT = "import", "Started an import"
        CODEBOOK = "codebook", "Changed a codebook"
        ADJUDICATE = "adjudicate", "Adjudicated"
        EXPORT = "export", "Exported"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(
        max_length=150, blank=True, help_text="As given; kept for failed sign-ins."
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    project = models.ForeignKey(
        "coding.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["project", "-at"], name="audit_project_at")]

    def __str__(self) -> str:
        who = self.username or "-"
        return f"{who} {self.action} {self.object_repr} at {self.at:%Y-%m-%d %H:%M}"
