"""Fixtures for the API tests: API keys per role, an authenticated client, shop data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kizuna.api.tests.helpers import ApiClient
from kizuna.catalog.services import category_create, product_create
from kizuna.customers.services import customer_create
from kizuna.iam.services import api_key_create


@pytest.fixture
def make_key(make_staff: Callable[..., Any]) -> Callable[[str], Any]:
    """make_key(role) -> IssuedApiKey, created by a staff user of that role."""

    def make(role: str) -> Any:
        creator = make_staff(role)
        return api_key_create(name=f"{role} key", role=role, created_by=creator)

    return make


@pytest.fixture
def api_as(make_key: Callable[[str], Any]) -> Callable[[str], ApiClient]:
    """api_as(role) -> ApiClient authenticated with a fresh key of that role."""

    def make(role: str) -> ApiClient:
        return ApiClient(make_key(role).secret)

    return make


@pytest.fixture
def admin_api(api_as: Callable[[str], ApiClient]) -> ApiClient:
    return api_as("admin")


@pytest.fixture
def shop() -> dict[str, Any]:
    category_create(slug="drinks", name="ドリンク", name_en="Drinks")
    latte = product_create(
        data={"sku": "LATTE-T", "name": "カフェラテ", "price_minor": 520, "category": "drinks"}
    )
    beans = product_create(
        data={"sku": "BEANS-200", "name": "ハウスブレンド豆", "price_minor": 1600}
    )
    customer = customer_create(data={"family_name": "田中", "email": "tanaka@example.jp"})
    return {"latte": latte, "beans": beans, "customer": customer}
