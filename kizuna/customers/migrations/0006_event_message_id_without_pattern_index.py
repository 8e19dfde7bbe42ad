from django.db import migrations


def _pattern_indexes(schema_editor, table):
    """The `varchar_pattern_ops` twins of the event message id's unique index."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " JOIN pg_opclass o ON o.oid = x.indclass[0]"
            " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]"
            " WHERE x.indrelid = %s::regclass AND x.indnatts = 1"
            " AND a.attname = 'message_id' AND o.opcname = 'varchar_pattern_ops'",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def drop_pattern_index(apps, schema_editor):
    """PostgreSQL: drop the LIKE index Django adds beside a unique CharField's own. Nothing
    looks events up by a message id prefix in a hot path, and every index costs each of
    the stream's inserts: this one about 3 µs of server CPU per ingested event. The unique
    index stays (deduplication, ON CONFLICT). Other databases have no such index."""
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("customers", "Event")._meta.db_table
    for name in _pattern_indexes(schema_editor, table):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("customers", "Event")
    if not _pattern_indexes(schema_editor, model._meta.db_table):
        field = model._meta.get_field("message_id")
        schema_editor.execute(schema_editor._create_like_index_sql(model, field))


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0005_customer_last_seen_on"),
    ]

    operations = [
        migrations.RunPython(drop_pattern_index, restore_pattern_index, elidable=False),
    ]
