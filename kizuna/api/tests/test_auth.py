from __future__ import annotations

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client

from kizuna.api.tests.helpers import ApiClient, fields
from kizuna.catalog.models import Product
from kizuna.customers.models import Customer, Event
from kizuna.iam.models import ApiKey
from kizuna.iam.services import api_key_revoke

# The after-commit subscribers of each request run as in production (no real commit needed:
# nothing here reads from another thread or process), without the flush of transaction=True.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]

NEW_CUSTOMER = {"family_name": "佐藤", "email": "sato@example.jp"}


def test_no_credentials_is_401_with_a_bearer_challenge() -> None:
    response = ApiClient(None).get("/api/v1/customers")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="kizuna"'
    assert fields(response) == ["Authorization"]


@pytest.mark.parametrize(
    "header",
    ["Bearer kzk_not-a-real-key", "Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "kzk_x"],
)
def test_bad_keys_are_401(header: str) -> None:
    response = Client().get("/api/v1/customers", headers={"Authorization": header})
    assert response.status_code == 401
    assert fields(response) == ["Authorization"]


def test_valid_key_is_accepted_and_its_use_recorded(make_key: Any) -> None:
    issued = make_key("analyst")
    assert ApiKey.objects.get().last_used_at is None
    response = ApiClient(issued.secret).get("/api/v1/customers")
    assert response.status_code == 200
    assert ApiKey.objects.get().last_used_at is not None


def test_revoked_key_is_rejected(make_key: Any, admin_user: Any) -> None:
    issued = make_key("admin")
    api = ApiClient(issued.secret)
    assert api.get("/api/v1/customers").status_code == 200
    api_key_revoke(api_key=issued.api_key, revoked_by=admin_user)
    response = api.post("/api/v1/customers", NEW_CUSTOMER)
    assert response.status_code == 401
    assert Customer.objects.count() == 0


def test_bad_key_is_401_even_with_a_staff_session(make_staff: Any) -> None:
    make_staff("admin", username="boss")
    client = Client()
    assert client.login(username="boss", password="s3cret-Pass!")
    assert client.get("/api/v1/customers").status_code == 200
    response = client.get("/api/v1/customers", headers={"Authorization": "Bearer kzk_wrong"})
    assert response.status_code == 401


def test_analyst_key_cannot_create_a_customer_but_marketer_can(api_as: Any) -> None:
    analyst = api_as("analyst")
    denied = analyst.post("/api/v1/customers", NEW_CUSTOMER)
    assert denied.status_code == 403
    assert "customers.add_customer" in denied.json()["detail"][0]["message"]
    assert Customer.objects.count() == 0
    # The permission is checked before the body is validated: no schema hints leak.
    assert analyst.post("/api/v1/customers", {"nonsense": 1}).status_code == 403
    assert analyst.get("/api/v1/customers").status_code == 200

    created = api_as("marketer").post("/api/v1/customers", NEW_CUSTOMER)
    assert created.status_code == 201
    assert Customer.objects.count() == 1


def test_role_checks_per_route(api_as: Any, shop: dict) -> None:
    support = api_as("support")
    product = {"sku": "MUG", "name": "マグ", "price_minor": 1800}
    assert support.post("/api/v1/products", product).status_code == 403
    assert (
        support.patch(f"/api/v1/products/{shop['latte'].pk}", {"price_minor": 1}).status_code == 403
    )
    assert Product.objects.count() == 2
    assert Product.objects.get(pk=shop["latte"].pk).price_minor == 520
    customer_id = shop["customer"].pk
    assert support.patch(f"/api/v1/customers/{customer_id}", {"city": "渋谷区"}).status_code == 200
    marketer = api_as("marketer")
    order = {"number": "M-1", "customer_id": customer_id, "lines": [{"sku": "LATTE-T"}]}
    assert marketer.post("/api/v1/orders", order).status_code == 403
    assert marketer.post("/api/v1/products", product).status_code == 201


def test_writes_are_attributed_to_the_key_creator(make_key: Any) -> None:
    issued = make_key("marketer")
    response = ApiClient(issued.secret).post(
        "/api/v1/products", {"sku": "MUG", "name": "マグ", "price_minor": 1800}
    )
    assert response.status_code == 201
    entry = LogEntry.objects.get_for_object(Product.objects.get(sku="MUG")).get()
    assert entry.actor == issued.api_key.created_by


def test_session_auth_reads_and_needs_csrf_for_writes(make_staff: Any) -> None:
    user = make_staff("marketer", username="hana")
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="hana", password="s3cret-Pass!")
    assert client.get("/api/v1/customers").status_code == 200

    no_token = client.post("/api/v1/customers", NEW_CUSTOMER, content_type="application/json")
    assert no_token.status_code == 403
    assert "CSRF" in no_token.json()["detail"][0]["message"]
    assert Customer.objects.count() == 0
    assert Event.objects.count() == 0

    client.get("/api/v1/docs")  # sets the csrftoken cookie, as the console pages do
    token = client.cookies["csrftoken"].value
    created = client.post(
        "/api/v1/customers",
        NEW_CUSTOMER,
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert created.status_code == 201
    customer = Customer.objects.get()
    assert LogEntry.objects.get_for_object(customer).get().actor == user


def test_anonymous_write_is_401_not_a_csrf_error() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/v1/customers", NEW_CUSTOMER, content_type="application/json")
    assert response.status_code == 401


def test_session_of_a_non_staff_user_is_not_enough() -> None:
    get_user_model().objects.create_user(username="member", password="s3cret-Pass!")
    client = Client()
    assert client.login(username="member", password="s3cret-Pass!")
    assert client.get("/api/v1/customers").status_code == 401


def test_a_request_with_a_key_costs_one_query_to_authenticate(make_key: Any) -> None:
    """The key is read once (so revocation is immediate), the role's permissions come from
    the per-process cache and `last_used_at` is written at most once a minute."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = ApiClient(make_key("analyst").secret)
    assert api.get("/api/v1/customers").status_code == 200  # first use: touched, cached
    with CaptureQueriesContext(connection) as captured:
        assert api.get("/api/v1/customers").status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum("iam_apikey" in s for s in sql) == 1
    assert not any("auth_permission" in s or s.startswith("UPDATE") for s in sql)
    assert not any("django_session" in s for s in sql)
