"""Drop the single-column indexes of foreign keys that lead a composite index already.

Only the indexes go: on SQLite, Django would alter these fields by remaking their
tables, which would drop the queue-count triggers on coding_assignment (migration 0011).
The index names are Django's, the same on every database.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (table, column, index name): each column leads a unique or composite index of its table.
COVERED = [
    ("coding_assignment", "coder_id", "coding_assignment_coder_id_5ebd34af"),
    ("coding_assignment", "unit_id", "coding_assignment_unit_id_c6eac686"),
    ("coding_codeapplication", "coding_id", "coding_codeapplication_coding_id_6fc318c8"),
    ("coding_coding", "coder_id", "coding_coding_coder_id_646aeb05"),
    ("coding_coding", "unit_id", "coding_coding_unit_id_e9fb31e0"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("coding", "0012_sessions_with_user"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")',
                )
                for table, column, name in COVERED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="coder",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assignments",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="assignment",
                    name="unit",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assignments",
                        to="coding.unit",
                    ),
                ),
                migrations.AlterField(
                    model_name="codeapplication",
                    name="coding",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="applications",
                        to="coding.coding",
                    ),
                ),
                migrations.AlterField(
                    model_name="coding",
                    name="coder",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="codings",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="coding",
                    name="unit",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="codings",
                        to="coding.unit",
                    ),
                ),
            ],
        )
    ]
