"""The domain-event bus: lower apps publish past-tense events, higher apps subscribe.

Publishing inside a transaction delivers to subscribers only after it commits, so a
rolled-back write never triggers a journey, a points award or an email.

A few reactions must be part of the very write that caused them (a customer merge moving
the orders and points of the merged customer): those subscribe with `in_transaction=True`,
run immediately inside the publisher's transaction, and an exception from them rolls the
whole write back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    """One fact that happened, as carried on the bus (a row of the event stream)."""

    type: str
    occurred_at: datetime
    customer_id: int | None = None
    event_id: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    source: str = "kizuna"
    # The stream's unique message id, where the publisher has it but not the row id (the
    # tracking worker's set-based insert): what subscribers key their own idempotency on.
    message_id: str | None = None


Subscriber = Callable[[DomainEvent], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)
_in_transaction: dict[str, list[Subscriber]] = defaultdict(list)
WILDCARD = "*"


def subscribe(event_type: str, handler: Subscriber, *, in_transaction: bool = False) -> None:
    """Register `handler` for `event_type` ("*" for every type, after-commit only).
    Idempotent."""
    if in_transaction and event_type == WILDCARD:
        raise ValueError("in-transaction subscribers must name their event type")
    handlers = (_in_transaction if in_transaction else _subscribers)[event_type]
    if handler not in handlers:
        handlers.append(handler)


def unsubscribe(event_type: str, handler: Subscriber) -> None:
    for registry in (_subscribers, _in_transaction):
        handlers = registry.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)


def publish(event: DomainEvent) -> None:
    """Run in-transaction subscribers now, and deliver to the others once the current
    transaction commits."""
    for handler in list(_in_transaction.get(event.type, [])):
        handler(event)
    transaction.on_commit(lambda: dispatch(event))


def publish_many(events: list[DomainEvent]) -> None:
    """`publish` for many events at once (a processed chunk of ingested events): the same
    in-transaction calls, and one after-commit callback that dispatches them in order
    (instead of one callback per event)."""
    for event in events:
        for handler in list(_in_transaction.get(event.type, [])):
            handler(event)
    if events:
        transaction.on_commit(lambda: dispatch_many(events))


def dispatch_many(events: list[DomainEvent]) -> None:
    for event in events:
        dispatch(event)


def dispatch(event: DomainEvent) -> None:
    for handler in [*_subscribers.get(event.type, []), *_subscribers.get(WILDCARD, [])]:
        try:
            handler(event)
        except Exception:
            # One failing subscriber must not stop the others; the event itself is stored.
            logger.exception("subscriber %r failed for %s", handler, event.type)
