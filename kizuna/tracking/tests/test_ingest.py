"""/v1 endpoints through Django's test client; the worker runs in-process (Huey immediate)."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client, override_settings

from kizuna.customers.models import Customer, CustomerMerge, Event, Identity
from kizuna.tracking.models import InboxBatch
from kizuna.tracking.services import inbox_process, source_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db: None) -> str:
    return source_create(name="Web shop").write_key


def post(path: str, body: Any, key: str = "", gzipped: bool = False, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    # The /v1/ handler answers in the client's language (the installation default is ja).
    headers: dict[str, Any] = {"HTTP_ACCEPT_LANGUAGE": "en"}
    if key:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    if gzipped:
        data = gzip.compress(data)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    return Client().post(path, data=data, content_type="application/json", **headers)


def test_wrong_or_missing_write_key_is_401_and_stores_nothing(key: str) -> None:
    msg = {"userId": "u1", "event": "Viewed"}
    for response in (post("/v1/track", msg, key="kzw_wrong"), post("/v1/track", msg)):
        assert response.status_code == 401
        assert response.json()["detail"][0]["field"] == "writeKey"
    assert InboxBatch.objects.count() == 0 and Event.objects.count() == 0


def test_write_key_in_the_body_is_accepted(key: str) -> None:
    response = post("/v1/track", {"userId": "u1", "event": "Viewed", "writeKey": key})
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert Event.objects.filter(type="Viewed").count() == 1


def test_bad_requests_get_precise_errors(key: str) -> None:
    assert post("/v1/batch", None, key=key, raw=b'{"batch": [').status_code == 400
    bad_gzip = Client().post(
        "/v1/batch",
        data=b"garbage",
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert bad_gzip.status_code == 400 and "gzip" in bad_gzip.json()["detail"][0]["message"]
    missing = post("/v1/identify", {"traits": {"email": "a@example.com"}}, key=key)
    assert missing.status_code == 400
    assert "userId or anonymousId" in missing.json()["detail"][0]["message"]
    traits = post("/v1/identify", {"userId": "u", "traits": "vip"}, key=key)
    assert traits.json()["detail"][0]["field"] == "identify.traits"
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    far = post("/v1/track", {"userId": "u", "event": "X", "timestamp": future}, key=key)
    assert far.status_code == 400 and "future" in far.json()["detail"][0]["message"]
    big = post(
        "/v1/track", {"userId": "u", "event": "X", "properties": {"b": "x" * 33_000}}, key=key
    )
    assert big.status_code == 413
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E", "n": i} for i in range(3000)]}
    batch["batch"][0]["properties"] = {"pad": "y" * 400_000}
    assert post("/v1/batch", batch, key=key).status_code == 413
    assert InboxBatch.objects.count() == 0 and Event.objects.count() == 0


def test_batch_drops_invalid_messages_and_counts_them(key: str) -> None:
    response = post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "m-1"},
                {"type": "track", "event": "No subject"},
            ]
        },
        key=key,
    )
    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"][0]["field"] == "batch[1]"
    assert list(Event.objects.filter(source="web-shop").values_list("message_id", flat=True)) == [
        "m-1"
    ]


def test_retried_batch_adds_nothing(key: str) -> None:
    batch = {
        "batch": [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "i-1",
                "traits": {"email": "x@example.com"},
            },
            {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "t-1"},
        ]
    }
    for _ in range(3):
        assert post("/v1/batch", batch, key=key, gzipped=True).status_code == 200
    assert Event.objects.filter(message_id__in=["i-1", "t-1"]).count() == 2
    assert Customer.objects.count() == 1
    assert InboxBatch.objects.filter(processed_at__isnull=True).count() == 0


def test_identify_builds_profile_and_stitches_anonymous_history(key: str) -> None:
    sent = datetime.now(UTC)
    post(
        "/v1/batch",
        {
            "sentAt": sent.isoformat(),
            "batch": [
                {
                    "type": "page",
                    "anonymousId": "anon-1",
                    "name": "Home",
                    "context": {"ip": "1.1.1.1"},
                },
                {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed"},
            ],
        },
        key=key,
    )
    assert Event.objects.filter(anonymous_id="anon-1", customer__isnull=True).count() == 2
    assert Customer.objects.count() == 0
    post(
        "/v1/identify",
        {
            "userId": "user-9",
            "anonymousId": "anon-1",
            "traits": {"email": "Hanako@Example.com", "firstName": "花子", "lastName": "山田"},
        },
        key=key,
    )
    customer = Customer.objects.get()
    assert (customer.email, customer.family_name, customer.given_name) == (
        "hanako@example.com",
        "山田",
        "花子",
    )
    kinds = dict(Identity.objects.filter(customer=customer).values_list("kind", "value"))
    assert kinds == {"external": "user-9", "email": "hanako@example.com", "anonymous": "anon-1"}
    page = Event.objects.get(type="page")
    assert page.customer_id == customer.pk and page.context["ip"] == "1.1.1.1"
    assert page.properties["name"] == "Home"
    assert Event.objects.filter(customer=customer).count() == 4  # 2 stitched, identify, created
    # Later events by email-only identify go to the same person (a verified identity).
    post(
        "/v1/identify",
        {"anonymousId": "other-device", "traits": {"email": "hanako@example.com"}},
        key=key,
    )
    post("/v1/track", {"anonymousId": "other-device", "event": "Cart Viewed"}, key=key)
    assert Event.objects.get(type="Cart Viewed").customer_id == customer.pk


def test_alias_merges_two_known_customers(key: str) -> None:
    post("/v1/identify", {"userId": "old-id", "traits": {"phone": "090-1234-5678"}}, key=key)
    post("/v1/identify", {"userId": "new-id", "traits": {"email": "p@example.com"}}, key=key)
    assert Customer.objects.count() == 2
    post("/v1/alias", {"previousId": "old-id", "userId": "new-id"}, key=key)
    merge = CustomerMerge.objects.get()
    survivor = Customer.objects.get(identities__value="new-id")
    assert merge.survivor_id == survivor.pk
    assert survivor.phone == "+819012345678"  # filled from the merged profile
    assert set(survivor.identities.values_list("value", flat=True)) == {
        "old-id",
        "new-id",
        "+819012345678",
        "p@example.com",
    }
    assert Customer.objects.get(pk=merge.merged_id).merged_into_id == survivor.pk


@override_settings(TRACKING_RATE="2/m")
@pytest.mark.usefixtures("ratelimit_clock_pinned")
def test_rate_limit_answers_429_with_retry_after(key: str) -> None:
    from django.core.cache import cache

    cache.clear()
    codes = [
        post("/v1/track", {"userId": "u", "event": "E"}, key=key).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = post("/v1/track", {"userId": "u", "event": "E"}, key=key)
    assert limited["Retry-After"] == "1"
    cache.clear()


def test_a_failed_processing_leaves_the_batch_pending(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kizuna.tracking import services

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker crashed")

    monkeypatch.setattr(services, "customers_seen_widen", boom)
    # The request is accepted (stored durably) even though processing it failed.
    assert (
        post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m"}, key=key).status_code
        == 200
    )
    assert InboxBatch.objects.filter(processed_at__isnull=True).count() == 1
    assert Event.objects.count() == 0 and Customer.objects.count() == 0  # nothing half-applied
    monkeypatch.undo()
    assert inbox_process().events_added == 1
    assert Event.objects.filter(message_id="m").count() == 1
