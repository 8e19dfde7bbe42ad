from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from kizuna.catalog.services import category_create, product_create
from kizuna.commerce import selectors, services
from kizuna.commerce.models import Order, OrderLine, OrderStatus, Refund
from kizuna.customers.models import Customer, Event
from kizuna.customers.services import customer_create

# After-commit subscribers run as in production (commit_like_autocommit, conftest.py), without
# the flush after each test of transaction=True; only the race below needs real commits.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


@pytest.fixture
def shop() -> dict:
    category_create(slug="drinks", name="ドリンク", name_en="Drinks")
    latte = product_create(
        data={"sku": "LATTE-T", "name": "カフェラテ", "price_minor": 520, "category": "drinks"}
    )
    beans = product_create(
        data={"sku": "BEANS-200", "name": "ハウスブレンド豆", "price_minor": 1600}
    )
    customer = customer_create(data={"family_name": "田中", "email": "tanaka@example.jp"})
    return {"latte": latte, "beans": beans, "customer": customer}


def test_order_place_totals_lines_and_records_event(shop: dict) -> None:
    order = services.order_place(
        customer=shop["customer"],
        number="S-1",
        lines=[{"sku": "LATTE-T", "quantity": 2}, {"sku": "BEANS-200", "unit_price_minor": 1500}],
        discount_minor=100,
        store="渋谷店",
    )
    assert (order.subtotal_minor, order.discount_minor, order.total_minor) == (2540, 100, 2440)
    assert sorted(OrderLine.objects.filter(order=order).values_list("sku", "total_minor")) == [
        ("BEANS-200", 1500),
        ("LATTE-T", 1040),
    ]
    event = Event.objects.get(type="order.placed")
    assert event.customer_id == shop["customer"].pk
    assert event.properties["total"] == 2440
    assert event.message_id == "order.placed:S-1"
    customer = Customer.objects.get(pk=shop["customer"].pk)
    assert customer.last_seen_at == order.placed_at


def test_order_place_is_idempotent_on_number(shop: dict) -> None:
    first = services.order_place(
        customer=shop["customer"], number="S-2", lines=[{"sku": "LATTE-T"}]
    )
    again = services.order_place(
        customer=shop["customer"], number="S-2", lines=[{"sku": "LATTE-T"}]
    )
    assert first.pk == again.pk
    assert Order.objects.count() == 1
    assert Event.objects.filter(type="order.placed").count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "NOPE"}]}, "lines[0].sku"),
        ({"lines": [{"sku": "LATTE-T", "quantity": 0}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "LATTE-T", "unit_price_minor": -5}]}, "lines[0].unit_price_minor"),
        ({"lines": [{"sku": "LATTE-T", "colour": "red"}]}, "lines[0].colour"),
        ({"lines": [{"sku": "LATTE-T"}], "discount_minor": -1}, "discount_minor"),
        ({"lines": [{"sku": "LATTE-T"}], "discount_minor": 10_000}, "discount_minor"),
        ({"lines": [{"sku": "LATTE-T"}], "currency": "XXX"}, "currency"),
    ],
)
def test_order_place_rejects_bad_input_and_writes_nothing(
    shop: dict, kwargs: dict, field: str
) -> None:
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as info:
        services.order_place(customer=shop["customer"], number="S-bad", **kwargs)
    assert field in info.value.message_dict
    assert Order.objects.count() == 0
    assert OrderLine.objects.count() == 0
    assert Event.objects.count() == events_before


def test_order_number_of_another_customer_is_rejected(shop: dict) -> None:
    services.order_place(customer=shop["customer"], number="S-3", lines=[{"sku": "LATTE-T"}])
    other = customer_create(data={"family_name": "別人"})
    with pytest.raises(ValidationError) as info:
        services.order_place(customer=other, number="S-3", lines=[{"sku": "LATTE-T"}])
    assert list(info.value.message_dict) == ["number"]


def test_refunds_are_idempotent_and_never_exceed_the_total(shop: dict) -> None:
    order = services.order_place(
        customer=shop["customer"], number="S-4", lines=[{"sku": "BEANS-200"}]
    )
    services.refund_create(order=order, amount_minor=600, idempotency_key="r-1", reason="欠品")
    repeat = services.refund_create(order=order, amount_minor=600, idempotency_key="r-1")
    assert Refund.objects.count() == 1
    assert repeat.amount_minor == 600
    with pytest.raises(ValidationError) as info:
        services.refund_create(order=order, amount_minor=1001, idempotency_key="r-2")
    assert "amount_minor" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        services.refund_create(order=order, amount_minor=700, idempotency_key="r-1")
    assert "idempotency_key" in info.value.message_dict
    services.refund_create(order=order, amount_minor=1000, idempotency_key="r-3")
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (1600, OrderStatus.REFUNDED)
    assert selectors.sales_summary()["net_revenue"] == 0
    assert Event.objects.filter(type="order.refunded").count() == 2


# Real commits: the two refunding threads have connections of their own and must see the
# committed order, and lock each other out as two processes would.
@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_of_the_last_yen_only_one_wins(shop: dict) -> None:
    order = services.order_place(
        customer=shop["customer"], number="S-5", lines=[{"sku": "BEANS-200"}]
    )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def refund(key: str) -> None:
        try:
            barrier.wait(timeout=5)
            services.refund_create(order=order, amount_minor=1600, idempotency_key=key)
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append("rejected:" + ",".join(exc.message_dict))
        finally:
            connection.close()

    threads = [threading.Thread(target=refund, args=(f"race-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["ok", "rejected:amount_minor"]
    order.refresh_from_db()
    assert order.refunded_minor == 1600
    assert Refund.objects.filter(order=order).count() == 1


def test_customer_order_stats_nets_refunds(shop: dict) -> None:
    a = services.order_place(customer=shop["customer"], number="S-6", lines=[{"sku": "LATTE-T"}])
    services.order_place(customer=shop["customer"], number="S-7", lines=[{"sku": "BEANS-200"}])
    services.refund_create(order=a, amount_minor=520, idempotency_key="r-6")
    stats = selectors.customer_order_stats(customer_ids=[shop["customer"].pk])
    assert stats[shop["customer"].pk]["orders"] == 2
    assert stats[shop["customer"].pk]["net_spend"] == 1600
