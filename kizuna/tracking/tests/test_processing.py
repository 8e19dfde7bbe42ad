"""The worker's processing of inbox batches (`inbox_process` in this process): the bus events
carry the stored rows' ids, first/last seen widen in one statement per chunk, unchanged
profiles are not rewritten, identity look-ups take thousands of values at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kizuna.core import events as bus
from kizuna.core.timeutil import now
from kizuna.customers.identity_resolution import Subject, subjects_resolve
from kizuna.customers.models import Customer, Event, Identity
from kizuna.tracking import protocol, services
from kizuna.tracking.services import inbox_process, source_create

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _accept(*messages: dict[str, Any]) -> None:
    source = source_create(name=f"S{now().timestamp()}").source
    received = now()
    accepted = protocol.accept({"batch": list(messages)}, kind="batch", received_at=received)
    assert not accepted.errors, accepted.errors
    services.inbox_accept(source_id=source.id, received_at=received, accepted=accepted)


@pytest.fixture
def published() -> Iterator[list[bus.DomainEvent]]:
    seen: list[bus.DomainEvent] = []
    for kind in ("Viewed", "identify"):
        bus.subscribe(kind, seen.append, in_transaction=True)
    yield seen
    for kind in ("Viewed", "identify"):
        bus.unsubscribe(kind, seen.append)


def _track(message_id: str, user: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Viewed",
        "messageId": message_id,
        "timestamp": at.isoformat(),  # no sentAt: the client's time is kept as sent
    }


def test_bus_events_carry_the_stored_rows_ids(published: list[bus.DomainEvent]) -> None:
    _accept(*(_track(f"m-{i}", f"u-{i % 3}", T0 + timedelta(minutes=i)) for i in range(6)))
    stats = inbox_process()
    assert stats.events_added == 6
    stored = dict(Event.objects.filter(type="Viewed").values_list("message_id", "pk"))
    assert len(stored) == 6
    assert {(e.message_id, e.event_id) for e in published} == set(stored.items())
    # A retried batch publishes nothing more.
    _accept(*(_track(f"m-{i}", f"u-{i % 3}", T0 + timedelta(minutes=i)) for i in range(6)))
    assert inbox_process().duplicates == 6
    assert len(published) == 6


def test_a_message_stored_between_the_check_and_the_insert_is_not_published(
    published: list[bus.DomainEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker storing the same message id a moment earlier (two batches of one
    retried message): the insert skips it, and only the rows inserted here are published."""
    _accept(_track("m-1", "u-1", T0))
    inbox_process()
    published.clear()
    real, calls = services._stored_message_ids, []

    def stale_once(ids: Any) -> set[str]:  # the chunk's check misses m-1; later ones see it
        calls.append(ids)
        return set() if len(calls) == 1 else real(ids)

    monkeypatch.setattr(services, "_stored_message_ids", stale_once)
    _accept(_track("m-1", "u-1", T0), _track("m-2", "u-1", T0 + timedelta(minutes=1)))
    stats = inbox_process()
    assert stats.events_added == 1 and stats.duplicates == 1
    assert [(e.message_id, e.event_id) for e in published] == [
        ("m-2", Event.objects.get(message_id="m-2").pk)
    ]
    assert Event.objects.filter(type="Viewed").count() == 2


def test_first_and_last_seen_widen_to_cover_each_chunk() -> None:
    _accept(_track("a-1", "u-a", T0), _track("b-1", "u-b", T0))
    inbox_process()
    a = Customer.objects.get(identities__kind="external", identities__value="u-a")
    b = Customer.objects.get(identities__kind="external", identities__value="u-b")
    assert (a.first_seen_at, a.last_seen_at) == (T0, T0)
    # u-a: one earlier and one later event; u-b: one inside its span (nothing to change).
    _accept(
        _track("a-2", "u-a", T0 - timedelta(hours=2)),
        _track("a-3", "u-a", T0 + timedelta(hours=3)),
        _track("a-4", "u-a", T0 + timedelta(hours=1)),
        _track("b-2", "u-b", T0),
    )
    inbox_process()
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.first_seen_at, a.last_seen_at) == (T0 - timedelta(hours=2), T0 + timedelta(hours=3))
    assert (b.first_seen_at, b.last_seen_at) == (T0, T0)


def test_an_identify_that_changes_nothing_does_not_rewrite_the_profile() -> None:
    traits = {"email": "hanako@example.com", "firstName": "花子", "lastName": "山田"}
    _accept({"type": "identify", "userId": "u-1", "messageId": "i-1", "traits": traits})
    inbox_process()
    customer = Customer.objects.get(identities__kind="external", identities__value="u-1")
    _accept({"type": "identify", "userId": "u-1", "messageId": "i-2", "traits": traits})
    inbox_process()
    same = Customer.objects.get(pk=customer.pk)
    assert same.updated_at == customer.updated_at
    assert (same.given_name, same.family_name) == ("花子", "山田")
    changed = {**traits, "firstName": "華子"}
    _accept({"type": "identify", "userId": "u-1", "messageId": "i-3", "traits": changed})
    inbox_process()
    after = Customer.objects.get(pk=customer.pk)
    assert after.given_name == "華子" and after.updated_at > customer.updated_at


def test_identity_lookups_take_thousands_of_values_at_once() -> None:
    """Past SQLite's old 999-parameter limit: 3,000 user ids resolved in one call, the
    known ones to their customers, the new ones to new customers."""
    first = subjects_resolve(
        [Subject(user_id=f"u-{i}") for i in range(0, 3000, 2)], source="test", at=T0
    )
    assert first.created == 1500
    again = subjects_resolve([Subject(user_id=f"u-{i}") for i in range(3000)], source="test", at=T0)
    assert again.created == 1500
    owners = dict(Identity.objects.filter(kind="external").values_list("value", "customer_id"))
    assert again.customer_ids == [owners[f"u-{i}"] for i in range(3000)]
    assert again.customer_ids[::2] == first.customer_ids


def test_anonymous_events_before_an_identify_in_the_same_chunk_join_the_customer() -> None:
    _accept(
        {"type": "track", "anonymousId": "a-1", "event": "Viewed", "messageId": "t-0"},
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "p-0"},
    )
    inbox_process()  # stored anonymous: stitched by the identify below
    _accept(
        {"type": "track", "anonymousId": "a-1", "event": "Viewed", "messageId": "t-1"},
        {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "i-1"},
        {"type": "track", "anonymousId": "a-1", "event": "Viewed", "messageId": "t-2"},
        {"type": "track", "anonymousId": "a-2", "event": "Viewed", "messageId": "t-3"},
    )
    inbox_process()
    customer = Customer.objects.get(identities__kind="external", identities__value="u-1")
    stream = Event.objects.exclude(type="customer.created")
    owners = dict(stream.values_list("message_id", "customer"))
    assert owners == {
        "t-0": customer.pk,
        "p-0": customer.pk,
        "t-1": customer.pk,
        "i-1": customer.pk,
        "t-2": customer.pk,
        "t-3": None,  # another browser, never identified
    }


def test_times_and_json_are_stored_as_the_orm_stores_them() -> None:
    """The worker writes the times and JSON in the database's own form (on SQLite the UTC
    text, without adapting each value again): read back they are the instants and values
    sent, and on SQLite the stored text is the one the ORM writes (range queries compare
    it with ORM-adapted values), whether the client's time has a fraction, none, or another
    offset; first/last seen cover all of them."""
    from django.db import connection

    jst = timezone(timedelta(hours=9))
    sent = {
        "m-frac": T0 + timedelta(microseconds=123456),
        "m-whole": T0 - timedelta(hours=5),
        "m-jst": (T0 + timedelta(hours=7)).astimezone(jst),  # "+09:00" text
    }
    _accept(
        *(
            {
                **_track(message_id, "u-times", moment),
                "properties": {"名前": "花子", "nested": {"n": [1, 2.5, None]}, "n": 2**62},
                "context": {"ip": "127.0.0.1"},
            }
            for message_id, moment in sent.items()
        )
    )
    assert inbox_process().events_added == 3
    stored = {e.message_id: e for e in Event.objects.filter(message_id__in=sent)}
    for message_id, moment in sent.items():
        event = stored[message_id]
        assert event.occurred_at == moment
        assert event.properties == {"名前": "花子", "nested": {"n": [1, 2.5, None]}, "n": 2**62}
        assert event.context["ip"] == "127.0.0.1"
        assert event.context["_segment"]["userId"] == "u-times"
    assert Event.objects.filter(occurred_at__gte=T0, message_id__in=sent).count() == 2
    customer = Customer.objects.get(identities__kind="external", identities__value="u-times")
    assert (customer.first_seen_at, customer.last_seen_at) == (
        T0 - timedelta(hours=5),
        T0 + timedelta(hours=7),
    )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                # As text (the connection would convert a datetime column's value).
                "SELECT message_id, CAST(occurred_at AS TEXT), CAST(received_at AS TEXT) "
                "FROM customers_event "
                "WHERE message_id IN ('m-frac', 'm-whole', 'm-jst')"
            )
            rows = cursor.fetchall()
        adapt = connection.ops.adapt_datetimefield_value
        for message_id, occurred, received in rows:
            assert occurred == str(adapt(sent[message_id]))
            assert received == str(adapt(stored[message_id].received_at))


def test_repeats_of_a_user_in_a_chunk_resolve_as_each_alone_would() -> None:
    """The worker resolves each (userId, anonymousId) without traits once per chunk: every
    message of it gets the customer that resolving it at its own place would give (also
    around an identify that links an anonymous id between two of them)."""
    _accept(
        {"type": "track", "anonymousId": "a-9", "event": "Viewed", "messageId": "r-1"},
        _track("r-2", "u-1", T0),
        {
            "type": "identify",
            "userId": "u-2",
            "anonymousId": "a-9",
            "traits": {"email": "taro@example.com"},
            "messageId": "r-3",
        },
        {"type": "track", "anonymousId": "a-9", "event": "Viewed", "messageId": "r-4"},
        _track("r-5", "u-1", T0 + timedelta(minutes=1)),
        {**_track("r-6", "u-1", T0), "anonymousId": "a-7"},
        {"type": "track", "anonymousId": "a-7", "event": "Viewed", "messageId": "r-7"},
        {"type": "track", "anonymousId": "a-5", "event": "Viewed", "messageId": "r-8"},
    )
    stats = inbox_process()
    assert (stats.events_added, stats.customers_created) == (8, 2)
    owners = dict(Identity.objects.values_list("value", "customer_id"))
    assert owners["a-9"] == owners["u-2"] == owners["taro@example.com"] != owners["u-1"]
    assert owners["a-7"] == owners["u-1"]
    events = dict(
        Event.objects.filter(message_id__startswith="r-").values_list("message_id", "customer")
    )
    c1, c2 = owners["u-1"], owners["u-2"]
    assert events == {
        "r-1": c2,  # anonymous when it came; its anonymous id linked by r-3
        "r-2": c1,
        "r-3": c2,
        "r-4": c2,
        "r-5": c1,
        "r-6": c1,
        "r-7": c1,  # a-7 linked to u-1 by r-6
        "r-8": None,
    }


def test_batches_being_marked_are_left_out_and_taken_later() -> None:
    """A drain hands processed batches to a marking thread; until they are marked, its next
    chunks and the process's other drains leave them out (`skip`)."""
    from kizuna.tracking.models import InboxBatch

    for n in range(3):
        _accept(_track(f"mark-{n}", "u-1", T0 + timedelta(minutes=n)))
    first, second, _third = InboxBatch.objects.order_by("id").values_list("id", flat=True)
    stats = inbox_process(skip={first, second})
    assert (stats.batches, stats.events_added) == (1, 1)
    assert list(
        Event.objects.filter(message_id__startswith="mark-").values_list("message_id", flat=True)
    ) == ["mark-2"]
    stats = inbox_process()
    assert (stats.batches, stats.events_added) == (2, 2)
    assert not InboxBatch.objects.filter(processed_at__isnull=True).exists()


def test_only_the_batches_taken_have_their_payload_read() -> None:
    """With a backlog, the payloads of the batches not taken by this chunk stay unread."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from kizuna.tracking.models import InboxBatch

    for n in range(3):
        _accept(*(_track(f"read-{n}-{i}", "u-1", T0 + timedelta(minutes=i)) for i in range(2)))
    first, second, _third = InboxBatch.objects.order_by("id").values_list("id", flat=True)

    with CaptureQueriesContext(connection) as queries:
        rows = services._pending(3, "default", ())
    assert [row[0] for row in rows] == [first, second]  # 2 + 2 messages reach 3
    assert [row[1] for row in rows] == [2, 2]
    reading = [q["sql"] for q in queries.captured_queries if "payload" in q["sql"]]
    assert len(reading) == 1
    in_list = re.search(r"IN \(([^)]*)\)", reading[0])
    assert in_list is not None
    assert {int(v) for v in in_list.group(1).split(",")} == {first, second}


def test_batches_stored_as_message_objects_are_processed_as_their_rows() -> None:
    """Inbox batches stored before the row form (a JSON array of the normalised messages,
    times with the client's offset) are still processed, into the same events as rows."""
    from kizuna.tracking.models import InboxBatch

    jst = timezone(timedelta(hours=9))
    source = source_create(name="Old form").source
    received = now()
    kinds = [
        {"type": "identify", "traits": {"email": "old@example.com", "firstName": "花子"}},
        {"type": "track", "event": " Viewed ", "properties": {"sku": "A-1"}},
        {"type": "page", "name": "ホーム", "properties": {"path": "/"}},
        {"type": "group", "groupId": "g-1", "traits": {"plan": "pro"}},
    ]
    stored: dict[str, dict[str, Any]] = {}
    for form in ("rows", "objects"):
        batch = [
            {
                **kind,
                "userId": f"u-{form}",
                "messageId": f"{form}-{i}",
                "timestamp": (T0 + timedelta(minutes=i)).astimezone(jst).isoformat(),
                "context": {"ip": "127.0.0.1"},
            }
            for i, kind in enumerate(kinds)
        ]
        accepted = protocol.accept({"batch": batch}, kind="batch", received_at=received)
        payload = accepted.payload
        if form == "objects":
            for message, sent in zip(accepted.messages, batch, strict=True):
                message["timestamp"] = sent["timestamp"]  # as the old accept kept it
            payload = protocol.dumps(accepted.messages).decode()
            assert isinstance(protocol.loads(payload)[0], dict)
        InboxBatch.objects.create(
            source=source, received_at=received, message_count=len(batch), payload=payload
        )
    assert inbox_process().events_added == 2 * len(kinds)
    for event in Event.objects.filter(source=source.slug):
        form, index = event.message_id.split("-")
        stored.setdefault(index, {})[form] = {
            "type": event.type,
            "occurred_at": event.occurred_at,
            "received_at": event.received_at,
            "properties": event.properties,
            "context": {**event.context, "_segment": {**event.context["_segment"], "userId": ""}},
        }
    assert len(stored) == len(kinds)
    for index, forms in stored.items():
        assert forms["rows"] == forms["objects"], index
        assert forms["rows"]["occurred_at"] == T0 + timedelta(minutes=int(index))
    assert [stored[str(i)]["rows"]["type"] for i in range(4)] == [
        "identify",
        "Viewed",
        "page",
        "group",
    ]
    assert stored["2"]["rows"]["properties"] == {"path": "/", "name": "ホーム"}
    # The second identify's email names the first one's customer: one person.
    owners = set(Event.objects.filter(source=source.slug).values_list("customer", flat=True))
    assert len(owners) == 1 and None not in owners
    customer = Customer.objects.get(pk=owners.pop())
    assert (customer.first_seen_at, customer.last_seen_at) == (T0, T0 + timedelta(minutes=3))


def test_first_and_last_seen_of_old_form_times_with_another_offset_are_right() -> None:
    """First/last seen are widened on the times' UTC text: an old-form batch's JST time
    is converted first (as given, 20:00+09:00, an hour before T0, sorts after T0's
    12:00+00:00 and would be taken for the later one)."""
    from kizuna.tracking.models import InboxBatch

    jst = timezone(timedelta(hours=9))
    source = source_create(name="Mixed offsets").source
    received = now()
    _accept(_track("new-1", "u-mixed", T0))
    old = protocol.accept(
        {"batch": [_track("old-1", "u-mixed", T0 - timedelta(hours=1))]},
        kind="batch",
        received_at=received,
    ).messages
    old[0]["timestamp"] = (T0 - timedelta(hours=1)).astimezone(jst).isoformat()
    InboxBatch.objects.create(
        source=source, received_at=received, message_count=1, payload=protocol.dumps(old).decode()
    )
    assert inbox_process().events_added == 2
    customer = Customer.objects.get(identities__kind="external", identities__value="u-mixed")
    assert (customer.first_seen_at, customer.last_seen_at) == (T0 - timedelta(hours=1), T0)


def _stored_id_checks(queries: Any) -> int:
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT message_id FROM") and "IN (SELECT" in q["sql"]
    )


def test_a_chunk_of_new_messages_is_written_without_checking_its_ids_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setitem(services._dedup_first, "chunks", 0)
    _accept(*(_track(f"n-{i}", f"u-{i}", T0) for i in range(3)))
    with CaptureQueriesContext(connection) as queries:
        stats = inbox_process()
    assert (stats.events_added, stats.duplicates) == (3, 0)
    assert _stored_id_checks(queries) == 0


def test_a_retried_identify_in_a_chunk_written_as_new_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunk is written as if none of its ids were stored; the insert finds the retried
    identify stored, so all of it is undone (the old traits it had applied, the customer a
    new message of it had created) and written again without the retry."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def identify(message_id: str, name: str) -> dict[str, Any]:
        return {
            "type": "identify",
            "userId": "u-retry",
            "traits": {"firstName": name},
            "messageId": message_id,
        }

    _accept(identify("i-1", "花子"))
    _accept(identify("i-2", "陽菜"))
    inbox_process()
    customer = Customer.objects.get(identities__value="u-retry")
    assert customer.given_name == "陽菜"
    monkeypatch.setitem(services._dedup_first, "chunks", 0)
    _accept(identify("i-1", "花子"), _track("t-new", "u-new", T0))  # a retried batch and more
    before = Customer.objects.count()
    with CaptureQueriesContext(connection) as queries:
        stats = inbox_process()
    assert (stats.events_added, stats.duplicates, stats.customers_created) == (1, 1, 1)
    assert _stored_id_checks(queries) == 1  # checked after the first try found the retry
    customer.refresh_from_db()
    assert customer.given_name == "陽菜"  # the retried identify's old traits: not applied
    assert Customer.objects.count() == before + 1
    assert Event.objects.filter(message_id__in=["i-1", "i-2", "t-new"]).count() == 3
    assert services._dedup_first["chunks"] == services.DEDUP_FIRST_AFTER_A_RETRY
    _accept(_track("t-next", "u-new", T0))
    with CaptureQueriesContext(connection) as queries:
        inbox_process()
    assert _stored_id_checks(queries) == 1  # the next chunks: checked first
