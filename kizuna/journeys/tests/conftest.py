"""Fixtures: messaging's real loopback SMTP server and an email channel/template, customers
made through services, and a small valid graph to vary."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation

from kizuna.customers import services as customer_services
from kizuna.customers.models import Customer
from kizuna.journeys import services
from kizuna.journeys.models import Journey
from kizuna.messaging import services as messaging
from kizuna.messaging.models import Channel, Template
from kizuna.messaging.tests.conftest import (  # noqa: F401  (fixtures)
    _daytime,
    commit,
    dkim_key,
    email_channel,
    smtp_server,
)


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


def make_customer(email: str, *, opt_in: bool = True, **data: Any) -> Customer:
    customer = customer_services.customer_create(
        data={"family_name": "山田", "given_name": email.split("@")[0], "email": email, **data}
    )
    if opt_in:
        customer_services.consent_record(
            customer=customer, purpose="marketing", channel="email", status="granted", source="t"
        )
    return customer


@pytest.fixture
def thanks(db: None) -> Template:
    return messaging.template_save(
        slug="thanks",
        name="Thanks",
        channel_kind="email",
        body_format="html",
        variants={
            "ja": {"subject": "{{ customer.name }}様 ありがとう", "body": "<p>ありがとう</p>"}
        },
    )


@pytest.fixture
def mail(db: None, email_channel: Channel) -> Channel:  # noqa: F811
    return email_channel


BASE: dict[str, Any] = {
    "trigger": {"type": "event", "event": "order.placed"},
    "entry": {"rule": "once"},
    "start": "send",
    "nodes": [
        {"id": "send", "type": "send", "channel": "CHANNEL", "template": "thanks", "next": "wait"},
        {"id": "wait", "type": "wait", "duration": "3d", "next": "points"},
        {"id": "points", "type": "award_points", "points": 50, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def graph(channel: Channel, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    for node in out["nodes"]:
        if node.get("channel") == "CHANNEL":
            node["channel"] = channel.name
    out.update(changes)
    return out


def live(data: dict[str, Any], name: str = "Follow-up") -> Journey:
    journey = services.journey_save(data={"name": name, "graph": data})
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey
