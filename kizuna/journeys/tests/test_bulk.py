"""The runner's batched sends: one keyed bulk enqueue in messaging per batch (each delivery
under its step attempt's key), and a batch that fails in bulk is run again step by step."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kizuna.journeys import services
from kizuna.journeys.models import Enrolment, StepExecution
from kizuna.journeys.services import Entrant
from kizuna.journeys.tests.conftest import graph, live, make_customer
from kizuna.messaging import services as messaging
from kizuna.messaging.models import Channel, Delivery, DeliveryStatus, Template


def test_keyed_bulk_enqueue(mail: Channel, thanks: Template) -> None:
    hanako = make_customer("h@example.jp")
    taro = make_customer("t@example.jp")
    messages = [
        messaging.QueuedMessage(customer=hanako, idempotency_key="k-1", extra_context={"a": 1}),
        messaging.QueuedMessage(customer=hanako, idempotency_key="k-2"),  # same customer
        messaging.QueuedMessage(customer=taro, idempotency_key="k-3"),
    ]
    first = messaging.delivery_enqueue_keyed(
        source="journey:1", channel=mail, template=thanks, messages=messages
    )
    assert sorted(first) == ["k-1", "k-2", "k-3"] and all(new for _pk, new in first.values())
    assert Delivery.objects.get(pk=first["k-1"][0]).extra_context == {"a": 1}
    assert DeliveryStatus.objects.filter(status="queued").count() == 3
    again = messaging.delivery_enqueue_keyed(
        source="journey:1", channel=mail, template=thanks, messages=messages[:2]
    )
    assert again == {"k-1": (first["k-1"][0], False), "k-2": (first["k-2"][0], False)}
    assert Delivery.objects.count() == 3


def test_keyed_bulk_enqueue_refuses_bad_input(mail: Channel, thanks: Template) -> None:
    hanako = make_customer("h@example.jp")
    with pytest.raises(ValidationError) as caught:
        messaging.delivery_enqueue_keyed(
            source="journey:1",
            channel=mail,
            template=thanks,
            messages=[
                messaging.QueuedMessage(customer=hanako, idempotency_key="ok"),
                messaging.QueuedMessage(customer=hanako, idempotency_key=""),
            ],
        )
    assert list(caught.value.message_dict) == ["messages[1].idempotency_key"]
    assert not Delivery.objects.exists()


def test_a_batch_queues_its_sends_with_one_insert(
    mail: Channel, thanks: Template, monkeypatch: Any
) -> None:
    journey = live(graph(mail))
    customers = [make_customer(f"c{i}@example.jp") for i in range(6)]
    monkeypatch.setattr(services, "_wake", lambda: None)  # run the batch here, not on commit
    services.enrol_many(journey=journey, entrants=[Entrant(c.pk) for c in customers])
    with CaptureQueriesContext(connection) as queries:
        result = services.journeys_run_due()
    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "messaging_delivery"')]
    assert (result.claimed, result.steps) == (6, 12) and len(inserts) == 1
    for enrolment in Enrolment.objects.filter(journey=journey):
        record = StepExecution.objects.get(enrolment=enrolment, node="send")
        delivery = Delivery.objects.get(idempotency_key=f"journey:j{enrolment.pk}:send:1")
        assert record.detail == {"delivery_id": delivery.pk, "new": True}
        assert delivery.source == f"journey:{journey.pk}"
        assert delivery.extra_context["journey"] == journey.name
    assert Delivery.objects.count() == 6


def test_a_batch_that_fails_in_bulk_runs_step_by_step(
    mail: Channel, thanks: Template, monkeypatch: Any
) -> None:
    journey = live(graph(mail))
    customers = [make_customer(f"c{i}@example.jp") for i in range(3)]
    monkeypatch.setattr(services, "_wake", lambda: None)
    services.enrol_many(journey=journey, entrants=[Entrant(c.pk) for c in customers])

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("bulk insert refused")

    monkeypatch.setattr(messaging, "delivery_enqueue_keyed", broken)
    result = services.journeys_run_due()
    assert (result.claimed, result.steps, result.failed) == (3, 6, 0)
    assert Delivery.objects.count() == 3  # through delivery_enqueue, one by one
    assert StepExecution.objects.filter(kind="send").count() == 3
    assert set(Enrolment.objects.values_list("node", "state")) == {("wait", "waiting")}
