"""REST API: send (idempotent), deliveries with history, preview; permissions; errors that
name the field or the template line."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from kizuna.iam.services import api_key_create
from kizuna.messaging import services
from kizuna.messaging.models import Delivery
from kizuna.messaging.tests.conftest import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff):
    def make(role: str = "admin"):
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body=None, idempotency: str | None = None):
            headers = {"Authorization": f"Bearer {key.secret}"}
            if idempotency:
                headers["Idempotency-Key"] = idempotency
            if method == "GET":
                return client.get(path, headers=headers)
            return client.post(
                path, json.dumps(body or {}), content_type="application/json", headers=headers
            )

        return send

    return make


def test_send_is_idempotent_and_listed_with_history(
    call, commit, smtp_server, email_channel, newsletter
) -> None:
    customer = make_customer()
    api = call("marketer")
    body = {"template": "newsletter", "customer_id": customer.pk, "channel_id": email_channel.pk}
    first = commit(api, "POST", "/api/v1/messages", body, idempotency="order-1")
    assert first.status_code == 202, first.content
    again = commit(api, "POST", "/api/v1/messages", body, idempotency="order-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Delivery.objects.count() == 1 and len(smtp_server[1].messages) == 1
    listed = api("GET", "/api/v1/deliveries?status=sent")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert listed.json()["items"][0]["template"] == "newsletter"
    detail = api("GET", f"/api/v1/deliveries/{first.json()['id']}").json()
    assert [h["status"] for h in detail["history"]] == ["queued", "sent"]
    assert detail["rendered"]["subject"] == "山田 花子様へ 秋のセールのお知らせ"


def test_send_errors_name_the_field(call, email_channel, newsletter) -> None:
    api = call("admin")
    customer = make_customer()
    unknown = api(
        "POST",
        "/api/v1/messages",
        {"template": "nope", "customer_id": customer.pk, "channel_id": email_channel.pk},
    )
    assert unknown.status_code == 404
    extra = api(
        "POST",
        "/api/v1/messages",
        {"template": "newsletter", "customer_id": customer.pk, "channel_id": 1, "bcc": "x"},
    )
    assert extra.status_code == 422 and extra.json()["detail"][0]["field"] == "bcc"
    assert not Delivery.objects.exists()


def test_preview_renders_or_names_the_line(call, newsletter) -> None:
    api = call("marketer")  # an analyst sees the preview masked (privacy tests)
    customer = make_customer()
    ok = api("POST", "/api/v1/templates/newsletter/preview", {"customer_id": customer.pk})
    assert ok.status_code == 200 and ok.json()["subject"] == "山田 花子様へ 秋のセールのお知らせ"
    services.template_save(
        slug="broken-at-runtime",
        name="b",
        channel_kind="line",
        body_format="text",
        variants={"ja": {"subject": "", "body": "ok\n{{ missing.thing }}"}},
    )
    bad = api("POST", "/api/v1/templates/broken-at-runtime/preview", {"customer_id": customer.pk})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "body"
    assert "line 2" in bad.json()["detail"][0]["message"]


def test_permissions(call, email_channel, newsletter) -> None:
    customer = make_customer()
    body = {"template": "newsletter", "customer_id": customer.pk, "channel_id": email_channel.pk}
    assert call("analyst")("POST", "/api/v1/messages", body).status_code == 403
    assert call("support")("GET", "/api/v1/deliveries").status_code == 200
    assert Client().get("/api/v1/deliveries").status_code == 401
    assert not Delivery.objects.exists()
