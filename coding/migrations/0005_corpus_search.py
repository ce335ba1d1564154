"""Full-text search over post text and thread titles: FTS5 on SQLite, GIN on PostgreSQL."""

from django.db import migrations


def create(apps, schema_editor):
    from coding.search import create_search_index

    create_search_index(schema_editor.connection)


def drop(apps, schema_editor):
    from coding.search import drop_search_index

    drop_search_index(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("coding", "0004_hub_models"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
