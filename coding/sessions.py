"""Signed-in requests: the session and its user, each read with one fixed statement.

Every request of a signed-in user reads both, so they skip the ORM's query building and
run a statement written once (see ``coding.statements``). What is read and how it is
checked is Django's own: the session row must not have expired, and the user must be
active (``ModelBackend.user_can_authenticate``).
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
from django.utils import timezone

from . import statements


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        model = self.model
        using = router.db_for_read(model)
        row = statements.one(
            f"SELECT session_data FROM {model._meta.db_table} "  # noqa: S608
            "WHERE session_key = %s AND expire_date > %s",
            [self.session_key, statements.db_datetime(timezone.now(), using)],
            using,
        )
        if row is None:
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])


@cache
def _user_statement(using: str) -> tuple[str, tuple[str, ...]]:
    model = get_user_model()
    quote = connections[using].ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(f.column) for f in fields)
    sql = (
        f"SELECT {columns} FROM {quote(model._meta.db_table)} "  # noqa: S608
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
    return sql, tuple(f.attname for f in fields)


class UserBackend(ModelBackend):
    """Django's model backend, with the per-request user lookup as one fixed statement."""

    def get_user(self, user_id):
        model = get_user_model()
        using = router.db_for_read(model)
        sql, fields = _user_statement(using)
        row = statements.one(sql, [user_id], using)
        if row is None:
            return None
        user = statements.instance(model, fields, row, using)
        return user if self.user_can_authenticate(user) else None
