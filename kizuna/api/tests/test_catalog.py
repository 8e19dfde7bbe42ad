from __future__ import annotations

import pytest

from kizuna.api.tests.helpers import ApiClient, fields
from kizuna.catalog.models import Product
from kizuna.catalog.services import category_create

# The after-commit subscribers of each request run as in production (no real commit needed:
# nothing here reads from another thread or process), without the flush of transaction=True.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


def test_product_crud_round_trip(admin_api: ApiClient, shop: dict) -> None:
    created = admin_api.post(
        "/api/v1/products",
        {
            "sku": "MUG-1",
            "name": "マグカップ",
            "name_en": "Mug",
            "price_minor": 1800,
            "category": "drinks",
        },
    )
    assert created.status_code == 201, created.json()
    product = created.json()
    assert (product["price_minor"], product["currency"], product["category"]) == (
        1800,
        "JPY",
        "drinks",
    )
    assert product["active"] is True

    assert admin_api.get(f"/api/v1/products/{product['id']}").json() == product

    patched = admin_api.patch(
        f"/api/v1/products/{product['id']}",
        {"price_minor": 1980, "category": None, "active": False},
    )
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["price_minor"], patched.json()["category"]) == (1980, None)
    assert patched.json()["name"] == "マグカップ"

    listed = admin_api.get("/api/v1/products", search="mug").json()
    assert [p["sku"] for p in listed["items"]] == ["MUG-1"]
    active = admin_api.get("/api/v1/products", active="true").json()
    assert [p["sku"] for p in active["items"]] == ["BEANS-200", "LATTE-T"]
    in_drinks = admin_api.get("/api/v1/products", category="drinks").json()
    assert [p["sku"] for p in in_drinks["items"]] == ["LATTE-T"]
    assert admin_api.get("/api/v1/products/999").status_code == 404


def test_categories_list(admin_api: ApiClient, shop: dict) -> None:
    category_create(slug="food", name="フード", name_en="Food")
    listed = admin_api.get("/api/v1/categories").json()
    assert listed["count"] == 2
    assert [(c["slug"], c["name_en"], c["parent"]) for c in listed["items"]] == [
        ("drinks", "Drinks", None),
        ("food", "Food", None),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "X", "name": "x", "price_minor": -1}, "price_minor"),
        ({"sku": "X", "name": "x", "price_minor": 1.5}, "price_minor"),
        ({"sku": "X", "name": "x", "price_minor": "100"}, "price_minor"),
        ({"sku": "X", "name": "x"}, "price_minor"),
        ({"sku": "X", "name": "x", "price_minor": 1, "currency": "XYZ"}, "currency"),
        ({"sku": "X", "name": "x", "price_minor": 1, "category": "nope"}, "category"),
        ({"sku": "LATTE-T", "name": "x", "price_minor": 1}, "sku"),
        ({"sku": "X", "name": "x", "price_minor": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_product_input_is_422_and_writes_nothing(
    admin_api: ApiClient, shop: dict, body: dict, field: str
) -> None:
    response = admin_api.post("/api/v1/products", body)
    assert response.status_code == 422
    assert fields(response) == [field]
    assert Product.objects.count() == 2


def test_bad_product_patch_changes_nothing(admin_api: ApiClient, shop: dict) -> None:
    url = f"/api/v1/products/{shop['latte'].pk}"
    response = admin_api.patch(url, {"name": "新ラテ", "price_minor": -5})
    assert response.status_code == 422
    assert fields(response) == ["price_minor"]
    response = admin_api.patch(url, {"name": "新ラテ", "sku": "BEANS-200"})
    assert fields(response) == ["sku"]
    latte = Product.objects.get(pk=shop["latte"].pk)
    assert (latte.name, latte.sku, latte.price_minor) == ("カフェラテ", "LATTE-T", 520)
