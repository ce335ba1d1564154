"""Signed-in sessions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Session(AbstractBaseSession):
    """Django's database session, with the signed-in user's id in a column of its own,
    kept by the session store whenever it writes the row (``coding/sessions.py``): a
    request reads its session and its user in one statement.

    The column is a plain reference, not a foreign key the database checks: a session
    written for a user being deleted at that moment must not fail at commit (Django would
    take that for a taken key and try again without end), and a user's deletion removes
    their sessions itself (``coding/sessions.py``) rather than listing them, keys and all,
    among the objects deleted with the user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    def __str__(self) -> str:
        return f"session of user {self.user_id}" if self.user_id else "anonymous session"

    @classmethod
    def get_session_store_class(cls):
        from coding.sessions import SessionStore

        return SessionStore
