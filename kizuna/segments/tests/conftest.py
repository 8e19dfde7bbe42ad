"""A small shop whose three customers differ in every kind of data a rule can read, set up
through the services of each app (scores as a scoring run stores them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from kizuna.analytics.models import CustomerScore, RunStatus, RunTrigger, ScoringRun
from kizuna.catalog.services import category_create, product_create
from kizuna.commerce.services import order_place, refund_create
from kizuna.core.timeutil import local_date, now
from kizuna.customers.models import Customer
from kizuna.customers.services import (
    consent_record,
    customer_create,
    event_record,
    identity_add,
    trait_definition_create,
)
from kizuna.loyalty.models import Account, Programme, Tier
from kizuna.loyalty.services import account_for


@dataclass
class World:
    a: Customer
    b: Customer
    c: Customer
    merged: Customer

    def names(self, ids: set[int]) -> set[str]:
        by_id = {self.a.pk: "a", self.b.pk: "b", self.c.pk: "c", self.merged.pk: "merged"}
        return {by_id.get(i, f"#{i}") for i in ids}


def _score(customer: Customer, run: ScoringRun, **values: object) -> None:
    today = local_date(now())
    defaults: dict[str, object] = {
        "model_version": "test",
        "scored_at": now(),
        "orders": 1,
        "frequency": 0,
        "recency_days": 10,
        "age_days": 10,
        "first_purchase": today,
        "last_purchase": today,
        "monetary_minor": 1000,
        "r_score": 3,
        "f_score": 3,
        "m_score": 3,
        "expected_purchases_30d": 0.1,
        "expected_purchases": 1.0,
        "expected_aov_minor": 1000,
        "expected_gap_days": 30.0,
        "days_overdue": 0,
    }
    defaults.update(values)
    CustomerScore.objects.create(customer=customer, run=run, **defaults)


@pytest.fixture
def world(db: None) -> World:
    t = now()
    trait_definition_create(key="vip", label="VIP", type="boolean")
    trait_definition_create(key="shoe", label="Shoe size", type="number")
    trait_definition_create(key="plan", label="Plan", type="choice", choices=["gold", "silver"])
    trait_definition_create(key="since", label="Member since", type="date")
    a = customer_create(
        data={
            "family_name": "東京",
            "prefecture": "JP-13",
            "gender": "female",
            "email": "a@x.jp",
            "birthday": "1990-05-10",
            "traits": {"vip": True, "shoe": 24, "plan": "gold", "since": "2024-01-15"},
        }
    )
    b = customer_create(
        data={
            "family_name": "大阪",
            "prefecture": "JP-27",
            "gender": "male",
            "birthday": "1985-12-01",
            "locale": "en",
            "traits": {"vip": False, "shoe": 27},
        }
    )
    c = customer_create(data={"family_name": "京都", "prefecture": "JP-26", "email": "c@x.jp"})
    merged = customer_create(data={"family_name": "東京", "prefecture": "JP-13"})
    Customer.objects.filter(pk=merged.pk).update(merged_into=a)

    identity_add(customer=a, kind="line", value="U" + "0" * 32)
    consent_record(
        customer=a, purpose="marketing", channel="email", status="granted", source="test"
    )
    consent_record(
        customer=b,
        purpose="marketing",
        channel="email",
        status="granted",
        source="test",
        recorded_at=t - timedelta(days=5),
    )
    consent_record(
        customer=b, purpose="marketing", channel="email", status="withdrawn", source="test"
    )
    consent_record(customer=c, purpose="marketing", channel="any", status="granted", source="test")

    for days in (1, 3, 9):
        event_record(
            type="Product Viewed",
            customer=a,
            occurred_at=t - timedelta(days=days),
            properties={"category": "shoes", "price": 5000},
        )
    event_record(
        type="Product Viewed",
        customer=b,
        occurred_at=t - timedelta(days=40),
        properties={"category": "bags", "price": 800},
    )

    drinks_parent = category_create(slug="beverages", name="飲み物")
    category_create(slug="drinks", name="ドリンク", parent=drinks_parent)
    category_create(slug="beans", name="豆")
    product_create(data={"sku": "LATTE", "name": "ラテ", "price_minor": 500, "category": "drinks"})
    product_create(data={"sku": "BEANS", "name": "豆", "price_minor": 1600, "category": "beans"})
    order_place(customer=a, number="A1", lines=[{"sku": "LATTE"}], placed_at=t - timedelta(days=20))
    order_place(customer=a, number="A2", lines=[{"sku": "BEANS"}], placed_at=t - timedelta(days=2))
    order_b = order_place(
        customer=b, number="B1", lines=[{"sku": "LATTE"}], placed_at=t - timedelta(days=200)
    )
    refund_create(order=order_b, amount_minor=500, idempotency_key="refund-b1")

    run = ScoringRun.objects.create(status=RunStatus.SUCCEEDED, trigger=RunTrigger.CLI)
    _score(a, run, segment="champions", clv_minor=50_000, p_alive=0.9, at_risk=False)
    _score(b, run, segment="at_risk", clv_minor=3_000, p_alive=0.2, at_risk=True)

    programme = Programme.objects.create(name="P", point_value=Decimal("1"))
    tiers = {
        code: Tier.objects.create(programme=programme, code=code, name=code, rank=rank)
        for rank, code in enumerate(["regular", "gold"])
    }
    account_for(a)
    account_for(b)
    Account.objects.filter(customer=a).update(balance=1200, tier=tiers["gold"])
    Account.objects.filter(customer=b).update(balance=50, tier=tiers["regular"])
    return World(a=a, b=b, c=c, merged=merged)


@pytest.fixture(autouse=True)
def _english() -> Any:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield
