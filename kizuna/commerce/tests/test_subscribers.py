"""Orders follow a customer merge, inside the merge's transaction."""

from __future__ import annotations

import pytest

from kizuna.catalog.services import product_create
from kizuna.commerce.models import Order
from kizuna.commerce.services import order_place
from kizuna.core import events as bus
from kizuna.customers import services
from kizuna.customers.merge import customer_merge
from kizuna.customers.models import CustomerMerge

pytestmark = pytest.mark.django_db


def test_merged_customers_orders_move_to_the_survivor() -> None:
    product_create(data={"sku": "TEA", "name": "緑茶", "price_minor": 1000})
    survivor = services.customer_create(data={"email": "a@example.com"})
    merged = services.customer_create(data={"email": "b@example.com"})
    order_place(customer=merged, number="O-1", lines=[{"sku": "TEA", "quantity": 1}])
    order_place(customer=survivor, number="O-2", lines=[{"sku": "TEA", "quantity": 2}])
    customer_merge(survivor=survivor, merged=merged)
    assert set(Order.objects.filter(customer=survivor).values_list("number", flat=True)) == {
        "O-1",
        "O-2",
    }


def test_orders_stay_when_the_merge_fails_later() -> None:
    product_create(data={"sku": "TEA", "name": "緑茶", "price_minor": 1000})
    survivor = services.customer_create(data={"email": "a@example.com"})
    merged = services.customer_create(data={"email": "b@example.com"})
    order_place(customer=merged, number="O-1", lines=[{"sku": "TEA", "quantity": 1}])

    def fail(event: bus.DomainEvent) -> None:
        raise RuntimeError("another app failed")

    bus.subscribe("customer.merged", fail, in_transaction=True)
    with pytest.raises(RuntimeError):
        customer_merge(survivor=survivor, merged=merged)
    assert Order.objects.get(number="O-1").customer_id == merged.pk
    assert CustomerMerge.objects.count() == 0
