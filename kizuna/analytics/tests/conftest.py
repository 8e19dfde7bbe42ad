"""Fixtures: a shop with a simulated purchase history (BG/NBD world), loaded through the
bulk loaders, so scoring runs on real SQL over real orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from kizuna.catalog.services import product_create
from kizuna.commerce.bulk import LineRow, OrderRow, orders_bulk_place
from kizuna.core.timeutil import JST
from kizuna.customers.bulk import CustomerRow, customers_bulk_create

AS_OF = datetime(2026, 6, 30, 23, 0, tzinfo=JST)
START = AS_OF - timedelta(days=700)


@dataclass
class History:
    customer_ids: list[int]
    orders: int


@pytest.fixture(autouse=True)
def _english() -> Any:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def history(db: None) -> Callable[..., History]:
    """history(n, seed): n customers, each with a first purchase in the last 700 days and
    BG/NBD repeat purchases after it; every order is one ¥500 x quantity line, the
    quantity varying around each customer's own usual amount."""
    product_create(data={"sku": "CUP", "name": "カップ", "price_minor": 500})

    def make(n: int = 120, seed: int = 1, prefix: str = "H") -> History:
        rng = np.random.default_rng(seed)
        ids = customers_bulk_create(
            rows=[CustomerRow(data={"family_name": f"客{i}"}, created_at=START) for i in range(n)]
        )
        rows: list[OrderRow] = []
        for index, customer_id in enumerate(ids):
            first = rng.uniform(0, 690)
            rate = rng.gamma(0.8, 1 / 25)
            drop = rng.beta(1.0, 5.0)
            usual = rng.gamma(3.0, 1.0)  # customers differ in how much they buy
            t = first
            times = [t]
            while True:
                t += rng.exponential(1 / rate)
                if t >= 699:
                    break
                times.append(t)
                if rng.random() < drop:
                    break
            for k, t in enumerate(times):
                rows.append(
                    OrderRow(
                        number=f"{prefix}-{index}-{k}",
                        customer_id=customer_id,
                        placed_at=START + timedelta(days=float(t)),
                        lines=[LineRow(sku="CUP", quantity=1 + int(rng.poisson(usual)))],
                    )
                )
        orders_bulk_place(rows=rows)
        return History(customer_ids=ids, orders=len(rows))

    return make


@pytest.fixture
def small_parameters() -> Any:
    from kizuna.analytics.scoring.population import Parameters

    return Parameters(min_customers=20, min_repeat_customers=10)
