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

import re
from collections.abc import Callable, Sequence
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
    _prepare_after(connection)
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def _prepare_after(connection) -> None:
    if connection.connection.prepare_threshold is None:
        # Django turns automatic preparing off; only server-binding cursors like this
        # module's prepare at all, so the ORM's queries are unaffected. The settings
        # have the server keep one plan per prepared statement (plan_cache_mode).
        connection.connection.prepare_threshold = PREPARE_AFTER


_QMARK = re.compile(r"(?<!%)%s")


@lru_cache(maxsize=512)
def _qmark(sql: str) -> str:
    """A statement's ``%s`` placeholders as SQLite's ``?``, as Django's SQLite cursor
    rewrites them (``%%`` is a literal ``%``)."""
    return _QMARK.sub("?", sql).replace("%%", "%")


def _run(using: str, sql: str, params: Sequence[Any], read: Callable[[Any], Any]) -> Any:
    """Run ``sql`` and return ``read(cursor)``.

    While queries are logged (DEBUG, or a test counting them) or an execute wrapper is
    installed, this goes through Django's cursor. Otherwise it runs on one raw cursor
    kept per database connection: the statements are fixed, so Django's per-statement
    wrapping (a new wrapper object, placeholder rewriting on SQLite) is skipped, while its
    checks stay (a usable connection, no statement in a broken transaction, errors as
    Django's exceptions).
    """
    connection = connections[using]
    if connection.queries_logged or connection.execute_wrappers:
        with _cursor(using) as cursor:
            cursor.execute(sql, params)
            return read(cursor)
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    raw = connection.connection
    kept = getattr(connection, "_fixed_statement_cursor", None)
    if kept is None or kept[0] is not raw:
        if connection.vendor == "postgresql":
            from django.db.backends.postgresql.base import ServerBindingCursor

            _prepare_after(connection)
            kept = (raw, ServerBindingCursor(raw))
        else:
            kept = (raw, raw.cursor())
        connection._fixed_statement_cursor = kept
    cursor = kept[1]
    if connection.vendor == "sqlite":
        sql = _qmark(sql)
    with connection.wrap_database_errors:
        cursor.execute(sql, params)
        return read(cursor)


def rows(sql: str, params: Sequence[Any], using: str = "default") -> list[tuple]:
    return _run(using, sql, params, _fetchall)


def execute(sql: str, params: Sequence[Any], using: str = "default") -> int:
    """Run a statement that returns no rows; the number of rows it changed."""
    return _run(using, sql, params, _rowcount)


def one(sql: str, params: Sequence[Any], using: str = "default") -> tuple | None:
    return _run(using, sql, params, _fetchone)


def _fetchall(cursor) -> list[tuple]:
    return cursor.fetchall()


def _fetchone(cursor) -> tuple | None:
    return cursor.fetchone()


def _rowcount(cursor) -> int:
    return cursor.rowcount


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


def converter(model: type[Model], name: str, using: str = "default") -> Callable[[Any], Any]:
    """A function turning the database's value of one field into the ORM's."""
    ((expression, converters),) = _converters(using, model._meta.label, (name,))
    if not converters:
        return _same
    connection = connections[using]

    def convert_one(value: Any) -> Any:
        for function in converters:
            value = function(value, expression, connection)
        return value

    return convert_one


def _same(value: Any) -> Any:
    return value


def instance(
    model: type[Model], fields: tuple[str, ...], values: Sequence[Any], using: str = "default"
) -> Model:
    """A model instance from a row holding ``fields``; the model's other fields are
    deferred (read from the database if ever used)."""
    names, order, steps = _instance_plan(using, model, fields)
    if len(values) != len(fields):
        raise ValueError(f"{len(fields)} fields, {len(values)} values")
    if steps:
        values = list(values)
        connection = connections[using]
        for index, expression, converters in steps:
            value = values[index]
            for function in converters:
                value = function(value, expression, connection)
            values[index] = value
    # from_db takes the values in the model's field order, whatever the names' order.
    return model.from_db(using, names, [values[index] for index in order])


@lru_cache(maxsize=256)
def _instance_plan(using: str, model: type[Model], fields: tuple[str, ...]) -> tuple:
    """For ``instance``: the field names in the model's order, where each one's value is
    in a row of ``fields``, and the converters of the fields that have any."""
    position = {name: index for index, name in enumerate(fields)}
    names = [f.attname for f in model._meta.concrete_fields if f.attname in position]
    if len(names) != len(fields):
        raise ValueError(f"not fields of {model._meta.label}: {set(fields) - set(names)}")
    order = tuple(position[name] for name in names)
    steps = tuple(
        (index, expression, converters)
        for index, (expression, converters) in enumerate(
            _converters(using, model._meta.label, fields)
        )
        if converters
    )
    return names, order, steps


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


def vendor(using: str = "default") -> str:
    return connections[using].vendor


def for_update(using: str = "default") -> str:
    """Row locks where the database has them; SQLite's IMMEDIATE transactions already
    hold the database's write lock."""
    return " FOR UPDATE" if connections[using].features.has_select_for_update else ""
