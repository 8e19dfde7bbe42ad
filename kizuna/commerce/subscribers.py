"""Commerce's reactions to domain events of lower layers."""

from __future__ import annotations

from kizuna.commerce.models import Order
from kizuna.core.events import DomainEvent, subscribe
from kizuna.customers.merge import MERGED_EVENT, UNMERGED_EVENT, merge_note_moved


def orders_follow_merge(event: DomainEvent) -> None:
    """`customer.merged`: the merged customer's orders now belong to the survivor (inside
    the merge's transaction, so a failure here undoes the merge); which ones is noted in
    the merge's snapshot for an unmerge."""
    survivor, merged = event.properties["survivor_id"], event.properties["merged_id"]
    moving = list(Order.objects.filter(customer_id=merged).values_list("pk", flat=True))
    Order.objects.filter(pk__in=moving).update(customer_id=survivor)
    if event.properties.get("merge_id") and moving:
        merge_note_moved(merge_id=event.properties["merge_id"], key="orders", row_ids=moving)


def orders_follow_unmerge(event: DomainEvent) -> None:
    """`customer.unmerged`: the orders the merge moved go back to the restored customer
    (those still with the survivor), inside the unmerge's transaction."""
    survivor, merged = event.properties["survivor_id"], event.properties["merged_id"]
    moved = event.properties.get("moved", {}).get("orders", [])
    Order.objects.filter(pk__in=moved, customer_id=survivor).update(customer_id=merged)


def register() -> None:
    subscribe(MERGED_EVENT, orders_follow_merge, in_transaction=True)
    subscribe(UNMERGED_EVENT, orders_follow_unmerge, in_transaction=True)
