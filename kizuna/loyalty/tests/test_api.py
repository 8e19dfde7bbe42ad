from __future__ import annotations

import json

import pytest
from django.test import Client

from kizuna.iam.services import api_key_create
from kizuna.loyalty import services
from kizuna.loyalty.models import LedgerEntry, Reward

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff):
    def make(role: str = "admin"):
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body=None, key_header: str | None = None):
            headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"}
            if key_header:
                headers["Idempotency-Key"] = key_header
            if method == "GET":
                return client.get(path, headers=headers)
            return client.post(
                path, json.dumps(body or {}), content_type="application/json", headers=headers
            )

        return send

    return make


def test_balance_ledger_redeem_and_replay(programme, customer, call):
    api = call("support")
    services.points_award(customer=customer, points=120, idempotency_key="seed", reason="x")
    Reward.objects.create(code="latte", name="Latte", points_price=100)
    r = api("GET", f"/api/v1/customers/{customer.pk}/loyalty")
    assert r.status_code == 200 and r.json()["balance"] == 120
    assert r.json()["member_number"].startswith("K")
    path = f"/api/v1/customers/{customer.pk}/loyalty/redemptions"
    r = api("POST", path, {"reward": "latte"}, key_header="pos-1")
    assert r.status_code == 201, r.content
    assert r.json()["balance"] == 20
    again = api("POST", path, {"reward": "latte"}, key_header="pos-1")
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    poor = api("POST", path, {"reward": "latte"}, key_header="pos-2")
    assert poor.status_code == 422
    assert poor.json()["detail"][0]["field"] == "points"
    missing = api("POST", path, {"reward": "latte"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "idempotency_key"
    unknown = api("POST", path, {"reward": "mocha"}, key_header="pos-3")
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["field"] == "reward"
    assert "mocha" in unknown.json()["detail"][0]["message"]
    nobody = api("POST", "/api/v1/customers/999999/loyalty/redemptions", {"reward": "latte"}, "p")
    assert nobody.status_code == 404
    # The key of a redemption replayed for another reward is refused, not replayed.
    other_reward = Reward.objects.create(code="tea", name="Tea", points_price=1)
    reused = api("POST", path, {"reward": other_reward.code}, key_header="pos-1")
    assert reused.status_code == 422 and reused.json()["detail"][0]["field"] == "idempotency_key"
    ledger = api("GET", f"/api/v1/customers/{customer.pk}/loyalty/ledger")
    assert [e["points"] for e in ledger.json()["items"]] == [-100, 120]
    assert LedgerEntry.objects.count() == 2


def test_adjust_needs_admin_and_rejects_negative_overdraw(programme, customer, call):
    path = f"/api/v1/customers/{customer.pk}/loyalty/adjustments"
    r = call("support")("POST", path, {"points": 10, "reason": "gift"}, key_header="a1")
    assert r.status_code == 403
    admin = call("admin")
    r = admin("POST", path, {"points": 10, "reason": "gift"}, key_header="a1")
    assert r.status_code == 201 and r.json()["points"] == 10
    r = admin("POST", path, {"points": -11, "reason": "oops"}, key_header="a2")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "points"
    r = admin("POST", path, {"points": 5, "reason": "gift"}, key_header="a1")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "idempotency_key"
    assert LedgerEntry.objects.count() == 1


def test_issue_and_use_coupons(programme, customer, other, call):
    admin = call("admin")
    d = services.coupon_definition_create(data={"name": "¥300 off", "kind": "fixed", "value": 300})
    r = admin(
        "POST",
        "/api/v1/loyalty/coupons/issue",
        {"definition_id": d.pk, "customer_ids": [customer.pk]},
        key_header="iss",
    )
    assert r.status_code == 201
    code = r.json()[0]["code"]
    use = f"/api/v1/customers/{other.pk}/loyalty/coupon-uses"
    r = admin("POST", use, {"code": code, "order_total_minor": 1000}, key_header="u1")
    assert r.status_code == 422 and "another customer" in r.json()["detail"][0]["message"]
    mine = f"/api/v1/customers/{customer.pk}/loyalty/coupon-uses"
    r = admin("POST", mine, {"code": code, "order_total_minor": -1}, key_header="u2")
    assert r.status_code == 422
    r = admin("POST", mine, {"code": code, "order_total_minor": 1000}, key_header="u3")
    assert r.status_code == 201 and r.json()["discount_minor"] == 300
    r = admin("POST", mine, {"code": code, "order_total_minor": 1000}, key_header="u4")
    assert r.status_code == 422
    r = call("analyst")("POST", mine, {"code": code, "order_total_minor": 1000}, key_header="u5")
    assert r.status_code == 403
