"""Bounces, complaints and auto-replies normalised and kept: soft-bounce suppression
threshold, replayed reports and complaint webhooks, reports naming no delivery."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from kizuna.messaging import links, services
from kizuna.messaging.models import BounceEvent, Delivery, Suppression
from kizuna.messaging.tests.conftest import make_customer
from kizuna.messaging.tests.test_tracking import _dsn

pytestmark = pytest.mark.django_db


def _sent(commit, channel, template, source: str) -> Delivery:
    earlier = Delivery.objects.select_related("customer").first()
    delivery, _ = commit(
        services.delivery_enqueue,
        source=source,
        customer=earlier.customer if earlier else make_customer(),
        channel=channel,
        template=template,
    )
    delivery.refresh_from_db()
    return delivery


def test_three_soft_bounces_in_the_window_suppress(
    commit, smtp_server, email_channel, newsletter, settings
):
    settings.KIZUNA_SOFT_BOUNCE_LIMIT = "3/30"
    deliveries = [_sent(commit, email_channel, newsletter, f"campaign:{i}:a") for i in range(3)]
    for n, delivery in enumerate(deliveries):
        verp = links.verp_address(delivery.pk, "bounce.kizuna.example")
        services.bounce_process(raw=_dsn(verp, status="4.2.2", action="delayed"))
        services.bounce_process(raw=_dsn(verp, status="4.2.2", action="delayed"))  # replayed
        suppressed = services.is_suppressed(channel_kind="email", address="hanako@example.jp")
        assert suppressed == (n == 2)
    assert BounceEvent.objects.filter(kind="soft").count() == 3  # replays not counted
    assert Suppression.objects.get().reason == "soft_bounces"


def test_hard_bounce_events_are_all_kept(commit, smtp_server, email_channel, newsletter):
    delivery = _sent(commit, email_channel, newsletter, "campaign:1:a")
    verp = links.verp_address(delivery.pk, "bounce.kizuna.example")
    services.bounce_process(raw=_dsn(verp, status="4.4.1", action="delayed"))
    services.bounce_process(raw=_dsn(verp, status="5.1.1"))
    assert list(BounceEvent.objects.order_by("id").values_list("kind", "status_code")) == [
        ("soft", "4.4.1"),
        ("hard", "5.1.1"),
    ]


def test_a_report_for_an_unknown_delivery_is_kept_with_its_reason(db, caplog) -> None:
    raw = _dsn("bounces+1=forged@bounce.kizuna.example")
    with pytest.raises(ValidationError):
        services.bounce_process(raw=raw)
    event = BounceEvent.objects.get()
    assert event.kind == "unknown" and "no delivery of ours" in event.reason
    assert event.delivery is None
    assert "no delivery of ours" in caplog.text
    assert not Suppression.objects.exists()


def test_an_auto_reply_is_kept_and_suppresses_nothing(
    commit, smtp_server, email_channel, newsletter
):
    delivery = _sent(commit, email_channel, newsletter, "campaign:1:a")
    verp = links.verp_address(delivery.pk, "bounce.kizuna.example")
    raw = (
        f"From: hanako@example.jp\r\nTo: {verp}\r\nAuto-Submitted: auto-replied\r\n"
        "Subject: 自動応答: 不在にしています\r\n\r\n12月3日まで不在です。\r\n"
    ).encode()
    assert services.bounce_process(raw=raw) == [delivery]
    assert BounceEvent.objects.get().kind == "auto_reply"
    assert not Suppression.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == "sent"


def test_a_replayed_complaint_webhook_is_idempotent(commit, smtp_server, email_channel, newsletter):
    delivery = _sent(commit, email_channel, newsletter, "campaign:1:a")
    client = Client()
    url = f"/hooks/complaint/{email_channel.pk}/"
    body = {"delivery_id": delivery.pk, "feedback_id": "fbl-123"}
    assert client.post(url, body, content_type="application/json").status_code == 401
    for _ in range(2):
        response = commit(
            client.post,
            url,
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION="Bearer bounce-secret",
        )
        assert response.status_code == 200
    assert BounceEvent.objects.filter(kind="complaint").count() == 1
    assert Suppression.objects.filter(reason="complaint").count() == 1
    assert delivery.history.filter(status="complained").count() == 1
    garbage = client.post(
        url,
        b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer bounce-secret",
    )
    assert garbage.status_code == 422
    unknown = client.post(
        url,
        {"delivery_id": 999999},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer bounce-secret",
    )
    assert unknown.status_code == 422
