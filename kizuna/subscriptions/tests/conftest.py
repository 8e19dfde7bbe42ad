from __future__ import annotations

from collections.abc import Iterator

import pytest

from kizuna.customers.services import customer_create
from kizuna.subscriptions import services
from kizuna.subscriptions.models import Plan


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def monthly(db: None) -> Plan:
    return services.plan_create(data={"code": "coffee", "name": "Coffee", "price_yen": 3000})


@pytest.fixture
def yearly(db: None) -> Plan:
    return services.plan_create(
        data={"code": "pro-year", "name": "Pro (year)", "price_yen": 120000, "interval": "year"}
    )


@pytest.fixture
def customer(db: None):
    return customer_create(data={"family_name": "田中", "email": "tanaka@example.jp"})


@pytest.fixture
def other(db: None):
    return customer_create(data={"family_name": "佐藤", "email": "sato@example.jp"})
