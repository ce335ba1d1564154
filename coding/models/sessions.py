"""Signed-in sessions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Session(AbstractBaseSession):
    """Django's database session, with the signed-in user's id in a column of its own,
    kept by the session store whenever it writes the row (``coding/sessions.py``): a
    request reads its session and its user in one statement. A deleted user's sessions
    go with them."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    @classmethod
    def get_session_store_class(cls):
        from coding.sessions import SessionStore

        return SessionStore
