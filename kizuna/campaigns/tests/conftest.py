"""Fixtures: messaging's real loopback servers (aiosmtpd, a LINE-shaped HTTP server) and
channels/templates, plus segments and opted-in customers made through services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation

from kizuna.campaigns import services
from kizuna.campaigns.models import Campaign
from kizuna.customers import services as customer_services
from kizuna.customers.models import Customer
from kizuna.messaging import services as messaging
from kizuna.messaging.models import Channel, Template
from kizuna.messaging.tests.conftest import (  # noqa: F401  (fixtures)
    NEWSLETTER_MJML,
    _daytime,
    commit,
    dkim_key,
    email_channel,
    follow,
    line_api,
    line_channel,
    line_template,
    newsletter,
    smtp_server,
)
from kizuna.segments.models import Segment
from kizuna.segments.services import segment_save


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English (the Japanese catalogue may translate them)."""
    with translation.override("en"):
        yield


def rules(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "match": "all", "conditions": list(conditions)}


def make_segment(name: str, *conditions: dict[str, Any]) -> Segment:
    return segment_save(data={"name": name, "rules": rules(*conditions)})


def make_customer(
    email: str, *, opt_in: bool = True, prefecture: str = "JP-13", **data: Any
) -> Customer:
    customer = customer_services.customer_create(
        data={
            "family_name": "山田",
            "given_name": email.split("@")[0],
            "email": email,
            "prefecture": prefecture,
            **data,
        }
    )
    if opt_in:
        customer_services.consent_record(
            customer=customer, purpose="marketing", channel="email", status="granted", source="test"
        )
    return customer


@pytest.fixture
def tokyo(db: None) -> Segment:
    return make_segment("Tokyo", {"field": "profile.prefecture", "op": "eq", "value": "JP-13"})


@pytest.fixture
def osaka(db: None) -> Segment:
    return make_segment("Osaka", {"field": "profile.prefecture", "op": "eq", "value": "JP-27"})


@pytest.fixture
def newsletter_b(db: None) -> Template:
    return messaging.template_save(
        slug="newsletter-b",
        name="Newsletter B",
        channel_kind="email",
        body_format="mjml",
        topic="sale",
        variants={
            "ja": {
                "subject": "【B】{{ customer.name }}様 限定セール",
                "body": NEWSLETTER_MJML.replace("こんにちは", "限定のご案内"),
            }
        },
    )


def campaign_data(
    segments: list[Segment], channel: Channel, *templates: Template, **extra: Any
) -> dict[str, Any]:
    return {
        "name": "秋のセール",
        "include_segments": [s.pk for s in segments],
        "channel_mode": "email",
        "email_channel": channel.pk,
        "variants": [{"email_template": t.pk} for t in templates],
        **extra,
    }


def make_campaign(
    segments: list[Segment], channel: Channel, *templates: Template, **extra: Any
) -> Campaign:
    return services.campaign_save(data=campaign_data(segments, channel, *templates, **extra))
