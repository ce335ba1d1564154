import django.db.models.deletion
from django.db import migrations, models

# Each assignment's project and queue rank (round order * 2**31 + position), from its unit.
FILL = """
UPDATE coding_assignment SET
    project_id = (SELECT u.project_id FROM coding_unit u WHERE u.id = coding_assignment.unit_id),
    queue_rank = (
        SELECT r."order" * 2147483648 + u.position
        FROM coding_unit u JOIN coding_round r ON r.id = u.round_id
        WHERE u.id = coding_assignment.unit_id
    )
"""


def fill(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        # Check the new foreign keys now, so the table can be altered in this transaction.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute(FILL)
    if postgres:
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("coding", "0009_example_proposals"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="project",
            field=models.ForeignKey(
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="coding.project",
            ),
        ),
        migrations.AddField(
            model_name="assignment",
            name="queue_rank",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="assignment",
            name="project",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="coding.project",
            ),
        ),
        migrations.AlterField(
            model_name="assignment",
            name="queue_rank",
            field=models.BigIntegerField(editable=False),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                fields=["coder", "project", "status", "queue_rank", "unit"],
                name="assignment_next",
            ),
        ),
    ]
