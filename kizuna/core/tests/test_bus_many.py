"""Subscribers of lists (`subscribe_many`): one call per publish of many events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from kizuna.core import events


def _event(kind: str, n: int) -> events.DomainEvent:
    return events.DomainEvent(
        type=kind, occurred_at=datetime(2026, 1, 1, tzinfo=UTC), customer_id=n, event_id=n
    )


def test_lists_once_per_publish_by_type_and_every_event_to_per_event_subscribers() -> None:
    everything: list[list[int | None]] = []
    viewed: list[list[int | None]] = []
    one_by_one: list[int | None] = []
    events.subscribe_many("*", lambda es: everything.append([e.event_id for e in es]))
    events.subscribe_many("viewed", lambda es: viewed.append([e.event_id for e in es]))
    events.subscribe("viewed", lambda e: one_by_one.append(e.event_id))
    batch = [_event("viewed", 1), _event("bought", 2), _event("viewed", 3)]
    events.dispatch_many(batch)
    assert everything == [[1, 2, 3]]
    assert viewed == [[1, 3]]
    assert one_by_one == [1, 3]
    events.dispatch(_event("viewed", 4))  # a single event: a list of one
    assert everything[-1] == [4] and viewed[-1] == [4] and one_by_one[-1] == 4


@pytest.mark.django_db(transaction=True)
def test_lists_after_commit_and_never_after_a_rollback() -> None:
    seen: list[int] = []
    events.subscribe_many("*", lambda es: seen.append(len(es)))
    with transaction.atomic():
        events.publish_many([_event("viewed", 1), _event("viewed", 2)])
        assert seen == []
    assert seen == [2]
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish_many([_event("viewed", 3)])
        raise RuntimeError("roll back")
    assert seen == [2]


def test_a_failing_list_subscriber_does_not_stop_the_others_nor_each_event() -> None:
    seen: list[int | None] = []

    def broken(_events: list[events.DomainEvent]) -> None:
        raise ValueError("boom")

    def picky(event: events.DomainEvent) -> None:
        if event.event_id == 2:
            raise ValueError("not this one")
        seen.append(event.event_id)

    events.subscribe_many("*", broken)
    events.subscribe_many("*", lambda es: events.each(es, picky))
    events.dispatch_many([_event("viewed", 1), _event("viewed", 2), _event("viewed", 3)])
    assert seen == [1, 3]  # event 2 failed alone; the broken subscriber stopped nothing


def test_unsubscribe_removes_a_list_subscriber_and_subscribing_twice_registers_once() -> None:
    seen: list[int] = []

    def handler(es: list[events.DomainEvent]) -> None:
        seen.append(len(es))

    events.subscribe_many("viewed", handler)
    events.subscribe_many("viewed", handler)
    events.dispatch_many([_event("viewed", 1)])
    assert seen == [1]
    events.unsubscribe("viewed", handler)
    events.dispatch_many([_event("viewed", 2)])
    assert seen == [1]
