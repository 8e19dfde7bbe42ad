from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from kizuna.loyalty import services
from kizuna.loyalty.models import LedgerEntry, LotKind, Reward

pytestmark = pytest.mark.django_db


def login(make_staff, role: str) -> Client:
    client = Client()
    user = make_staff(role)
    client.force_login(user)
    return client


def test_customer_360_panel_redeem_and_adjust(programme, customer, make_staff):
    services.points_award(customer=customer, points=300, idempotency_key="s", reason="welcome")
    reward = Reward.objects.create(code="mug", name="マグカップ", points_price=200)
    client = login(make_staff, "admin")
    page = client.get(f"/customers/{customer.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="loyalty"' in html and "/m/" in html
    r = client.post(
        f"/customers/{customer.pk}/loyalty/redeem/",
        {"reward": reward.pk, "idempotency_key": "form-1"},
    )
    assert r.status_code == 302
    client.post(
        f"/customers/{customer.pk}/loyalty/redeem/",
        {"reward": reward.pk, "idempotency_key": "form-1"},
    )  # double submit
    assert LedgerEntry.objects.filter(kind="redeem").count() == 1
    r = client.post(
        f"/customers/{customer.pk}/loyalty/adjust/",
        {"points": "-500", "reason": "x", "idempotency_key": "adj"},
        follow=True,
    )
    assert "100" in r.content.decode()
    assert LedgerEntry.objects.filter(kind="adjust").count() == 0
    analyst = login(make_staff, "analyst")
    r = analyst.post(
        f"/customers/{customer.pk}/loyalty/adjust/",
        {"points": "5", "reason": "x", "idempotency_key": "adj2"},
    )
    assert r.status_code == 403
    assert LedgerEntry.objects.count() == 2


def test_liability_report_and_csv(programme, customer, other, make_staff):
    services.points_award(customer=customer, points=1000, idempotency_key="a", reason="x")
    services.points_award(
        customer=other,
        points=500,
        idempotency_key="b",
        reason="bought",
        kind=LotKind.PAID,
        value_per_point=Decimal("1"),
    )
    client = login(make_staff, "analyst")
    page = client.get("/loyalty/liability/")
    assert page.status_code == 200
    csv = client.get("/loyalty/liability/?format=csv").content.decode("utf-8-sig").splitlines()
    assert csv[0].startswith("as_of,kind")
    rows = [line.split(",") for line in csv[1:]]
    free = next(r for r in rows if r[1] == "free")
    paid = next(r for r in rows if r[1] == "paid")
    assert (free[3], free[4], free[6]) == ("1000", "1000", "800")  # 20 % breakage
    assert (paid[3], paid[6]) == ("500", "500")  # prepaid: no breakage netted
    assert rows[-1][1] == "total" and rows[-1][6] == "1300"
    assert client.get("/loyalty/").status_code == 200
    assert Client().get("/loyalty/liability/").status_code == 302  # anonymous → login
