from __future__ import annotations

from datetime import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from kizuna.core.timeutil import JST
from kizuna.subscriptions import services
from kizuna.subscriptions.models import Plan, Subscription

pytestmark = pytest.mark.django_db

PAGES = [
    "/subscriptions/",
    "/subscriptions/list/",
    "/subscriptions/plans/",
    "/subscriptions/import/",
]


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_pages_need_login_and_permission(make_staff) -> None:
    for path in PAGES:
        r = Client().get(path)
        assert r.status_code == 302 and "/login/" in r["Location"], path
    nobody = make_staff("support", username="nobody")
    nobody.groups.clear()
    for path in PAGES:
        assert login(nobody).get(path).status_code == 403, path
    analyst = login(make_staff("analyst"))
    assert analyst.get("/subscriptions/").status_code == 200
    assert analyst.post("/subscriptions/plans/", {"name": "X", "price_yen": "1"}).status_code == 403
    assert analyst.get("/subscriptions/import/").status_code == 403


def test_dashboard_detail_actions_and_plans(admin_user, monthly, customer) -> None:
    sub = services.subscription_start(
        customer=customer, plan=monthly, started_at=datetime(2026, 1, 5, tzinfo=JST)
    )
    client = login(admin_user)
    html = client.get("/subscriptions/").content.decode()
    assert "MRR" in html and "¥3,000" in html and 'data-figure="fig-churn"' in html
    assert client.get(f"/subscriptions/{sub.pk}/").status_code == 200
    r = client.post(
        f"/subscriptions/{sub.pk}/action/", {"action": "cancel", "reason": ""}, follow=True
    )
    assert "Give the reason for the cancellation." in r.content.decode()
    client.post(f"/subscriptions/{sub.pk}/action/", {"action": "cancel", "reason": "price"})
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.ended_at is not None
    r = client.post(
        "/subscriptions/plans/",
        {"name": "Neg", "price_yen": "-1", "interval": "month", "trial_days": "0"},
    )
    assert r.status_code == 200 and "non-negative" in r.content.decode()
    assert Plan.objects.count() == 1
    r = client.post(
        "/subscriptions/plans/",
        {"name": "Tea", "price_yen": "1500", "interval": "week", "trial_days": "7"},
    )
    assert r.status_code == 302 and Plan.objects.filter(code="tea", interval="week").exists()
    assert sub.ended_at is not None and sub.ended_at >= sub.started_at


def test_import_page_shows_row_errors(admin_user, monthly, customer) -> None:
    client = login(admin_user)
    bad = SimpleUploadedFile(
        "subs.csv",
        f"customer_id,plan,started_at,ended_at,status\n{customer.pk},coffee,2026-03-01,2026-02-01,cancelled\n".encode(),
    )
    r = client.post("/subscriptions/import/", {"file": bad})
    html = r.content.decode()
    assert "rows[1].ended_at" in html and "cannot end before it started" in html
    assert Subscription.objects.count() == 0
    good = SimpleUploadedFile(
        "subs.csv", f"customer_id,plan,started_at\n{customer.pk},coffee,2026-03-01\n".encode()
    )
    r = client.post("/subscriptions/import/", {"file": good})
    assert r.status_code == 302 and Subscription.objects.count() == 1
