"""An unexpected error inside a bulk sending task (not a provider or render error the code
expects): the delivery it happened on ends in a final state with the reason, the claims of
its group that were not handed to the provider go back to the queue at once and are sent by
the next task, and nothing is sent twice."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kizuna.messaging import lanes, services
from kizuna.messaging.channels.email import EmailSession
from kizuna.messaging.models import Delivery, DeliveryStatus
from kizuna.messaging.tests.conftest import drain_queue, make_customer

pytestmark = pytest.mark.django_db

TOTAL, GROUP, FAILING = 10, 4, 1  # the 2nd delivery of the first group of 4


@pytest.fixture
def bulk_queue() -> Iterator[Any]:
    """The bulk lane's queue with real (SQLite) storage instead of running tasks at once."""
    huey = lanes.huey_for("bulk")
    huey.immediate = False
    huey.flush()
    yield huey
    huey.flush()
    huey.immediate = True


def _queue(commit, email_channel, newsletter) -> list[int]:
    ids = [make_customer(f"c{i}@example.jp").pk for i in range(TOTAL)]
    commit(
        services.delivery_enqueue_many,
        source="campaign:5:a",
        customer_ids=ids,
        channel=email_channel,
        template=newsletter,
    )
    return list(Delivery.objects.order_by("id").values_list("pk", flat=True))


@pytest.mark.parametrize("where", ["render", "provider"])
def test_an_unexpected_error_mid_group_releases_the_rest_and_sends_nothing_twice(
    where, commit, smtp_server, email_channel, newsletter, bulk_queue, settings, monkeypatch,
    caplog,
) -> None:  # fmt: skip
    settings.KIZUNA_SEND_GROUP = GROUP
    ids = _queue(commit, email_channel, newsletter)
    failing = ids[FAILING]
    calls: Counter[int] = Counter()
    if where == "render":
        # A context function raising for one recipient: before the hand-off.
        real_render = services.render_for

        def render_for(**kwargs: Any) -> Any:
            calls[kwargs["delivery_id"]] += 1
            if kwargs["delivery_id"] == failing:
                raise ZeroDivisionError("division by zero in a context function")
            return real_render(**kwargs)

        monkeypatch.setattr(services, "render_for", render_for)
    else:
        # The server has the message, then the client code fails: after the hand-off.
        real_send = EmailSession.send

        def send(self: EmailSession, message: Any) -> Any:
            calls[message.delivery_id] += 1
            outcome = real_send(self, message)
            if message.delivery_id == failing:
                raise RuntimeError("connection object in a bad state")
            return outcome

        monkeypatch.setattr(EmailSession, "send", send)

    with caplog.at_level(logging.ERROR, logger="kizuna.messaging.services"):
        drained = drain_queue(bulk_queue)
    received = Counter(r for m in smtp_server[1].messages for r in m.recipients)

    deliveries = {d.pk: d for d in Delivery.objects.select_related("customer")}
    assert not [d for d in deliveries.values() if d.status in ("sending", "queued")]
    bad = deliveries[failing]
    if where == "render":
        assert bad.status == "failed"
        assert bad.reason == (
            "unexpected error: ZeroDivisionError: division by zero in a context function"
        )
        assert bad.customer.email not in received  # never handed over
        assert bad.customer.events.filter(type="email.failed").count() == 1
    else:
        assert bad.status == "unknown"
        assert bad.reason.startswith("unexpected error after the hand-off to the provider")
        assert "RuntimeError: connection object in a bad state" in bad.reason
        assert received[bad.customer.email] == 1  # it reached the server: never sent again
    assert calls[failing] == 1  # a final state: not tried again
    assert drained == 2  # the campaign's task, then the one it queued at once
    others = [d for pk, d in deliveries.items() if pk != failing]
    assert {d.status for d in others} == {"sent"}
    assert all(received[d.customer.email] == 1 for d in others)  # each exactly once
    assert sum(received.values()) == TOTAL - (1 if where == "render" else 0)
    assert all(d.attempts == 1 for d in others)  # a released claim gives its attempt back

    # The rest of the failing group (claimed, not handed over) went back to the queue with a
    # reason; the error is logged with the ids.
    released = set(
        DeliveryStatus.objects.filter(
            status="queued",
            reason=f"released after an unexpected error sending delivery {failing}: queued again",
        ).values_list("delivery_id", flat=True)
    )
    assert released == set(ids[FAILING + 1 : GROUP])
    logged = [r for r in caplog.records if "unexpected error sending delivery" in r.getMessage()]
    assert len(logged) == 1 and str(failing) in logged[0].getMessage()
    assert str(ids[FAILING + 1 : GROUP]) in logged[0].getMessage() and logged[0].exc_info
