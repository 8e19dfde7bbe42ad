"""LINE with the real line-bot-sdk v3 client against a local server shaped like the
Messaging API; the webhook endpoint with real signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from django.test import Client

from kizuna.customers.models import Event, Identity
from kizuna.messaging import crypto, services
from kizuna.messaging.channels import OutboundMessage
from kizuna.messaging.channels.line import LineSession, retry_key
from kizuna.messaging.models import Delivery, LineContact, WebhookReceipt
from kizuna.messaging.tests.conftest import follow, make_customer

pytestmark = pytest.mark.django_db
USER = "U" + "4af4980629" * 3 + "ab"


def _push(commit, customer, channel, template, source="campaign:1") -> Delivery:
    delivery, _ = commit(
        services.delivery_enqueue,
        source=source,
        customer=customer,
        channel=channel,
        template=template,
    )
    delivery.refresh_from_db()
    return delivery


def test_push_text_with_bearer_token_and_retry_key(commit, line_api, line_channel, line_template):
    customer = make_customer(opt_in=False)
    follow(line_channel, customer, USER)
    delivery = _push(commit, customer, line_channel, line_template)
    assert delivery.status == "sent", delivery.reason
    (request,) = line_api.requests
    assert request.path == "/v2/bot/message/push"
    assert request.headers["authorization"] == f"Bearer {line_api.token}"
    assert request.headers["x-line-retry-key"] == retry_key(delivery.idempotency_key)
    assert uuid.UUID(request.headers["x-line-retry-key"]).version == 5
    assert request.body == {
        "to": USER,
        "messages": [{"type": "text", "text": "山田 花子さん、新商品のお知らせです。"}],
        "notificationDisabled": False,
    }
    assert delivery.provider_id and delivery.rendered["line_messages"][0]["type"] == "text"
    assert Event.objects.filter(customer=customer, type="line.sent").count() == 1


def test_a_retry_after_a_crash_is_answered_409_and_counts_as_sent(
    commit, line_api, line_channel, line_template
):
    customer = make_customer(opt_in=False)
    follow(line_channel, customer, USER)
    delivery = _push(commit, customer, line_channel, line_template)
    # Simulate a worker that died after LINE accepted the push but before recording it.
    Delivery.objects.filter(pk=delivery.pk).update(
        status="sending", claimed_by="elsewhere:1", claimed_at="2020-01-01T00:00:00Z"
    )
    from kizuna.messaging import tasks

    commit(tasks.deliveries_sweep.call_local)
    delivery.refresh_from_db()
    assert delivery.status == "sent"  # re-sent with the same retry key, LINE said 409
    assert [r.headers["x-line-retry-key"] for r in line_api.requests] == [
        retry_key(delivery.idempotency_key)
    ] * 2
    assert len(line_api.accepted_keys) == 1  # delivered once
    last_sent = delivery.history.filter(status="sent").last()
    assert last_sent is not None and last_sent.detail == {"duplicate": True}


def test_server_error_defers_with_backoff_then_sends(commit, line_api, line_channel, line_template):
    customer = make_customer(opt_in=False)
    follow(line_channel, customer, USER)
    line_api.fail_next.append(500)
    from kizuna.messaging import tasks

    delivery = _push(commit, customer, line_channel, line_template)
    assert delivery.status == "deferred" and "500" in delivery.reason
    Delivery.objects.filter(pk=delivery.pk).update(not_before=None)
    tasks.send_deliveries([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 2
    assert list(delivery.history.values_list("status", flat=True)) == [
        "queued",
        "deferred",
        "sent",
    ]


def test_flex_and_image_messages_and_multicast(line_api, line_channel) -> None:
    session = LineSession(line_channel)
    flex = {
        "type": "flex",
        "altText": "新商品",
        "contents": {
            "type": "bubble",
            "body": {
                "type": "box",
                "layout": "vertical",
                "contents": [{"type": "text", "text": "こんにちは"}],
            },
        },
    }
    image = {
        "type": "image",
        "originalContentUrl": "https://cdn.example.jp/a.jpg",
        "previewImageUrl": "https://cdn.example.jp/a-s.jpg",
    }
    outcome = session.send(
        OutboundMessage(1, "k1", USER, {"line_messages": [flex, image]}, marketing=True)
    )
    assert outcome.ok
    assert line_api.requests[-1].body["messages"] == [flex, image]
    users = [f"U{i:032x}" for i in range(3)]
    key = str(uuid.uuid4())
    assert session.multicast(user_ids=users, messages=[image], key=key).ok
    request = line_api.requests[-1]
    assert request.path == "/v2/bot/message/multicast" and request.body["to"] == users
    assert request.headers["x-line-retry-key"] == key
    again = session.multicast(user_ids=users, messages=[image], key=key)
    assert again.ok and again.detail == {"duplicate": True}
    assert not session.multicast(user_ids=[], messages=[image], key=key).ok
    too_many = session.send(OutboundMessage(2, "k2", USER, {"line_messages": [image] * 6}, True))
    assert not too_many.ok and "1 to 5" in too_many.reason
    session.close()


def test_wrong_token_is_a_permanent_failure(commit, line_api, line_channel, line_template):
    services.channel_save(
        channel=line_channel,
        kind="line",
        name=line_channel.name,
        settings=line_channel.settings,
        credentials={"access_token": "wrong"},
    )
    customer = make_customer(opt_in=False)
    follow(line_channel, customer, USER)
    line_channel.refresh_from_db()
    delivery = _push(commit, customer, line_channel, line_template)
    assert delivery.status == "failed" and "401" in delivery.reason


def test_credentials_are_encrypted_at_rest(line_channel, line_api) -> None:
    assert line_api.token not in line_channel.credentials_encrypted
    assert "line-secret" not in json.dumps(line_channel.settings)
    assert crypto.decrypt(line_channel.credentials_encrypted)["access_token"] == line_api.token
    assert services.channel_secret_keys(line_channel) == ["access_token", "channel_secret"]


# --- webhook --------------------------------------------------------------------------------


def _sign(body: bytes, secret: str = "line-secret") -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _event(kind: str, event_id: str, **extra) -> dict:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": 1700000000000,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        **extra,
    }


def _post(channel, events, signature=None, client=None):
    body = json.dumps({"destination": "U" + "0" * 32, "events": events}).encode()
    return (client or Client()).post(
        f"/hooks/line/{channel.pk}/",
        body,
        content_type="application/json",
        HTTP_X_LINE_SIGNATURE=signature if signature is not None else _sign(body),
    )


def test_webhook_rejects_a_bad_signature_and_records_nothing(line_channel) -> None:
    response = _post(line_channel, [_event("follow", "01H0000000000000000000001")], "bad")
    assert response.status_code == 400
    assert not WebhookReceipt.objects.exists() and not LineContact.objects.exists()
    signed_by_other = _sign(b"{}", "other-secret")
    assert _post(line_channel, [], signed_by_other).status_code == 400


def test_follow_link_by_code_message_postback_unfollow_and_replay(commit, line_channel) -> None:
    customer = make_customer(opt_in=False)
    code = services.line_link_code_issue(customer=customer)
    response = commit(_post, line_channel, [_event("follow", "E1", replyToken="r")])
    assert response.status_code == 200 and response.json()["results"] == ["follow"]
    contact = LineContact.objects.get()
    assert contact.following and contact.customer is None  # not linked yet
    assert Event.objects.filter(type="line.followed", anonymous_id=f"line:{USER}").exists()

    message = {"type": "text", "id": "1", "quoteToken": "q", "text": code.code.lower()}
    commit(_post, line_channel, [_event("message", "E2", replyToken="r", message=message)])
    contact.refresh_from_db()
    assert contact.customer == customer
    assert Identity.objects.filter(customer=customer, kind="line", value=USER).exists()
    code.refresh_from_db()
    assert code.used_at is not None
    linked = Event.objects.get(type="line.message", customer=customer)
    assert linked.properties["linked"] is True

    postback = {"data": "action=coupon&id=3"}
    commit(_post, line_channel, [_event("postback", "E3", replyToken="r", postback=postback)])
    assert Event.objects.get(type="line.postback").properties["data"] == "action=coupon&id=3"

    commit(_post, line_channel, [_event("unfollow", "E4")])
    contact.refresh_from_db()
    assert not contact.following
    assert Event.objects.filter(type="line.unfollowed", customer=customer).count() == 1

    # LINE redelivers: the same webhookEventId changes nothing the second time
    replay = commit(_post, line_channel, [_event("follow", "E1", replyToken="r")])
    assert replay.json()["results"] == ["duplicate"]
    contact.refresh_from_db()
    assert not contact.following
    assert Event.objects.filter(type="line.followed").count() == 1


def test_used_or_unknown_codes_link_nothing(commit, line_channel) -> None:
    customer = make_customer(opt_in=False)
    code = services.line_link_code_issue(customer=customer)
    message = {"type": "text", "id": "1", "quoteToken": "q", "text": "KZ-NOTACODE"}
    commit(_post, line_channel, [_event("message", "F1", replyToken="r", message=message)])
    assert not LineContact.objects.filter(customer=customer).exists()
    code.used_at = code.expires_at
    code.save()
    message["text"] = code.code
    commit(_post, line_channel, [_event("message", "F2", replyToken="r", message=message)])
    assert not LineContact.objects.filter(customer=customer).exists()
