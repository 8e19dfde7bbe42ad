from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from kizuna.catalog.services import product_create
from kizuna.commerce.models import Order
from kizuna.commerce.services import order_place
from kizuna.customers.models import Customer
from kizuna.customers.services import customer_create


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Login rate-limit counters live in the cache: no test inherits another's attempts."""
    cache.clear()
    yield
    cache.clear()


@dataclass
class Shop:
    customer: Customer
    order: Order


@pytest.fixture
def shop(db: None) -> Shop:
    product_create(data={"sku": "BEAN-1", "name": "深煎りブレンド", "price_minor": 1200})
    customer = customer_create(
        data={
            "family_name": "佐藤",
            "given_name": "花子",
            "family_name_kana": "サトウ",
            "given_name_kana": "ハナコ",
            "email": "hanako@example.jp",
            "prefecture": "JP-13",
        }
    )
    order = order_place(
        customer=customer, number="WEB-1001", lines=[{"sku": "BEAN-1", "quantity": 2}]
    )
    return Shop(customer=customer, order=order)


@pytest.fixture
def login_as(client: Client, make_staff: Callable[..., Any]) -> Callable[[str], Any]:
    def login(role: str) -> Any:
        user = make_staff(role)
        client.force_login(user)
        return user

    return login
