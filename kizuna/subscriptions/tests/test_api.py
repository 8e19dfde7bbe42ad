from __future__ import annotations

import json

import pytest
from django.test import Client

from kizuna.iam.services import api_key_create
from kizuna.subscriptions.models import Plan, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff):
    def make(role: str = "admin"):
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body=None):
            headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"}
            if method == "GET":
                return client.get(path, headers=headers)
            return client.post(
                path, json.dumps(body or {}), content_type="application/json", headers=headers
            )

        return send

    return make


def test_plans_subscriptions_actions_and_mrr(call, customer) -> None:
    api = call("admin")
    r = api("POST", "/api/v1/plans", {"name": "Coffee", "code": "coffee", "price_yen": 3000})
    assert r.status_code == 201, r.content
    plan_id = r.json()["id"]
    r = api("POST", "/api/v1/plans", {"name": "Bad", "price_yen": -10})
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["detail"]] == ["price_yen"]
    assert Plan.objects.count() == 1
    r = api("POST", "/api/v1/subscriptions", {"customer_id": customer.pk, "plan_id": plan_id})
    assert r.status_code == 201 and r.json()["status"] == "active"
    sub_id = r.json()["id"]
    r = api("GET", "/api/v1/subscriptions/mrr")
    assert r.json()["mrr_yen"] == 3000 and r.json()["arr_yen"] == 36000
    r = api("POST", f"/api/v1/subscriptions/{sub_id}/actions", {"action": "payment_failed"})
    assert r.json()["status"] == "past_due"
    r = api(
        "POST",
        f"/api/v1/subscriptions/{sub_id}/actions",
        {"action": "cancel", "at": "2000-01-01T00:00:00+09:00", "reason": "x"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "ended_at"
    r = api("POST", f"/api/v1/subscriptions/{sub_id}/actions", {"action": "cancel", "reason": "x"})
    assert r.json()["status"] == "cancelled"
    events = api("GET", f"/api/v1/subscriptions/{sub_id}/events").json()
    assert [e["kind"] for e in events] == ["cancelled", "payment_failed", "started"]
    assert api("GET", "/api/v1/subscriptions?status=cancelled").json()["count"] == 1
    assert api("GET", "/api/v1/subscriptions/churn?months=3").status_code == 200
    assert len(api("GET", "/api/v1/subscriptions/cohorts").json()) == 1


def test_import_route_reports_rows(call, customer) -> None:
    api = call("admin")
    api("POST", "/api/v1/plans", {"name": "Coffee", "code": "coffee", "price_yen": 3000})
    text = "customer_id,plan,started_at,ended_at,status\n"
    text += f"{customer.pk},coffee,2026-02-01,2026-01-01,cancelled\n"
    r = api("POST", "/api/v1/subscriptions/import", {"csv": text})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "rows[1].ended_at"
    assert Subscription.objects.count() == 0
    ok = f"customer_id,plan,started_at\n{customer.pk},coffee,2026-02-01\n"
    assert api("POST", "/api/v1/subscriptions/import", {"csv": ok}).json()["created"] == 1


def test_permissions(call, customer) -> None:
    assert Client().get("/api/v1/subscriptions/mrr").status_code == 401
    analyst = call("analyst")
    assert analyst("GET", "/api/v1/subscriptions/mrr").status_code == 200
    r = analyst("POST", "/api/v1/plans", {"name": "X", "price_yen": 1})
    assert r.status_code == 403 and Plan.objects.count() == 0
