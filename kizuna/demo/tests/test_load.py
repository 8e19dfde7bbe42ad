"""A small demo load through the bulk loaders leaves data as the services would."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Min, Sum

from kizuna.catalog.models import Product
from kizuna.commerce.bulk import (
    LineRow,
    OrderRow,
    RefundRow,
    orders_bulk_place,
    refunds_bulk_create,
)
from kizuna.commerce.models import Order, OrderLine, OrderStatus, Refund
from kizuna.customers.bulk import CustomerRow, customers_bulk_create
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity
from kizuna.customers.services import customer_create
from kizuna.demo import business as biz
from kizuna.demo import load
from kizuna.demo import segments as demo_segments
from kizuna.demo.generate import generate
from kizuna.segments.models import Segment, SegmentMembership
from kizuna.segments.selectors import segment_customers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def loaded() -> object:
    data = generate(customers=300, seed=11, until=datetime.now(UTC) - timedelta(minutes=1))
    load.load(data)
    return data


def test_small_load_is_consistent(loaded: object) -> None:
    data = loaded
    assert Customer.objects.count() == 300
    assert Order.objects.count() == len(data.orders)  # type: ignore[attr-defined]
    assert Product.objects.count() == len(biz.MENU)
    assert load.is_loaded()

    for order in Order.objects.annotate(lines_sum=Sum("lines__total_minor")):
        assert order.total_minor == order.lines_sum - order.discount_minor
        assert order.subtotal_minor == order.lines_sum
        assert 0 <= order.refunded_minor <= order.total_minor
    for line in OrderLine.objects.all()[:500]:
        assert line.total_minor == line.unit_price_minor * line.quantity
    refunded = Order.objects.exclude(refunded_minor=0)
    assert refunded.exists()
    for refunded_order in refunded:
        assert refunded_order.refunded_minor == sum(
            r.amount_minor for r in refunded_order.refunds.all()
        )
        expected = (
            OrderStatus.REFUNDED
            if refunded_order.refunded_minor == refunded_order.total_minor
            else OrderStatus.PARTIALLY_REFUNDED
        )
        assert refunded_order.status == expected
    assert not Order.objects.filter(refunded_minor=0).exclude(status=OrderStatus.PLACED).exists()

    # first/last seen are exactly each customer's first and last event of their own
    # activity: what the system's batch jobs record about them (analytics'
    # `customer.at_risk`, the monthly loyalty run's expiries and tier changes, which the demo
    # runs "now" when a month has just ended, segment entries) does not make a customer seen.
    system_types = ["points.expired", "tier.changed", "segment.entered", "segment.left"]
    spans = {
        row["customer"]: (row["lo"], row["hi"])
        for row in Event.objects.exclude(source="analytics")
        .exclude(type__in=system_types)
        .values("customer")
        .annotate(lo=Min("occurred_at"), hi=Max("occurred_at"))
    }
    for customer in Customer.objects.all():
        assert (customer.first_seen_at, customer.last_seen_at) == spans[customer.pk]
        assert customer.first_seen_at == customer.created_at

    # The events the services would have recorded, one per order and customer.
    types = Counter(Event.objects.values_list("type", flat=True))
    assert types["customer.created"] == 300
    assert types["order.placed"] == Order.objects.count()
    assert types["order.refunded"] == Refund.objects.count()
    assert types["identity.linked"] == Identity.objects.filter(kind="line").count() > 0
    assert types["consent.granted"] + types["consent.withdrawn"] == ConsentEntry.objects.count()
    assert types["Product Viewed"] and types["App Opened"] and types["Store Visited"]

    # The demo's segments are materialised: members as the rules say, entries on timelines.
    assert sorted(Segment.objects.values_list("slug", flat=True)) == sorted(
        spec["slug"] for spec in demo_segments.SEGMENTS
    )
    for segment in Segment.objects.all():
        members = set(segment.memberships.values_list("customer_id", flat=True))
        assert members == set(segment_customers(segment=segment).values_list("pk", flat=True))
    assert types["segment.entered"] == SegmentMembership.objects.count() > 0
    sample = Order.objects.order_by("pk").first()
    assert sample is not None
    event = Event.objects.get(message_id=f"order.placed:{sample.number}")
    assert event.properties["order_id"] == sample.pk
    assert event.properties["total"] == sample.total_minor
    assert event.occurred_at == sample.placed_at

    # Identities are unique and match the profile fields.
    assert (
        Identity.objects.values("kind", "value").annotate(n=Count("id")).filter(n__gt=1).count()
        == 0
    )
    emails = set(Identity.objects.filter(kind="email").values_list("customer_id", "value"))
    assert emails == set(Customer.objects.exclude(email="").values_list("pk", "email"))

    # A mix of one-time and repeat buyers.
    per_customer = Counter(Order.objects.values_list("customer_id", flat=True))
    assert any(n == 1 for n in per_customer.values())
    assert any(n >= 10 for n in per_customer.values())


def test_bulk_customers_reject_bad_rows_and_write_nothing() -> None:
    customer_create(data={"email": "taken@example.jp"})
    now = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(ValidationError) as info:
        customers_bulk_create(
            rows=[
                CustomerRow(data={"family_name": "山田", "email": "ok@example.jp"}, created_at=now),
                CustomerRow(data={"email": "not-an-email"}, created_at=now),
                CustomerRow(data={"email": "TAKEN@example.jp"}, created_at=now),
                CustomerRow(data={"prefecture": "Tokyo"}, created_at=now),
            ]
        )
    errors = info.value.message_dict
    assert "rows[1].email" in errors and "rows[3].prefecture" in errors and "email" in errors
    assert Customer.objects.count() == 1
    assert Event.objects.count() == 1


def test_bulk_orders_and_refunds_check_amounts_like_the_services(loaded: object) -> None:
    customer = Customer.objects.first()
    assert customer is not None
    when = datetime.now(UTC) - timedelta(hours=1)
    before = Order.objects.count()
    with pytest.raises(ValidationError) as info:
        orders_bulk_place(
            rows=[
                OrderRow(
                    number="X-1",
                    customer_id=customer.pk,
                    placed_at=when,
                    lines=[LineRow(sku="KC-D01")],
                    discount_minor=1000,
                ),
                OrderRow(
                    number="X-2",
                    customer_id=customer.pk,
                    placed_at=when,
                    lines=[LineRow(sku="NOPE")],
                ),
                OrderRow(
                    number="X-3",
                    customer_id=customer.pk,
                    placed_at=when,
                    lines=[LineRow(sku="KC-D01", quantity=0)],
                ),
            ]
        )
    assert set(info.value.message_dict) == {
        "rows[0].discount_minor",
        "rows[1].lines[0].sku",
        "rows[2].lines[0].quantity",
    }
    assert Order.objects.count() == before

    ids = orders_bulk_place(
        rows=[
            OrderRow(
                number="X-4", customer_id=customer.pk, placed_at=when, lines=[LineRow(sku="KC-D02")]
            )
        ]
    )
    order = Order.objects.get(pk=ids["X-4"])
    assert order.total_minor == 480
    with pytest.raises(ValidationError):
        refunds_bulk_create(
            rows=[
                RefundRow(
                    order_number="X-4",
                    amount_minor=300,
                    idempotency_key="r1",
                    created_at=when + timedelta(minutes=5),
                ),
                RefundRow(
                    order_number="X-4",
                    amount_minor=300,
                    idempotency_key="r2",
                    created_at=when + timedelta(minutes=6),
                ),
            ]
        )
    order.refresh_from_db()
    assert order.refunded_minor == 0
    refunds_bulk_create(
        rows=[
            RefundRow(order_number="X-4", amount_minor=480, idempotency_key="r3", created_at=when)
        ]
    )
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (480, OrderStatus.REFUNDED)


def test_demo_logins_keep_the_stored_password(tmp_path: object, settings: object) -> None:
    from pathlib import Path

    from django.contrib.auth import authenticate

    directory = Path(str(tmp_path))
    password = load.demo_password(directory)
    assert load.demo_password(directory) == password
    assert oct((directory / load.LOGIN_FILE).stat().st_mode & 0o777) == "0o600"
    logins = load.staff_ensure(password=password)
    assert [login.role for login in logins] == ["admin", "marketer", "analyst", "support"]
    user = authenticate(username="demo", password=password)
    assert user is not None and user.groups.filter(name="admin").exists()
    user.set_password("changed-it-1234")
    user.save()
    load.staff_ensure(password=password)  # a later `kizuna demo` resets it
    assert authenticate(username="demo", password=password) is not None
    assert authenticate(username="demo-analyst", password=password) is not None
