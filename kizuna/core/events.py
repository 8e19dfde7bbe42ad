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
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

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
ManySubscriber = Callable[[Sequence[DomainEvent]], None]


class LazyEvents(Sequence[DomainEvent]):
    """The events of one `publish_many`, their types known up front and each event built
    (`build(index)`) the first time it is read, then kept. A processed chunk of thousands
    of ingested events then costs the events some subscriber reads (those of a type a
    journey waits for, the first one that asks for a segment refresh), not an object and
    parsed properties per event. Subscribers that pick events by type use `of_types`."""

    __slots__ = ("_build", "_built", "_positions", "_types")

    def __init__(self, types: Sequence[str], build: Callable[[int], DomainEvent]) -> None:
        self._types = types
        self._build = build
        self._built: list[DomainEvent | None] = [None] * len(types)
        self._positions: dict[str, list[int]] | None = None

    @property
    def types(self) -> Sequence[str]:
        return self._types

    def positions(self) -> dict[str, list[int]]:
        """Each type's events, as indices in order."""
        if self._positions is None:
            self._positions = _group(self._types)
        return self._positions

    def __len__(self) -> int:
        return len(self._types)

    @overload
    def __getitem__(self, index: int) -> DomainEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[DomainEvent]: ...

    def __getitem__(self, index: int | slice) -> DomainEvent | list[DomainEvent]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._types)))]
        event = self._built[index]
        if event is None:
            event = self._built[index] = self._build(index % len(self._types))
        return event

    def __iter__(self) -> Iterator[DomainEvent]:
        for index in range(len(self._types)):
            yield self[index]

    def subset(self, indices: Sequence[int]) -> LazyEvents:
        """The events at these indices (in this order), still built when read."""
        types = self._types
        return LazyEvents([types[i] for i in indices], lambda j: self[indices[j]])


def _group(types: Sequence[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for index, kind in enumerate(types):
        at = positions.get(kind)
        if at is None:
            positions[kind] = [index]
        else:
            at.append(index)
    return positions


def _positions(events: Sequence[DomainEvent]) -> dict[str, list[int]]:
    if isinstance(events, LazyEvents):
        return events.positions()
    return _group([event.type for event in events])


def _subset(events: Sequence[DomainEvent], indices: Sequence[int]) -> Sequence[DomainEvent]:
    if len(indices) == len(events):
        return events
    if isinstance(events, LazyEvents):
        return events.subset(indices)
    return [events[i] for i in indices]


def of_types(events: Sequence[DomainEvent], wanted: Collection[str]) -> list[DomainEvent]:
    """The events of the wanted types, in order; of `LazyEvents` only those are built."""
    positions = _positions(events)
    picked = [positions[kind] for kind in wanted if kind in positions]
    if not picked:
        return []
    indices = picked[0] if len(picked) == 1 else sorted(i for at in picked for i in at)
    return [events[i] for i in indices]


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


def each(events: Sequence[DomainEvent], handler: Subscriber) -> None:
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


def publish_many(events: Sequence[DomainEvent]) -> None:
    """`publish` for many events at once (a processed chunk of ingested events; a list or
    `LazyEvents`): the same in-transaction calls, in order, and one after-commit callback
    that dispatches them in order (instead of one callback per event)."""
    if not events:
        return
    if _in_transaction:
        positions = _positions(events)
        held = [positions[kind] for kind in positions if _in_transaction.get(kind)]
        for index in sorted(i for at in held for i in at):
            event = events[index]
            for handler in list(_in_transaction.get(event.type, [])):
                handler(event)
    transaction.on_commit(lambda: dispatch_many(events))


def dispatch_many(events: Sequence[DomainEvent]) -> None:
    """Per-event subscribers get each event in order, as from `dispatch`; then subscribers
    of lists get theirs once (a type's subscriber the events of that type, in order). Of
    `LazyEvents`, only the events handed to a per-event subscriber are built here."""
    if not events:
        return
    wildcard = _subscribers.get(WILDCARD, [])
    positions = _positions(events)
    typed = {kind: _subscribers.get(kind, []) for kind in positions}
    one_wildcard = [h for h in wildcard if not isinstance(h, _Many)]
    one_typed = {k: [h for h in hs if not isinstance(h, _Many)] for k, hs in typed.items()}
    if one_wildcard:
        for event in events:
            for handler in [*one_typed[event.type], *one_wildcard]:
                _call(handler, event)
    elif any(one_typed.values()):
        held = [positions[kind] for kind, handlers in one_typed.items() if handlers]
        for index in sorted(i for at in held for i in at):
            event = events[index]
            for handler in one_typed[event.type]:
                _call(handler, event)
    for kind, handlers in typed.items():
        many = [h for h in handlers if isinstance(h, _Many)]
        if many:
            of_kind = _subset(events, positions[kind])
            for handler in many:
                _call_many(handler, of_kind)
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


def _call_many(many: _Many, events: Sequence[DomainEvent]) -> None:
    try:
        many.handler(events)
    except Exception:
        logger.exception("subscriber %r failed for %d events", many.handler, len(events))
