"""Known event types: what a trigger, goal or wait step may name.

A type is known when it is built in (published by kizuna's own apps, listed here), was
registered by an app at start-up (`register_event_type`), or has been seen in the event
stream (ingested `Product Viewed`, `Cart Abandoned` ...). A typo in a trigger is refused.
"""

from __future__ import annotations

from kizuna.customers.models import Event

BUILTIN = {
    "customer.created",
    "customer.updated",
    "customer.merged",
    "customer.at_risk",
    "identity.linked",
    "order.placed",
    "order.refunded",
    "points.earned",
    "points.expired",
    "tier.changed",
    "coupon.issued",
    "coupon.redeemed",
    "email.sent",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.refused",
    "message.unsubscribed",
    "preferences.updated",
    "line.followed",
    "line.unfollowed",
    "line.linked",
    "line.message",
    "line.postback",
    "line.sent",
    "segment.entered",
    "segment.left",
    "survey.answered",
    "product.viewed",
    "cart.abandoned",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Cart Abandoned",
    "Checkout Started",
    "Order Completed",
}
_registered: set[str] = set()


def register_event_type(event_type: str) -> None:
    _registered.add(event_type)


def is_known(event_type: str) -> bool:
    if event_type in BUILTIN or event_type in _registered:
        return True
    return Event.objects.filter(type=event_type).exists()
