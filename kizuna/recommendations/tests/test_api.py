"""The recommendations API over HTTP (Django's test client with API keys): the defined
responses for unknown ids, no history, nothing trained; runs; permissions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from kizuna.customers.services import customer_create
from kizuna.iam.services import api_key_create
from kizuna.recommendations import services
from kizuna.recommendations.models import RunStatus, RunTrigger, TrainingRun
from kizuna.recommendations.tests.conftest import AS_OF

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(make_staff: Any) -> Any:
    def make(role: str = "admin") -> Client:
        key = api_key_create(name=f"{role} key", role=role, created_by=make_staff(role))
        return Client(headers={"Authorization": f"Bearer {key.secret}"})

    return make


def test_customer_recommendations_and_related_products(api, shop):
    world = shop()
    services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF)
    client = api("support")
    customer_id = world.customers[1]
    got = client.get(f"/api/v1/customers/{customer_id}/recommendations", {"n": 3})
    assert got.status_code == 200, got.content
    body = got.json()
    assert body["customer_id"] == customer_id and body["fallback"] is None
    assert body["model"]["kind"] == "als" and len(body["items"]) == 3
    assert body["items"][0]["sku"].startswith("T")
    assert set(body["items"][0]) == {
        "product_id",
        "sku",
        "name",
        "name_en",
        "category",
        "price_minor",
        "currency",
        "score",
    }
    bpr = client.get(f"/api/v1/customers/{customer_id}/recommendations", {"model": "bpr"})
    assert bpr.json()["model"]["kind"] == "bpr" and len(bpr.json()["items"]) <= 10
    product = world.products["C1"]
    related = client.get(f"/api/v1/products/{product.pk}/related", {"n": 2})
    assert related.status_code == 200
    assert related.json()["product_id"] == product.pk
    assert related.json()["model"]["kind"] == "cooccurrence"
    assert len(related.json()["items"]) == 2
    versions = client.get("/api/v1/recommendations/versions").json()
    assert sorted(v["kind"] for v in versions) == ["als", "bpr", "cooccurrence", "popularity"]


def test_defined_responses_for_bad_input(api, shop):
    client = api()
    missing = client.get("/api/v1/customers/999999/recommendations", HTTP_ACCEPT_LANGUAGE="en")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"][0]["message"].lower()
    assert client.get("/api/v1/products/999999/related").status_code == 404
    for bad in ({"n": 0}, {"n": 101}, {"n": "x"}, {"model": "magic"}):
        got = client.get("/api/v1/customers/1/recommendations", bad)
        assert got.status_code == 422, bad
    # nothing trained yet: 200 with model null, no items
    someone = customer_create(data={"family_name": "新規"})
    got = client.get(f"/api/v1/customers/{someone.pk}/recommendations")
    assert got.status_code == 200
    assert got.json() == {
        "customer_id": someone.pk,
        "model": None,
        "fallback": None,
        "reason": "not_trained",
        "items": [],
    }
    world = shop()
    got = client.get(f"/api/v1/products/{world.products['C1'].pk}/related")
    assert got.status_code == 200 and got.json()["model"] is None and got.json()["items"] == []
    services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF)
    got = client.get(f"/api/v1/customers/{someone.pk}/recommendations", {"n": 4}).json()
    assert got["fallback"] == "popularity" and got["reason"] == "no_history"
    assert got["model"]["kind"] == "popularity" and len(got["items"]) == 4


def test_training_runs_through_the_api(api, shop, django_capture_on_commit_callbacks):
    shop()
    client = api("analyst")
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post("/api/v1/recommendations/runs", {}, content_type="application/json")
    assert posted.status_code == 202, posted.content
    run_id = posted.json()["id"]
    got = client.get(f"/api/v1/recommendations/runs/{run_id}").json()
    assert got["status"] == RunStatus.SUCCEEDED and got["progress"] == 100
    assert set(got["evaluation"]["kinds"]) == {"als", "bpr", "cooccurrence", "popularity"}
    listed = client.get("/api/v1/recommendations/runs").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == run_id
    assert client.get("/api/v1/recommendations/runs/999999").status_code == 404
    unknown = client.post(
        "/api/v1/recommendations/runs", {"factors": 3}, content_type="application/json"
    )
    assert unknown.status_code == 422


def test_permissions(api, db):
    customer = customer_create(data={"family_name": "客"})
    anonymous = Client()
    for path in (
        f"/api/v1/customers/{customer.pk}/recommendations",
        "/api/v1/products/1/related",
        "/api/v1/recommendations/runs",
        "/api/v1/recommendations/versions",
    ):
        assert anonymous.get(path).status_code == 401, path
    support = api("support")  # may read recommendations, may not train
    posted = support.post("/api/v1/recommendations/runs", {}, content_type="application/json")
    assert posted.status_code == 403
    assert not TrainingRun.objects.exists()
    # a staff session without any role reads nothing
    nobody = get_user_model().objects.create_user("nobody", password="x-Pass-123", is_staff=True)
    session = Client()
    session.force_login(nobody)
    got = session.get(f"/api/v1/customers/{customer.pk}/recommendations")
    assert got.status_code == 403


def test_the_openapi_document_declares_the_defined_responses(client, admin_user):
    client.force_login(admin_user)
    spec = client.get("/api/v1/openapi.json").json()
    recs = spec["paths"]["/api/v1/customers/{customer_id}/recommendations"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(recs["responses"])
    related = spec["paths"]["/api/v1/products/{product_id}/related"]["get"]
    assert {"200", "404"} <= set(related["responses"])
    out = spec["components"]["schemas"]["CustomerRecommendationsOut"]["properties"]
    assert {"model", "fallback", "reason", "items", "customer_id"} <= set(out)
    assert "/api/v1/recommendations/runs" in spec["paths"]
