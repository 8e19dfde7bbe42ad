"""First/last seen as ingestion widens them: `last_seen_on` (the indexed UTC day, generated
by the database), the orders and ranges that use it, and on PostgreSQL the rewrite of first
and last seen as a heap-only update (no index entry written)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from kizuna.core.bulk import allocate_ids
from kizuna.customers.bulk import customers_seen_widen
from kizuna.customers.models import Customer, Event
from kizuna.customers.selectors import customer_list, last_seen_between

pytestmark = pytest.mark.django_db

JST = ZoneInfo("Asia/Tokyo")
LATE = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 2 Dec 08:30 in Japan


def _text(moment: datetime) -> str:
    """A bound as the tracking worker gives it: the stored text on SQLite, ISO elsewhere."""
    if connection.vendor == "sqlite":
        return str(connection.ops.adapt_datetimefield_value(moment))
    return moment.isoformat()


def test_last_seen_on_is_the_utc_day_of_last_seen_whichever_way_it_is_written() -> None:
    customer = Customer.objects.create(family_name="山田")
    customer.refresh_from_db()
    assert customer.last_seen_on is None
    customers_seen_widen({customer.pk: [LATE - timedelta(days=3), LATE]})
    customer.refresh_from_db()
    assert (customer.first_seen_at, customer.last_seen_at) == (LATE - timedelta(days=3), LATE)
    assert customer.last_seen_on == date(2026, 12, 1)  # UTC's day, not Japan's
    # The worker's bounds are text: a later time moves the day, an earlier one nothing.
    later = LATE + timedelta(minutes=45, microseconds=5)
    customers_seen_widen({customer.pk: [_text(LATE - timedelta(days=1)), _text(later)]})
    customer.refresh_from_db()
    assert (customer.first_seen_at, customer.last_seen_at) == (LATE - timedelta(days=3), later)
    assert customer.last_seen_on == date(2026, 12, 2)
    # A save through the ORM (which never writes the generated column) keeps it right.
    customer.last_seen_at = LATE - timedelta(days=10)
    customer.save()
    customer.refresh_from_db()
    assert customer.last_seen_on == date(2026, 11, 21)


def test_the_customer_list_orders_by_last_seen_across_and_within_days() -> None:
    times = [
        LATE,
        LATE + timedelta(minutes=31),  # the next UTC day
        LATE - timedelta(hours=5),  # the same UTC day, earlier
        LATE + timedelta(minutes=31),  # a tie: broken by id
        LATE - timedelta(days=40),
    ]
    customers = [Customer.objects.create(family_name=f"客{n}") for n in range(len(times))]
    customers_seen_widen({c.pk: [t, t] for c, t in zip(customers, times, strict=True)})
    never = Customer.objects.create(family_name="未訪問")
    expected = sorted(
        ((t, c.pk) for c, t in zip(customers, times, strict=True)), key=lambda p: p, reverse=True
    )
    newest = [pk for pk in customer_list(ordering="-last_seen_at").values_list("pk", flat=True)]
    assert [pk for pk in newest if pk != never.pk] == [pk for _t, pk in expected]
    oldest = [pk for pk in customer_list(ordering="last_seen_at").values_list("pk", flat=True)]
    assert [pk for pk in oldest if pk != never.pk] == [pk for _t, pk in reversed(expected)]
    assert never.pk in newest and never.pk in oldest


def test_last_seen_between_takes_its_start_and_not_its_end_in_any_time_zone() -> None:
    edge = LATE.astimezone(JST)  # the same instant, given in Japan's time
    times = {
        "before": LATE - timedelta(days=7, microseconds=1),
        "start": LATE - timedelta(days=7),
        "inside": LATE - timedelta(minutes=1),
        "end": LATE,
        "after": LATE + timedelta(hours=1),
    }
    made = {name: Customer.objects.create(family_name=name) for name in times}
    customers_seen_widen({made[name].pk: [t, t] for name, t in times.items()})
    found = set(
        Customer.objects.filter(last_seen_between(edge - timedelta(days=7), edge)).values_list(
            "family_name", flat=True
        )
    )
    assert found == {"start", "inside"}


def test_last_seen_is_indexed_by_its_day_and_not_its_time() -> None:
    # Through Django's introspection, which must also read the generated column's table.
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Customer._meta.db_table)
    indexed = [tuple(c["columns"]) for c in constraints.values() if c["index"]]
    assert ("last_seen_on",) in indexed
    assert not [columns for columns in indexed if "last_seen_at" in columns]


def test_widening_first_and_last_seen_writes_no_index_entry_on_postgresql() -> None:
    """The point of indexing the day: the rewrite of every seen customer's first/last seen
    stays a heap-only update (PostgreSQL counts them for the open transaction)."""
    customers = [Customer.objects.create(family_name=f"客{n}") for n in range(20)]
    customers_seen_widen({c.pk: [LATE - timedelta(hours=2), LATE] for c in customers})
    if connection.vendor != "postgresql":
        assert Customer.objects.filter(last_seen_at=LATE).count() == 20
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [Customer._meta.db_table]
        )
        assert "fillfactor=90" in cursor.fetchone()[0]
    with transaction.atomic():

        def hot_updates() -> int:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
                    [Customer._meta.db_table],
                )
                return int(cursor.fetchone()[0])

        before = hot_updates()
        # Earlier first seen and later last seen on the same day: both change, the day not.
        customers_seen_widen(
            {c.pk: [LATE - timedelta(hours=5), LATE + timedelta(minutes=20)] for c in customers}
        )
        assert hot_updates() - before == 20
    assert set(
        Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list(
            "first_seen_at", "last_seen_at", "last_seen_on"
        )
    ) == {(LATE - timedelta(hours=5), LATE + timedelta(minutes=20), date(2026, 12, 1))}


def test_allocated_event_ids_are_new_distinct_and_in_order() -> None:
    customer = Customer.objects.create(family_name="山田")
    stored = Event.objects.create(type="t", customer=customer, occurred_at=LATE, message_id="m")
    allocated = allocate_ids(Event, 500)
    assert len(set(allocated)) == 500 and allocated == sorted(allocated)
    assert min(allocated) > stored.pk
    assert allocate_ids(Event, 0) == []
