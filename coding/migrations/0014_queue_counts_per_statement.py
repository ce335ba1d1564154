"""On PostgreSQL, keep the queue counts once per statement instead of once per row.

A row-level trigger updates a coder's count row once for every assignment a statement
writes. Within one transaction each of those updates adds a version of the same row, and
each update walks the versions before it: assigning N units to a coder in one
transaction (``assign_units`` on a large sample, ``remove_member`` returning a long
queue) cost time growing with N squared (20,000 assignments to one coder: 3.7 s;
40,000: 13.1 s). Statement-level triggers read the statement's rows from its
transition tables and write each (project, coder) count once per statement.

SQLite keeps its row-level triggers (migration 0011): it writes a row in place, so
repeated updates of one row cost the same each time.
"""

from django.db import migrations

COUNTED = "(CASE WHEN status <> 'returned' THEN 1 ELSE 0 END)"
DONE = "(CASE WHEN status = 'done' THEN 1 ELSE 0 END)"

# Adds the (project, coder) deltas of ``deltas`` (project_id, coder_id, total, done) to
# the kept counts; a pair without a count row gets one. Rows are written in key order, so
# two statements changing the same coders' counts lock their rows in the same order.
UPSERT = """
INSERT INTO coding_queuecount (project_id, coder_id, total, done)
SELECT project_id, coder_id, SUM(total), SUM(done) FROM ({deltas}) AS d
GROUP BY project_id, coder_id
HAVING SUM(total) <> 0 OR SUM(done) <> 0
ORDER BY project_id, coder_id
ON CONFLICT (project_id, coder_id) DO UPDATE SET
    total = coding_queuecount.total + excluded.total,
    done = coding_queuecount.done + excluded.done
"""
ADDED = f"SELECT project_id, coder_id, {COUNTED} AS total, {DONE} AS done FROM new_rows"  # noqa: S608
REMOVED = f"SELECT project_id, coder_id, -{COUNTED} AS total, -{DONE} AS done FROM old_rows"  # noqa: S608

FUNCTIONS = {
    "coding_queuecount_inserted": UPSERT.format(deltas=ADDED),
    "coding_queuecount_deleted": UPSERT.format(deltas=REMOVED),
    "coding_queuecount_updated": UPSERT.format(deltas=f"{ADDED} UNION ALL {REMOVED}"),
}
TRIGGERS = [
    ("coding_queuecount_insert", "INSERT", "NEW TABLE AS new_rows", "coding_queuecount_inserted"),
    ("coding_queuecount_delete", "DELETE", "OLD TABLE AS old_rows", "coding_queuecount_deleted"),
    (
        "coding_queuecount_update",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "coding_queuecount_updated",
    ),
]

PER_STATEMENT = [
    "DROP TRIGGER IF EXISTS coding_queuecount_insert_delete ON coding_assignment",
    "DROP TRIGGER IF EXISTS coding_queuecount_update ON coding_assignment",
    "DROP FUNCTION IF EXISTS coding_queuecount_keep()",
    *(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{sql};\nRETURN NULL;\nEND\n$$"
        for name, sql in FUNCTIONS.items()
    ),
    *(
        f"CREATE TRIGGER {trigger} AFTER {event} ON coding_assignment "
        f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        for trigger, event, tables, function in TRIGGERS
    ),
]


def per_statement(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in PER_STATEMENT:
        schema_editor.execute(statement)


def per_row(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from importlib import import_module

    earlier = import_module("coding.migrations.0011_queue_counts")
    for trigger, _, _, _ in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON coding_assignment")
    for name in FUNCTIONS:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")
    for statement in earlier.POSTGRES:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("coding", "0013_drop_covered_indexes"),
    ]

    operations = [migrations.RunPython(per_statement, per_row)]
