"""Orders follow a customer merge, inside the merge's transaction."""

from __future__ import annotations

import pytest

from kizuna.catalog.services import product_create
from kizuna.commerce.models import Order
from kizuna.commerce.services import order_place
from kizuna.core import events as bus
from kizuna.customers import services
from kizuna.customers.merge import customer_merge, customer_unmerge
from kizuna.customers.models import Customer, CustomerMerge

pytestmark = pytest.mark.django_db


def _numbers(customer: Customer) -> set[str]:
    return set(Order.objects.filter(customer=customer).values_list("number", flat=True))


def test_orders_move_to_the_survivor_and_back_on_unmerge() -> None:
    product_create(data={"sku": "TEA", "name": "緑茶", "price_minor": 1000})
    survivor = services.customer_create(data={"email": "a@example.com"})
    merged = services.customer_create(data={"email": "b@example.com"})
    order_place(customer=merged, number="O-1", lines=[{"sku": "TEA", "quantity": 1}])
    order_place(customer=survivor, number="O-2", lines=[{"sku": "TEA", "quantity": 2}])
    record = customer_merge(survivor=survivor, merged=merged)
    assert _numbers(survivor) == {"O-1", "O-2"}
    record.refresh_from_db()
    assert record.snapshot["moved"]["orders"] == [Order.objects.get(number="O-1").pk]
    # An order placed after the merge is the survivor's and stays with it.
    order_place(customer=survivor, number="O-3", lines=[{"sku": "TEA", "quantity": 1}])
    customer_unmerge(merge=record)
    assert _numbers(merged) == {"O-1"}
    assert _numbers(survivor) == {"O-2", "O-3"}


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
