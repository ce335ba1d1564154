"""Signed-in requests: the session and its user read in one fixed statement.

Every request of a signed-in user reads both. The session table (``models.Session``)
keeps the user's id in a column, written by this store whenever it writes the row, so
one statement written once (see ``coding.statements``) reads the session and the user's
row together. What is read and how it is checked is Django's own: the session row must
not have expired, ``django.contrib.auth.get_user`` checks the session's backend and the
user's session hash, and the user must be active (``ModelBackend.user_can_authenticate``).
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache

from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core import signing
from django.core.signals import setting_changed
from django.db import connections, router
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from . import statements

# The user's row read with this request's session, while Django's get_user runs.
_USER_ROW: ContextVar[tuple | None] = ContextVar("session_user_row", default=None)


@cache
def _user_columns(using: str) -> tuple[str, tuple[str, ...]]:
    """The user model's columns as ``u.<column>, ...`` and its field names, in order."""
    model = get_user_model()
    quote = connections[using].ops.quote_name
    fields = model._meta.concrete_fields
    return ", ".join("u." + quote(f.column) for f in fields), tuple(f.attname for f in fields)


@cache
def _statements(using: str) -> tuple[str, str]:
    """The session with its user's row, and the user's row alone."""
    from .models import Session

    user = get_user_model()._meta
    quote = connections[using].ops.quote_name
    columns, _ = _user_columns(using)
    users = f"{quote(user.db_table)} u"
    return (
        f"SELECT s.session_data, {columns} FROM {quote(Session._meta.db_table)} s "  # noqa: S608
        f"LEFT JOIN {users} ON u.{quote(user.pk.column)} = s.user_id "
        "WHERE s.session_key = %s AND s.expire_date > %s",
        f"SELECT {columns} FROM {users} WHERE u.{quote(user.pk.column)} = %s",  # noqa: S608
    )


def _user_id(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _Verified:
    """A serializer for ``signing.loads`` that keeps the verified payload as bytes."""

    def loads(self, data: bytes) -> bytes:
        return data


# Signed session data -> its payload, once the signature was checked: a signed-in user
# sends the same session on every request, and checking it (a keyed hash, base64 and
# perhaps zlib) cost as much as reading it. Only data whose signature held is kept, and
# the payload is parsed anew for each request, so no two requests share a session dict.
_VERIFIED: dict[str, bytes] = {}
_VERIFIED_MAX = 4096


@receiver(setting_changed, dispatch_uid="coding_sessions_signing_keys")
def _forget_verified(setting, **kwargs) -> None:
    """Data verified with other keys is verified again (settings change in tests)."""
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _VERIFIED.clear()


class SessionStore(DatabaseSessionStore):
    """Django's database sessions, in ``models.Session``: the row carries the signed-in
    user's id, and loading the session reads that user's row in the same statement."""

    user_row: tuple | None = None

    def decode(self, session_data):
        """Django's ``decode``, with the signature of data seen before not checked again."""
        payload = _VERIFIED.get(session_data)
        if payload is None:
            try:
                payload = signing.loads(session_data, salt=self.key_salt, serializer=_Verified)
            except Exception:
                return super().decode(session_data)  # an empty session, as Django's
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[session_data] = payload
        try:
            return self.serializer().loads(payload)
        except Exception:
            return {}

    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    def create_model_instance(self, data):
        row = super().create_model_instance(data)
        row.user_id = _user_id(data.get(auth.SESSION_KEY))
        return row

    def _get_session_from_db(self):
        model = self.model
        using = router.db_for_read(model)
        row = statements.one(
            _statements(using)[0],
            [self.session_key, statements.db_datetime(timezone.now(), using)],
            using,
        )
        self.user_row = None
        if row is None:
            self._session_key = None
            return None
        if row[1] is not None:
            self.user_row = tuple(row[1:])
        return model(session_key=self.session_key, session_data=row[0])


def get_user(request):
    """``request.user``: Django's ``get_user``, given the user's row that came with the
    session, so the backend does not read it again."""
    if not hasattr(request, "_cached_user"):
        session = request.session
        session.get(auth.SESSION_KEY)  # loads the session, and with it the user's row
        token = _USER_ROW.set(getattr(session, "user_row", None))
        try:
            request._cached_user = auth.get_user(request)
        finally:
            _USER_ROW.reset(token)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthentication):
    """Django's authentication middleware with ``request.user`` from ``get_user`` above."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: get_user(request))


class UserBackend(ModelBackend):
    """Django's model backend, with the per-request user lookup as one fixed statement,
    or none when the row came with the session."""

    def get_user(self, user_id):
        model = get_user_model()
        using = router.db_for_read(model)
        _, fields = _user_columns(using)
        row = _USER_ROW.get()
        pk = model._meta.pk.to_python(user_id)
        if row is None or row[fields.index(model._meta.pk.attname)] != pk:
            row = statements.one(_statements(using)[1], [user_id], using)
        if row is None:
            return None
        user = statements.instance(model, fields, row, using)
        return user if self.user_can_authenticate(user) else None


@receiver(pre_delete, sender=get_user_model(), dispatch_uid="coding_sessions_of_deleted_user")
def _delete_sessions_of(sender, instance, using, **kwargs) -> None:
    """A deleted user's sessions go with them."""
    from .models import Session

    Session.objects.using(using).filter(user_id=instance.pk).delete()
