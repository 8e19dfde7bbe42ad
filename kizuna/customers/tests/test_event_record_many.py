"""The bulk variants used by the messaging worker: `event_record_many` behaves as
`event_record` called for each event, and `consent_ledgers` answers as `has_consent`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from kizuna.core import events as bus
from kizuna.core.timeutil import now
from kizuna.customers import selectors, services
from kizuna.customers.models import Customer, Event

# After-commit subscribers run as in production (commit_like_autocommit, conftest.py): no
# other thread or process reads here, so no real commit and flush (transaction=True) needed.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


def test_event_record_many_stores_publishes_and_is_idempotent_on_message_id() -> None:
    seen: list[tuple[str, int | None, int | None]] = []

    def listen(event: bus.DomainEvent) -> None:
        seen.append((event.properties["n"], event.customer_id, event.event_id))

    bus.subscribe("email.sent", listen)
    try:
        a = services.customer_create(data={"family_name": "山田"})
        b = services.customer_create(data={"family_name": "佐藤"})
        services.event_record(
            type="email.sent", customer=a, message_id="m-old", properties={"n": "old"}
        )
        seen.clear()
        early, late = now() - timedelta(days=3), now() + timedelta(minutes=5)
        Customer.objects.filter(pk=b.pk).update(first_seen_at=None, last_seen_at=None)
        with transaction.atomic():
            ids = services.event_record_many(
                events=[
                    services.NewEvent(
                        type="email.sent",
                        customer_id=a.pk,
                        message_id="m-1",
                        occurred_at=late,
                        properties={"n": "1"},
                    ),
                    services.NewEvent(  # stored before: skipped, not published again
                        type="email.sent",
                        customer_id=a.pk,
                        message_id="m-old",
                        properties={"n": "old again"},
                    ),
                    services.NewEvent(
                        type="email.sent",
                        customer_id=b.pk,
                        message_id="m-2",
                        occurred_at=early,
                        properties={"n": "2"},
                        source="messaging",
                    ),
                    services.NewEvent(  # repeated within the call: counted once
                        type="email.sent",
                        customer_id=b.pk,
                        message_id="m-2",
                        occurred_at=early,
                        properties={"n": "2 again"},
                    ),
                ]
            )
            assert seen == []  # published only once the transaction commits
        assert ids[1] is None and ids[3] is None
        stored = {e.message_id: e for e in Event.objects.filter(message_id__in=["m-1", "m-2"])}
        assert [ids[0], ids[2]] == [stored["m-1"].pk, stored["m-2"].pk]
        assert stored["m-2"].properties == {"n": "2"} and stored["m-2"].source == "messaging"
        assert stored["m-1"].occurred_at == late and stored["m-1"].customer_id == a.pk
        assert Event.objects.get(message_id="m-old").properties == {"n": "old"}
        assert seen == [("1", a.pk, ids[0]), ("2", b.pk, ids[2])]
        a.refresh_from_db()
        b.refresh_from_db()
        assert a.last_seen_at == late and a.first_seen_at is not None and a.first_seen_at < late
        assert b.first_seen_at == early and b.last_seen_at == early
    finally:
        bus.unsubscribe("email.sent", listen)


def test_event_record_many_validates_every_event_and_writes_nothing_on_error() -> None:
    customer = services.customer_create(data={})
    before = Event.objects.count()
    with pytest.raises(ValidationError) as error:
        services.event_record_many(
            events=[
                services.NewEvent(type="ok", customer_id=customer.pk),
                services.NewEvent(type="", customer_id=customer.pk),
                services.NewEvent(type="x"),
                services.NewEvent(type="y", customer_id=customer.pk, properties={"k": "v" * 40000}),
            ]
        )
    assert set(error.value.message_dict) == {
        "events.1.type",
        "events.2.customer",
        "events.3.properties",
    }
    assert Event.objects.count() == before
    assert services.event_record_many(events=[]) == []


def test_consent_ledgers_answer_as_has_consent() -> None:
    customers = [services.customer_create(data={}) for _ in range(4)]
    ledger = [
        (0, "email", "granted"),
        (1, "email", "granted"),
        (1, "email", "withdrawn"),  # the newest entry wins
        (2, "any", "granted"),  # "any" covers every channel
        (2, "line", "withdrawn"),
        (3, "line", "granted"),
    ]
    for index, channel, status in ledger:
        services.consent_record(
            customer=customers[index],
            purpose="marketing",
            channel=channel,
            status=status,
            source="t",
        )
    ledgers = selectors.consent_ledgers(customer_ids=[c.pk for c in customers], purpose="marketing")
    for customer in customers:
        for channel in ("email", "line", "any"):
            assert ledgers.granted(customer.pk, channel) == selectors.has_consent(
                customer=customer, purpose="marketing", channel=channel
            ), (customer.pk, channel)
    assert [ledgers.granted(c.pk, "email") for c in customers] == [True, False, True, False]
    assert ledgers.latest(customers[3].pk, "email") is None
    status, recorded_at = ledgers.latest(customers[2].pk, "line") or ("", None)
    assert status == "withdrawn" and recorded_at is not None
