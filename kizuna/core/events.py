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
ManySubscriber = Callable[[list[DomainEvent]], None]


@dataclass(frozen=True)
class _Many:
    """A subscriber that takes the events of one publish at once (a processed chunk of
    thousands of ingested events): it can filter them by type once, not per event."""

    handler: ManySubscriber

    def __call__(self, event: DomainEvent) -> None:
        self.handler([event])


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


def subscribe_many(event_type: str, handler: ManySubscriber) -> None:
    """Register `handler` for `event_type` ("*": every type), after commit, called with a
    list: all the events of one `publish_many` of that type (one event for `publish`).
    It should isolate its own per-event failures (`each`). Idempotent."""
    subscribe(event_type, _Many(handler))


def each(events: list[DomainEvent], handler: Subscriber) -> None:
    """`handler` for every event, one failing event not stopping the others (as the bus
    does for per-event subscribers)."""
    for event in events:
        _call(handler, event)


def unsubscribe(event_type: str, handler: Subscriber | ManySubscriber) -> None:
    """Undo `subscribe` or `subscribe_many` of this handler."""
    for registry in (_subscribers, _in_transaction):
        handlers = registry.get(event_type, [])
        registered: list[Any] = [handler, _Many(handler)]  # type: ignore[arg-type]
        for candidate in registered:
            if candidate in handlers:
                handlers.remove(candidate)


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
    """Per-event subscribers get each event in order, as from `dispatch`; then subscribers
    of lists get theirs once (a type's subscriber the events of that type, in order)."""
    if not events:
        return
    wildcard = _subscribers.get(WILDCARD, [])
    by_type: dict[str, list[DomainEvent]] = {}
    for event in events:
        of_type = by_type.get(event.type)
        if of_type is None:
            by_type[event.type] = [event]
        else:
            of_type.append(event)
    typed = {kind: _subscribers.get(kind, []) for kind in by_type}
    one_wildcard = [h for h in wildcard if not isinstance(h, _Many)]
    if one_wildcard or any(typed.values()):
        one_typed = {k: [h for h in hs if not isinstance(h, _Many)] for k, hs in typed.items()}
        for event in events:
            for handler in [*one_typed[event.type], *one_wildcard]:
                _call(handler, event)
    for kind, handlers in typed.items():
        for handler in handlers:
            if isinstance(handler, _Many):
                _call_many(handler, by_type[kind])
    for handler in wildcard:
        if isinstance(handler, _Many):
            _call_many(handler, events)


def dispatch(event: DomainEvent) -> None:
    for handler in [*_subscribers.get(event.type, []), *_subscribers.get(WILDCARD, [])]:
        _call(handler, event)


def _call(handler: Subscriber, event: DomainEvent) -> None:
    try:
        handler(event)
    except Exception:
        # One failing subscriber must not stop the others; the event itself is stored.
        logger.exception("subscriber %r failed for %s", handler, event.type)


def _call_many(many: _Many, events: list[DomainEvent]) -> None:
    try:
        many.handler(events)
    except Exception:
        logger.exception("subscriber %r failed for %d events", many.handler, len(events))
