"""Subscribers of lists (`subscribe_many`): one call per publish of many events."""

from __future__ import annotations

from collections.abc import Sequence
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

    def broken(_events: Sequence[events.DomainEvent]) -> None:
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

    def handler(es: Sequence[events.DomainEvent]) -> None:
        seen.append(len(es))

    events.subscribe_many("viewed", handler)
    events.subscribe_many("viewed", handler)
    events.dispatch_many([_event("viewed", 1)])
    assert seen == [1]
    events.unsubscribe("viewed", handler)
    events.dispatch_many([_event("viewed", 2)])
    assert seen == [1]


def _lazy(kinds: list[str], built: list[int]) -> events.LazyEvents:
    def build(index: int) -> events.DomainEvent:
        built.append(index)
        return _event(kinds[index], index)

    return events.LazyEvents(kinds, build)


def test_lazy_events_read_as_a_list_and_are_built_once_when_read() -> None:
    built: list[int] = []
    lazy = _lazy(["viewed", "bought", "viewed"], built)
    assert len(lazy) == 3 and built == []
    assert lazy[1].type == "bought" and lazy[-1].event_id == 2
    assert [e.event_id for e in lazy[0:2]] == [0, 1]
    assert [e.event_id for e in lazy] == [0, 1, 2]
    assert lazy[1] is lazy[1]
    assert sorted(built) == [0, 1, 2]  # each built once, whatever was read how often
    assert [e.event_id for e in events.of_types(lazy, {"viewed"})] == [0, 2]
    assert events.of_types([_event("a", 1), _event("b", 2)], ["b", "x"])[0].event_id == 2


def test_dispatching_lazy_events_builds_only_those_a_subscriber_reads() -> None:
    events._subscribers.clear()  # the apps' own subscribers read events too (restored after)
    built: list[int] = []
    kinds = ["viewed", "bought", "viewed", "refunded", "bought", "viewed"]
    bought: list[list[int | None]] = []
    refunds: list[int | None] = []
    picked: list[list[int | None]] = []
    events.subscribe_many("bought", lambda es: bought.append([e.event_id for e in es]))
    events.subscribe("refunded", lambda e: refunds.append(e.event_id))
    events.subscribe_many(
        "*", lambda es: picked.append([e.event_id for e in events.of_types(es, ["refunded"])])
    )
    events.dispatch_many(_lazy(kinds, built))
    assert bought == [[1, 4]] and refunds == [3] and picked == [[3]]
    assert sorted(built) == [1, 3, 4]  # no "viewed" event was ever made


@pytest.mark.django_db(transaction=True)
def test_publishing_lazy_events_runs_in_transaction_subscribers_in_order() -> None:
    events._subscribers.clear()  # the apps' own subscribers read events too (restored after)
    events._in_transaction.clear()
    built: list[int] = []
    inside: list[int | None] = []
    after: list[int] = []
    events.subscribe("bought", lambda e: inside.append(e.event_id), in_transaction=True)
    events.subscribe("refunded", lambda e: inside.append(e.event_id), in_transaction=True)
    events.subscribe_many("*", lambda es: after.append(len(es)))
    with transaction.atomic():
        events.publish_many(_lazy(["refunded", "viewed", "bought", "refunded"], built))
        assert inside == [0, 2, 3] and after == []
    assert after == [4]
    assert sorted(built) == [0, 2, 3]
