"""Points outstanding and the points liability as KPIs over time (issue 4's KPI list)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from kizuna.analytics.models import Kpi
from kizuna.analytics.selectors import compute_insight
from kizuna.analytics.services import business_zone
from kizuna.core.timeutil import now
from kizuna.customers.services import customer_create
from kizuna.loyalty import services as loyalty
from kizuna.loyalty.models import Programme

pytestmark = pytest.mark.django_db


def test_points_kpis_follow_the_ledger_month_by_month() -> None:
    zone = business_zone()
    today = now().astimezone(zone)
    this_month = datetime(today.year, today.month, 1, 12, tzinfo=zone)
    last_month = (this_month - timedelta(days=1)).replace(day=10)
    before = compute_insight(months=3, until=now())
    assert before.kpis[Kpi.POINTS_OUTSTANDING] == [None, None, None]  # no programme yet

    Programme.objects.create(name="Kizuna Coffee", point_value=Decimal("1.5"))
    customer = customer_create(data={"email": "p@example.com"})
    loyalty.points_award(
        customer=customer, points=400, idempotency_key="k1", reason="visit", occurred_at=last_month
    )
    loyalty.points_award(
        customer=customer, points=100, idempotency_key="k2", reason="review", occurred_at=this_month
    )
    data = compute_insight(months=3, until=now())
    assert data.kpis[Kpi.POINTS_OUTSTANDING] == [0.0, 400.0, 500.0]
    assert data.kpis[Kpi.POINTS_LIABILITY] == [0.0, 600.0, 750.0]
