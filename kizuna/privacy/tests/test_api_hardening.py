"""Fixes for the server errors the schemathesis run found (tests/fuzz/api_schema.py): numbers
too large for the database, a duplicate external id, a carriage return in a CSV import.
Each is now a 4xx naming the problem, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from kizuna.customers.services import customer_create
from kizuna.iam.services import api_key_create
from kizuna.subscriptions.models import Subscription
from kizuna.subscriptions.services import plan_create


@pytest.fixture
def api(db: None, django_user_model: Any) -> Client:
    admin = django_user_model.objects.create_superuser("root", "root@example.invalid", "x")
    issued = api_key_create(name="t", role="admin", created_by=admin)
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}", HTTP_ACCEPT_LANGUAGE="en")


def _fields(response: Any) -> set[str]:
    return {item["field"] for item in response.json()["detail"]}


def test_huge_integers_in_query_path_and_body_are_refused(api: Client) -> None:
    huge = str(2**70)
    response = api.get(f"/api/v1/deliveries?channel_id={huge}")
    assert response.status_code == 422 and _fields(response) == {"channel_id"}
    response = api.get(f"/api/v1/orders/{huge}")
    assert response.status_code == 422 and _fields(response) == {"order_id"}
    response = api.post(
        "/api/v1/campaigns", f'{{"name": "x", "include_segments": [{huge}]}}', "application/json"
    )
    assert response.status_code == 400 and _fields(response) == {"body"}
    assert "out of range" in response.json()["detail"][0]["message"]
    # In range, the same routes answer as before.
    assert api.get("/api/v1/deliveries?channel_id=1").status_code == 200
    assert api.get(f"/api/v1/orders/{2**63 - 1}").status_code == 404


def test_duplicate_subscription_external_id_is_a_422(api: Client) -> None:
    customer = customer_create(data={"family_name": "田中"})
    plan = plan_create(data={"code": "m", "name": "Monthly", "price_yen": 980, "interval": "month"})
    body = {"customer_id": customer.pk, "plan_id": plan.pk, "external_id": "ext-1"}
    assert api.post("/api/v1/subscriptions", body, "application/json").status_code == 201
    response = api.post("/api/v1/subscriptions", body, "application/json")
    assert response.status_code == 422 and _fields(response) == {"external_id"}
    assert Subscription.objects.count() == 1


def test_subscription_import_with_a_carriage_return_is_not_a_server_error(api: Client) -> None:
    response = api.post("/api/v1/subscriptions/import", {"csv": "\r\x92"}, "application/json")
    assert response.status_code == 422
    assert not Subscription.objects.exists()
