"""Fixtures: a small shop whose customers have one of two tastes (coffee or tea), loaded
through the bulk loaders, and an artifact directory per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from kizuna.catalog.models import Category, Product
from kizuna.catalog.services import category_create, product_create
from kizuna.commerce.bulk import LineRow, OrderRow, orders_bulk_place
from kizuna.core.timeutil import JST
from kizuna.customers.bulk import CustomerRow, customers_bulk_create

AS_OF = datetime(2026, 6, 30, 23, 0, tzinfo=JST)
SMALL = {
    "factors": 2,
    "regularization": 1.0,
    "iterations": 10,
    "bpr_factors": 4,
    "bpr_iterations": 40,
    "neighbours": 5,
    "threads": 1,
}


@dataclass
class Shop:
    coffee: Category
    tea: Category
    products: dict[str, Product]
    customers: list[int]  # even index: coffee lover, odd: tea lover


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Any) -> Iterator[None]:
    from django.utils import translation

    from kizuna.recommendations import selectors

    settings.DATA_DIR = tmp_path / "data"
    settings.KIZUNA_RECOMMENDATIONS_PARAMS = SMALL
    settings.KIZUNA_RECOMMENDATIONS_VERSION_CHECK_SECONDS = 0  # see the active version at once
    selectors.cache_clear()
    with translation.override("en"):
        yield
    selectors.cache_clear()


@pytest.fixture
def shop(db: None) -> Callable[..., Shop]:
    def make(n: int = 80, seed: int = 5) -> Shop:
        coffee = category_create(slug="coffee", name="コーヒー")
        tea = category_create(slug="tea", name="お茶")
        goods = category_create(slug="goods", name="グッズ")
        products = {}
        for prefix, category in (("C", coffee), ("T", tea), ("G", goods)):
            for i in range(1, 6 if prefix != "G" else 3):
                sku = f"{prefix}{i}"
                products[sku] = product_create(
                    data={
                        "sku": sku,
                        "name": f"{category.name}{i}",
                        "price_minor": 400 + 10 * i,
                        "category": category.slug,
                    }
                )
        rng = np.random.default_rng(seed)
        ids = customers_bulk_create(
            rows=[
                CustomerRow(
                    data={
                        "family_name": f"客{i}",
                        "prefecture": "JP-13" if i % 2 == 0 else "JP-27",
                    },
                    created_at=AS_OF - timedelta(days=400),
                )
                for i in range(n)
            ]
        )
        rows = []
        for index, customer_id in enumerate(ids):
            prefix = "C" if index % 2 == 0 else "T"
            liked = rng.permutation([f"{prefix}{i}" for i in range(1, 6)])
            for k, sku in enumerate(liked[:3]):
                day = (300, 170, 50)[k] - rng.uniform(0, 45)  # the third one in the holdout
                rows.append(
                    OrderRow(
                        number=f"S-{index}-{k}",
                        customer_id=customer_id,
                        placed_at=AS_OF - timedelta(days=float(day)),
                        lines=[LineRow(sku=str(sku))]
                        + ([LineRow(sku="G1")] if k == 0 and index % 4 == 0 else []),
                    )
                )
        orders_bulk_place(rows=rows)
        return Shop(coffee, tea, products, ids)

    return make
