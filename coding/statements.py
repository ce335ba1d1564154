"""Fixed SQL statements for the requests made most often: a signed-in user's session and
user, and the coding screen's page and save.

The ORM builds and compiles every query anew on every request, which costs a quarter
of a millisecond or more per query; the coding screen runs about ten per request, many
times a minute per coder. The statements here are written once and run as they are on
SQLite and PostgreSQL. Rows become model instances exactly as the ORM would make them
(the database's values go through the same converters, and fields a statement does not
select are deferred), so the code that uses them cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.db import connections
from django.db.models import Model
from django.db.models.expressions import Col

PREPARE_AFTER = 2  # runs of a statement on one connection before it is prepared


def _cursor(using: str):
    """A cursor of Django's (queries logged, errors translated); on PostgreSQL one that
    binds parameters on the server, so psycopg prepares a statement run a few times on a
    connection and the server stops parsing and planning it anew on every request."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        # Django turns automatic preparing off; only server-binding cursors like this
        # one prepare at all, so the ORM's queries are unaffected.
        connection.connection.prepare_threshold = PREPARE_AFTER
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def rows(sql: str, params: Sequence[Any], using: str = "default") -> list[tuple]:
    with _cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence[Any], using: str = "default") -> int:
    """Run a statement that returns no rows; the number of rows it changed."""
    with _cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def one(sql: str, params: Sequence[Any], using: str = "default") -> tuple | None:
    with _cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@lru_cache(maxsize=256)
def _converters(using: str, label: str, fields: tuple[str, ...]) -> tuple:
    connection = connections[using]
    model = apps.get_model(label)
    out = []
    for name in fields:
        field = model._meta.get_field(name)
        expression = Col(model._meta.db_table, field)
        converters = tuple(connection.ops.get_db_converters(expression)) + tuple(
            field.get_db_converters(connection)
        )
        out.append((expression, converters))
    return tuple(out)


def convert(
    model: type[Model], fields: tuple[str, ...], values: Iterable[Any], using: str = "default"
) -> list[Any]:
    """Database values of ``fields`` (attribute names, in order) as the ORM returns them."""
    connection = connections[using]
    out = []
    for value, (expression, converters) in zip(
        values, _converters(using, model._meta.label, fields), strict=True
    ):
        for converter in converters:
            value = converter(value, expression, connection)
        out.append(value)
    return out


def instance(
    model: type[Model], fields: tuple[str, ...], values: Iterable[Any], using: str = "default"
) -> Model:
    """A model instance from a row holding ``fields``; the model's other fields are
    deferred (read from the database if ever used)."""
    given = dict(zip(fields, convert(model, fields, values, using), strict=True))
    names = [f.attname for f in model._meta.concrete_fields if f.attname in given]
    # from_db takes the values in the model's field order, whatever the names' order.
    return model.from_db(using, names, [given[name] for name in names])


def placeholders(count: int, width: int = 0) -> str:
    """``%s, %s, ...`` for ``count`` values, or ``(%s, %s), (%s, %s), ...`` for ``count``
    rows of ``width`` values."""
    if not width:
        return ", ".join(["%s"] * count)
    row = "(" + ", ".join(["%s"] * width) + ")"
    return ", ".join([row] * count)


def db_datetime(value, using: str = "default"):
    """A datetime as a statement parameter for the database (text on SQLite)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def db_json(value, using: str = "default"):
    """A value for a JSON column, as the ORM would send it (None is SQL NULL)."""
    return None if value is None else connections[using].ops.adapt_json_value(value, None)


def for_update(using: str = "default") -> str:
    """Row locks where the database has them; SQLite's IMMEDIATE transactions already
    hold the database's write lock."""
    return " FOR UPDATE" if connections[using].features.has_select_for_update else ""
