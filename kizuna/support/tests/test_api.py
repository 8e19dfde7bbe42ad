from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from django.test import Client

from kizuna.iam.services import api_key_create
from kizuna.messaging.models import Delivery
from kizuna.support.models import FaqArticle, Inquiry

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff):
    def make(role: str = "support"):
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body=None, headers=None, raw=None, content_type=None):
            h = {
                "Authorization": f"Bearer {key.secret}",
                "Accept-Language": "en",
                **(headers or {}),
            }
            if method == "GET":
                return client.get(path, headers=h)
            data = raw if raw is not None else json.dumps(body or {})
            return client.generic(
                method, path, data, content_type=content_type or "application/json", headers=h
            )

        return send

    return make


def test_anonymous_and_underprivileged_callers_are_refused(call) -> None:
    assert Client().get("/api/v1/inquiries").status_code == 401
    analyst = call("analyst")
    assert analyst("GET", "/api/v1/inquiries").status_code == 200
    denied = analyst("POST", "/api/v1/inquiries", {"subject": "s", "body": "b"})
    assert denied.status_code == 403
    assert analyst("POST", "/api/v1/faq/articles", {}).status_code == 403
    assert analyst("POST", "/api/v1/inquiries/inbound-email", raw=b"x").status_code == 403
    assert not Inquiry.objects.exists()


def test_open_reply_idempotently_change_and_list(
    call, customer, email_channel, smtp_server, django_capture_on_commit_callbacks
) -> None:
    api = call()
    r = api(
        "POST",
        "/api/v1/inquiries",
        {"subject": "返品について", "body": "サイズが合いません", "customer_id": customer.pk},
    )
    assert r.status_code == 201, r.content
    inquiry = r.json()
    assert inquiry["origin"] == "api" and inquiry["messages"][0]["direction"] == "inbound"
    path = f"/api/v1/inquiries/{inquiry['id']}/messages"
    with django_capture_on_commit_callbacks(execute=True):
        first = api("POST", path, {"body": "承知しました"}, headers={"Idempotency-Key": "k1"})
    with django_capture_on_commit_callbacks(execute=True):
        retry = api("POST", path, {"body": "承知しました"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and retry.status_code == 200
    assert first.json()["id"] == retry.json()["id"]
    assert Delivery.objects.count() == 1 and len(smtp_server[1].messages) == 1
    missing = api("POST", path, {"body": "again"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "idempotency_key"
    note = api("POST", path, {"body": "社内メモ", "kind": "note"})
    assert note.status_code == 201 and note.json()["direction"] == "note"

    r = api("PATCH", f"/api/v1/inquiries/{inquiry['id']}", {"status": "resolved", "priority": "x"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "priority"
    r = api("PATCH", f"/api/v1/inquiries/{inquiry['id']}", {"status": "resolved"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    listed = api("GET", "/api/v1/inquiries?status=all").json()
    assert listed["count"] == 1 and listed["items"][0]["reference"] == inquiry["reference"]
    detail = api("GET", f"/api/v1/inquiries/{inquiry['id']}").json()
    assert [m["direction"] for m in detail["messages"]] == ["inbound", "outbound", "note"]
    assert api("GET", "/api/v1/inquiries/999999").status_code == 404
    kpis = api("GET", "/api/v1/inquiries/kpis").json()
    assert kpis["opened"] == 1 and kpis["first_response_median_minutes"] is not None


def test_inbound_email_webhook(call) -> None:
    api = call()
    mail = EmailMessage()
    mail["From"] = "Kenji <kenji@example.jp>"
    mail["Subject"] = "ギフト包装はできますか"
    mail["Message-ID"] = "<m1@example.jp>"
    mail.set_content("贈り物にしたいです。", charset="utf-8")
    r = api(
        "POST",
        "/api/v1/inquiries/inbound-email",
        raw=mail.as_bytes(),
        content_type="message/rfc822",
    )
    assert r.status_code == 201, r.content
    again = api(
        "POST",
        "/api/v1/inquiries/inbound-email",
        raw=mail.as_bytes(),
        content_type="message/rfc822",
    )
    assert again.status_code == 200 and again.json()["inquiry_id"] == r.json()["inquiry_id"]
    bad = api(
        "POST",
        "/api/v1/inquiries/inbound-email",
        raw=b"Subject: x\r\n\r\nhi",
        content_type="message/rfc822",
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "from"
    assert Inquiry.objects.get().contact_email == "kenji@example.jp"
    big = EmailMessage()
    big["From"] = "kenji@example.jp"
    big["Subject"] = "photos"
    big.set_content("see attached")
    big.add_attachment(b"x" * 1_100_000, maintype="image", subtype="jpeg", filename="p.jpg")
    r = api(
        "POST", "/api/v1/inquiries/inbound-email", raw=big.as_bytes(), content_type="message/rfc822"
    )
    assert r.status_code == 413 and Inquiry.objects.count() == 1


def test_faq_articles_and_search(call, articles) -> None:
    api = call()
    r = api(
        "POST",
        "/api/v1/faq/articles",
        {"key": "gift-wrap", "locale": "en", "title": "Gift wrapping", "body": "Free gift wrap."},
    )
    assert r.status_code == 201
    article_id = r.json()["id"]
    found = api("GET", "/api/v1/faq/search?q=can+you+gift+wrap").json()
    assert found["hits"][0]["key"] == "gift-wrap" and 0 < found["confidence"] <= 1
    bad = api(
        "POST", "/api/v1/faq/articles", {"key": "x", "locale": "de", "title": "t", "body": "b"}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "locale"
    r = api(
        "PUT",
        f"/api/v1/faq/articles/{article_id}",
        {
            "key": "gift-wrap",
            "locale": "en",
            "title": "Gift wrap",
            "body": "Free.",
            "published": False,
        },
    )
    assert r.status_code == 200 and r.json()["published"] is False
    assert api("DELETE", f"/api/v1/faq/articles/{article_id}").status_code == 204
    assert not FaqArticle.objects.filter(pk=article_id).exists()
    assert api("GET", "/api/v1/faq/articles?locale=ja").json()["count"] == 3
