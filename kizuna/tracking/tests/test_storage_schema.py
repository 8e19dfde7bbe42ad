"""The stream's storage as the migrations leave it on PostgreSQL: the event message id
keeps its unique index without the LIKE twin (one index fewer for each ingested event),
and the inbox payload is compressed with lz4 where the server has it."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kizuna.customers.models import Customer, Event
from kizuna.tracking.models import InboxBatch
from kizuna.tracking.services import source_create

pytestmark = pytest.mark.django_db

without_pattern_index = importlib.import_module(
    "kizuna.customers.migrations.0006_event_message_id_without_pattern_index"
)


def _message_id_indexes() -> dict[str, dict[str, object]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Event._meta.db_table)
    return {name: c for name, c in constraints.items() if c["columns"] == ["message_id"]}


def test_a_message_id_is_stored_once_with_one_index_on_it() -> None:
    customer = Customer.objects.create(family_name="山田")
    Event.objects.create(
        message_id="m-1", type="Viewed", customer=customer, occurred_at=timezone.now()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(
            message_id="m-1", type="Viewed", customer=customer, occurred_at=timezone.now()
        )
    indexes = _message_id_indexes()
    assert [c["unique"] for c in indexes.values() if c["index"] or c["unique"]] == [True]


def test_the_pattern_index_migration_drops_and_restores_the_twin_on_postgresql() -> None:
    if connection.vendor != "postgresql":  # no such index: nothing to do
        without_pattern_index.drop_pattern_index(apps, SimpleNamespace(connection=connection))
        assert len(_message_id_indexes()) == 1
        return
    with connection.schema_editor(atomic=True) as schema:

        def pattern_indexes() -> list[str]:
            return list(without_pattern_index._pattern_indexes(schema, Event._meta.db_table))

        assert pattern_indexes() == []
        without_pattern_index.restore_pattern_index(apps, schema)
        assert len(pattern_indexes()) == 1
        without_pattern_index.drop_pattern_index(apps, schema)
        assert pattern_indexes() == []
    # Still found by a prefix, through the unique index or a scan.
    assert not Event.objects.filter(message_id__startswith="none-").exists()


@pytest.mark.django_db(databases="__all__")  # the inbox's own file on SQLite
def test_the_inbox_payload_is_compressed_with_lz4_where_the_server_has_it() -> None:
    source = source_create(name="Web").source
    payload = '[{"type":"track","event":"閲覧","properties":{"n":1}}]'
    batch = InboxBatch.objects.create(
        source_id=source.pk, received_at=timezone.now(), message_count=1, payload=payload
    )
    assert InboxBatch.objects.get(pk=batch.pk).payload == payload
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        has_lz4 = cursor.fetchone()[0]
        cursor.execute(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attname = 'payload'",
            [InboxBatch._meta.db_table],
        )
        assert cursor.fetchone()[0] == ("l" if has_lz4 else "")
