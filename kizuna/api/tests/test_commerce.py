from __future__ import annotations

from typing import Any

import pytest

from kizuna.api.tests.helpers import ApiClient, fields
from kizuna.commerce.models import Order, OrderLine, Refund
from kizuna.customers.models import Event
from kizuna.customers.services import customer_create

# The after-commit subscribers of each request run as in production (no real commit needed:
# nothing here reads from another thread or process), without the flush of transaction=True.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


def counts() -> tuple[int, int, int, int]:
    return (
        Order.objects.count(),
        OrderLine.objects.count(),
        Refund.objects.count(),
        Event.objects.count(),
    )


def order_body(shop: dict, **overrides: Any) -> dict:
    return {
        "number": "S-1",
        "customer_id": shop["customer"].pk,
        "lines": [{"sku": "LATTE-T", "quantity": 2}, {"sku": "BEANS-200"}],
        "discount_minor": 100,
        "store": "渋谷店",
        **overrides,
    }


def place(api: ApiClient, shop: dict, **overrides: Any) -> dict:
    response = api.post("/api/v1/orders", order_body(shop, **overrides))
    assert response.status_code == 201, response.json()
    return response.json()


def test_place_get_and_list_orders(admin_api: ApiClient, shop: dict) -> None:
    order = place(admin_api, shop, placed_at="2026-04-01T12:00:00+09:00")
    assert (order["subtotal_minor"], order["discount_minor"], order["total_minor"]) == (
        2640,
        100,
        2540,
    )
    assert order["currency"] == "JPY"
    assert order["placed_at"] == "2026-04-01T12:00:00+09:00"
    assert order["source"] == "api"
    assert [(line["sku"], line["total_minor"]) for line in order["lines"]] == [
        ("LATTE-T", 1040),
        ("BEANS-200", 1600),
    ]

    fetched = admin_api.get(f"/api/v1/orders/{order['id']}").json()
    assert fetched == order

    other = customer_create(data={"family_name": "別人"})
    place(admin_api, shop, number="S-2", customer_id=other.pk)
    mine = admin_api.get("/api/v1/orders", customer_id=shop["customer"].pk).json()
    assert [o["number"] for o in mine["items"]] == ["S-1"]
    assert "lines" not in mine["items"][0]
    assert admin_api.get("/api/v1/orders", search="S-2").json()["count"] == 1
    assert admin_api.get("/api/v1/orders", status="refunded").json()["count"] == 0
    since = admin_api.get("/api/v1/orders", since="2026-05-01T00:00:00+09:00").json()
    assert [o["number"] for o in since["items"]] == ["S-2"]
    unknown = admin_api.get("/api/v1/orders", customer_id=999)
    assert unknown.status_code == 422
    assert fields(unknown) == ["customer_id"]
    assert admin_api.get("/api/v1/orders/999").status_code == 404


def test_order_number_is_idempotent(admin_api: ApiClient, shop: dict) -> None:
    other = customer_create(data={"family_name": "別人"})
    first = place(admin_api, shop)
    before = counts()
    again = place(admin_api, shop)
    assert again["id"] == first["id"]
    assert counts() == before
    clash = admin_api.post("/api/v1/orders", order_body(shop, customer_id=other.pk))
    assert clash.status_code == 422
    assert fields(clash) == ["number"]
    assert counts() == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lines": [{"sku": "LATTE-T", "unit_price_minor": -1}]}, "lines[0].unit_price_minor"),
        ({"lines": [{"sku": "LATTE-T"}, {"sku": "NOPE"}]}, "lines[1].sku"),
        ({"lines": [{"sku": "LATTE-T", "quantity": 0}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "LATTE-T", "colour": "red"}]}, "lines[0].colour"),
        ({"lines": []}, "lines"),
        ({"discount_minor": -1}, "discount_minor"),
        ({"discount_minor": 999_999}, "discount_minor"),
        ({"currency": "XYZ"}, "currency"),
        ({"channel": "fax"}, "channel"),
        ({"customer_id": 999}, "customer_id"),
        ({"placed_at": "2026-04-01T12:00:00"}, "placed_at"),
        ({"number": ""}, "number"),
        ({"coupon": "X"}, "coupon"),
    ],
)
def test_bad_orders_are_422_naming_the_field_and_write_nothing(
    admin_api: ApiClient, shop: dict, overrides: dict, field: str
) -> None:
    before = counts()
    response = admin_api.post("/api/v1/orders", order_body(shop, **overrides))
    assert response.status_code == 422
    assert fields(response) == [field]
    assert counts() == before


def test_refunds_are_idempotent_and_never_exceed_the_total(
    admin_api: ApiClient, shop: dict
) -> None:
    order = place(admin_api, shop)  # total 2540
    url = f"/api/v1/orders/{order['id']}/refunds"
    first = admin_api.post(
        url, {"amount_minor": 540, "reason": "欠品"}, headers={"Idempotency-Key": "r-1"}
    )
    assert first.status_code == 201, first.json()
    assert (first.json()["amount_minor"], first.json()["currency"]) == (540, "JPY")
    before = counts()
    replay = admin_api.post(
        url, {"amount_minor": 540, "reason": "欠品"}, headers={"Idempotency-Key": "r-1"}
    )
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert counts() == before

    by_body = admin_api.post(url, {"amount_minor": 1000, "idempotency_key": "r-2"})
    assert by_body.status_code == 201
    after = admin_api.get(f"/api/v1/orders/{order['id']}").json()
    assert (after["refunded_minor"], after["status"]) == (1540, "partially_refunded")
    assert [r["idempotency_key"] for r in after["refunds"]] == ["r-2", "r-1"]

    before = counts()
    for body, headers, field in (
        ({"amount_minor": 1001}, {"Idempotency-Key": "r-3"}, "amount_minor"),  # over-refund
        ({"amount_minor": -5}, {"Idempotency-Key": "r-4"}, "amount_minor"),
        ({"amount_minor": 0}, {"Idempotency-Key": "r-4"}, "amount_minor"),
        ({"amount_minor": 10}, {}, "idempotency_key"),
        ({"amount_minor": 99}, {"Idempotency-Key": "r-1"}, "idempotency_key"),  # reused key
        ({"amount_minor": 10, "idempotency_key": "a"}, {"Idempotency-Key": "b"}, "idempotency_key"),
    ):
        response = admin_api.post(url, body, headers=headers)
        assert response.status_code == 422, body
        assert fields(response) == [field], body
    assert counts() == before
    assert Order.objects.get(pk=order["id"]).refunded_minor == 1540
    assert (
        admin_api.post(
            "/api/v1/orders/999/refunds", {"amount_minor": 1}, headers={"Idempotency-Key": "r-9"}
        ).status_code
        == 404
    )


def test_support_can_refund_but_not_place_orders(
    api_as: Any, admin_api: ApiClient, shop: dict
) -> None:
    order = place(admin_api, shop)
    support = api_as("support")
    assert support.post("/api/v1/orders", order_body(shop, number="S-9")).status_code == 403
    refund = support.post(
        f"/api/v1/orders/{order['id']}/refunds",
        {"amount_minor": 100},
        headers={"Idempotency-Key": "s-1"},
    )
    assert refund.status_code == 201
    analyst = api_as("analyst")
    denied = analyst.post(
        f"/api/v1/orders/{order['id']}/refunds",
        {"amount_minor": 100},
        headers={"Idempotency-Key": "a-1"},
    )
    assert denied.status_code == 403
    assert Refund.objects.count() == 1
