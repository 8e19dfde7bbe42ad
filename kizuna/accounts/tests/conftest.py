from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest

from kizuna.accounts import services
from kizuna.accounts.models import Pipeline
from kizuna.analytics.models import CustomerScore
from kizuna.core.timeutil import now
from kizuna.customers.services import customer_create


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


def make_pipeline(name: str = "New business") -> Pipeline:
    return services.pipeline_create(
        name=name,
        stages=[
            {"name": "Lead", "probability": 10},
            {"name": "Proposal", "probability": 50},
            {"name": "Negotiation", "probability": 80},
            {"name": "Won", "probability": 100, "outcome": "won"},
            {"name": "Lost", "probability": 0, "outcome": "lost"},
        ],
    )


@pytest.fixture
def pipeline(db: None) -> Pipeline:
    return make_pipeline()


@pytest.fixture
def customer(db: None):
    return customer_create(data={"family_name": "田中", "email": "tanaka@example.jp"})


@pytest.fixture
def other(db: None):
    return customer_create(data={"family_name": "佐藤", "email": "sato@example.jp"})


@pytest.fixture
def sales(make_staff) -> Callable[..., object]:
    """A staff user of the sales role (sees only their own deals and tasks)."""

    def make(username: str):
        return make_staff("sales", username=username)

    return make


def score(customer, *, clv: int, p_alive: float = 0.9, at_risk: bool = False) -> CustomerScore:
    today = date(2026, 1, 1)
    return CustomerScore.objects.create(
        customer=customer,
        run_id=1,
        model_version="test",
        scored_at=now(),
        orders=3,
        frequency=2,
        recency_days=10,
        age_days=100,
        first_purchase=today,
        last_purchase=today,
        monetary_minor=clv // 2,
        r_score=3,
        f_score=3,
        m_score=3,
        segment="loyal",
        p_alive=p_alive,
        expected_purchases_30d=0.5,
        expected_purchases=2.0,
        expected_aov_minor=1000,
        clv_minor=clv,
        expected_gap_days=30,
        days_overdue=0,
        at_risk=at_risk,
    )
