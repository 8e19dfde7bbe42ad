"""Commerce's reactions to domain events of lower layers."""

from __future__ import annotations

from kizuna.commerce.models import Order
from kizuna.core.events import DomainEvent, subscribe


def orders_follow_merge(event: DomainEvent) -> None:
    """`customer.merged`: the merged customer's orders now belong to the survivor (inside
    the merge's transaction, so a failure here undoes the merge)."""
    survivor, merged = event.properties["survivor_id"], event.properties["merged_id"]
    Order.objects.filter(customer_id=merged).update(customer_id=survivor)


def register() -> None:
    subscribe("customer.merged", orders_follow_merge, in_transaction=True)
