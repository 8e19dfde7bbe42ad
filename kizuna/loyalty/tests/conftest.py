from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from kizuna.catalog.services import category_create, product_create
from kizuna.customers.services import customer_create
from kizuna.loyalty import services
from kizuna.loyalty.models import Programme, Tier


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_event_points() -> None:
    """No test sees the programme snapshot of the one before it."""
    services._forget_event_points()


@pytest.fixture
def programme(db: None) -> Programme:
    programme = Programme.objects.create(
        name="Kizuna Coffee",
        earn_points=1,
        earn_per_yen=100,
        expiry_months=12,
        point_value=Decimal("1"),
        expected_breakage=Decimal("0.2"),
        category_multipliers={"beans": "2"},
    )
    for rank, (code, threshold, mult) in enumerate(
        [("regular", 0, "1"), ("silver", 20000, "1.5"), ("gold", 50000, "2")]
    ):
        Tier.objects.create(
            programme=programme,
            code=code,
            name=code.title(),
            rank=rank,
            threshold=threshold,
            earn_multiplier=Decimal(mult),
        )
    return programme


@pytest.fixture
def shop(db: None) -> dict:
    category_create(slug="beans", name="豆", name_en="Beans")
    category_create(slug="drinks", name="ドリンク", name_en="Drinks")
    latte = product_create(
        data={"sku": "LATTE", "name": "カフェラテ", "price_minor": 500, "category": "drinks"}
    )
    beans = product_create(
        data={"sku": "BEANS", "name": "豆", "price_minor": 1600, "category": "beans"}
    )
    return {"latte": latte, "beans": beans}


@pytest.fixture
def customer(db: None):
    return customer_create(data={"family_name": "田中", "email": "tanaka@example.jp"})


@pytest.fixture
def other(db: None):
    return customer_create(data={"family_name": "佐藤", "email": "sato@example.jp"})
