"""Writing the audit log: one call where an import starts, a codebook changes, a unit is
adjudicated or a project is exported, and signal receivers for sign-ins."""

from __future__ import annotations

import json

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.serializers.json import DjangoJSONEncoder
from django.dispatch import receiver
from django.http import HttpRequest

from .models import AuditEvent, Project

Action = AuditEvent.Action


def _project_of(obj) -> Project | None:
    if isinstance(obj, Project):
        return obj
    project = getattr(obj, "project", None)
    return project if isinstance(project, Project) else None


def _text(value):
    """JSON-ready ``value`` with NUL characters replaced: PostgreSQL refuses to store them."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_text(key): _text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_text(item) for item in value]
    return value


def record(request_or_user, action: str, obj=None, **detail) -> AuditEvent:
    """Log ``action`` on ``obj`` by the request's user (or the given user, or nobody).

    ``detail`` holds what else an admin needs to read the entry (a format, a file name,
    a count); values that are not JSON are stored as text.
    """
    request = request_or_user if isinstance(request_or_user, HttpRequest) else None
    user = getattr(request, "user", None) if request is not None else request_or_user
    if user is not None and not user.is_authenticated:
        user = None
    project = detail.pop("project", None) or _project_of(obj)
    username = detail.pop("username", None) or (user.get_username() if user else "")
    return AuditEvent.objects.create(
        user=user,
        username=_text(username[:150]),
        action=action,
        project=project,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=_text(str(obj)[:300]) if obj is not None else "",
        detail=_text(json.loads(json.dumps(detail, cls=DjangoJSONEncoder, default=str))),
        ip=(request.META.get("REMOTE_ADDR") or None) if request is not None else None,
    )


@receiver(user_logged_in, dispatch_uid="audit_sign_in")
def _signed_in(sender, request, user, **kwargs) -> None:
    record(request if request is not None else user, Action.SIGN_IN, username=user.get_username())


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # The password is never stored; Django already masks it in ``credentials``.
    username = str(credentials.get("username", ""))
    record(request if request is not None else None, Action.SIGN_IN_FAILED, username=username)
