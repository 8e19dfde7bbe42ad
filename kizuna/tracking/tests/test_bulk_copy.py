"""`core.bulk.table_copy` (COPY on PostgreSQL, batched INSERT elsewhere), as the worker uses
it for the event stream: rows stored as the ORM stores them, conflicts skipped or refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from kizuna.core.bulk import table_copy
from kizuna.customers.bulk import EVENT_FIELDS
from kizuna.customers.models import Customer, Event

pytestmark = pytest.mark.django_db

AT = datetime(2026, 5, 1, 3, 4, 5, 678901, tzinfo=UTC)


def _row(message_id: str, customer_id: int, n: int) -> tuple[object, ...]:
    return (
        message_id,
        "Product Viewed",
        customer_id,
        "",
        AT + timedelta(seconds=n),
        AT,
        "web",
        {"sku": "茶-1", "n": n, "big": 2**70, "nested": {"tab": "a\tb\\c\n"}},
        {"library": {"name": "analytics-python"}},
    )


def test_rows_are_stored_as_the_orm_stores_them_and_conflicts_are_skipped() -> None:
    customer = Customer.objects.create(family_name="山田")
    Event.objects.create(
        message_id="m-0", type="kept", customer=customer, occurred_at=AT, properties={"a": 1}
    )
    with transaction.atomic():
        first = table_copy(
            Event,
            EVENT_FIELDS,
            [_row("m-0", customer.pk, 0), _row("m-1", customer.pk, 1)],
            ignore_conflicts=True,
        )
        # A second call in the same transaction adds only its own rows.
        second = table_copy(
            Event, EVENT_FIELDS, [_row("m-2", customer.pk, 2)], ignore_conflicts=True
        )
    if connection.vendor == "postgresql":
        assert (first, second) == (1, 1)  # rows actually inserted
    assert Event.objects.get(message_id="m-0").type == "kept"  # the stored row is untouched
    assert Event.objects.filter(message_id__startswith="m-").count() == 3
    event = Event.objects.get(message_id="m-1")
    assert event.properties == {
        "sku": "茶-1",
        "n": 1,
        "big": 2**70,
        "nested": {"tab": "a\tb\\c\n"},
    }
    assert event.context == {"library": {"name": "analytics-python"}}
    assert (event.occurred_at, event.received_at) == (AT + timedelta(seconds=1), AT)
    assert (event.customer_id, event.anonymous_id, event.source) == (customer.pk, "", "web")
    assert Event.objects.filter(properties__sku="茶-1", properties__n=2).count() == 1


def test_without_ignore_conflicts_a_duplicate_fails_the_whole_copy() -> None:
    customer = Customer.objects.create(family_name="山田")
    table_copy(Event, EVENT_FIELDS, [_row("d-1", customer.pk, 1)])
    with pytest.raises(IntegrityError), transaction.atomic():
        table_copy(Event, EVENT_FIELDS, [_row("d-2", customer.pk, 2), _row("d-1", customer.pk, 3)])
    assert list(Event.objects.filter(message_id__startswith="d-").values_list("message_id")) == [
        ("d-1",)
    ]
