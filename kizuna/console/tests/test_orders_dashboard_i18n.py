"""Orders and refunds, the dashboard figures, and the language switch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kizuna.commerce import selectors as commerce_selectors
from kizuna.commerce.models import Order, Refund
from kizuna.commerce.services import order_place
from kizuna.customers.services import customer_create

from .conftest import Shop

pytestmark = pytest.mark.django_db


def test_refund_double_submit_refunds_once(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("support")
    page = client.get(reverse("console:order_detail", args=[shop.order.pk]))
    key = page.context["refund_form"]["idempotency_key"].value()
    assert key and f'value="{key}"' in page.content.decode()
    url = reverse("console:refund_add", args=[shop.order.pk])
    data = {"amount": "1000", "reason": "破損", "idempotency_key": key}
    first, second = client.post(url, data), client.post(url, data)
    assert (first.status_code, second.status_code) == (302, 302)
    assert Refund.objects.filter(order=shop.order).count() == 1
    order = Order.objects.get(pk=shop.order.pk)
    assert (order.refunded_minor, order.status) == (1000, "partially_refunded")
    # A fresh form carries a fresh key.
    again = client.get(reverse("console:order_detail", args=[shop.order.pk]))
    assert again.context["refund_form"]["idempotency_key"].value() != key


def test_refund_over_the_remaining_amount_is_refused(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("admin")
    response = client.post(
        reverse("console:refund_add", args=[shop.order.pk]),
        {"amount": "2401", "idempotency_key": "k-over"},
    )
    assert response.status_code == 400
    assert "amount" in response.context["refund_form"].errors
    assert Refund.objects.count() == 0


def test_order_pages_list_and_link_to_the_customer(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("analyst")
    listing = client.get(reverse("console:order_list"), {"q": "WEB-1001"}).content.decode()
    assert reverse("console:order_detail", args=[shop.order.pk]) in listing
    detail = client.get(reverse("console:order_detail", args=[shop.order.pk])).content.decode()
    assert reverse("console:customer_detail", args=[shop.customer.pk]) in detail
    assert "深煎りブレンド" in detail and "¥2,400" in detail
    assert 'name="idempotency_key"' not in detail  # analysts cannot refund
    assert client.get(reverse("console:order_detail", args=[10**9])).status_code == 404


def test_products_list_and_detail(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("analyst")
    listing = client.get(reverse("console:product_list"), {"q": "BEAN"}).content.decode()
    assert "深煎りブレンド" in listing and "¥1,200" in listing
    product_id = shop.order.lines.get().product_id
    assert (
        "BEAN-1"
        in client.get(reverse("console:product_detail", args=[product_id])).content.decode()
    )


def test_dashboard_kpis(client: Client, shop: Shop, login_as: Callable[[str], Any]) -> None:
    order_place(customer=shop.customer, number="WEB-1002", lines=[{"sku": "BEAN-1"}])
    customer_create(data={"family_name": "一見"})
    login_as("analyst")
    response = client.get(reverse("console:dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    ctx = response.context
    assert ctx["totals"] == {"customers": 2, "with_email": 1}
    assert ctx["all_time"]["orders"] == 2 and ctx["all_time"]["net_revenue"] == 3600
    assert ctx["repeat"] == {"buyers": 1, "repeaters": 1, "rate": 1.0}
    page = response.content.decode()
    assert "¥3,600" in page and "100.0%" in page and "Worker offline" in page
    assert len(ctx["chart"]["bars"]) == 24
    assert page.count('<rect class="bar"') == 24
    assert "style=" not in page and "<script>" not in page  # the CSP allows neither


def test_monthly_revenue_buckets_by_jst_month(shop: Shop) -> None:
    # 2025-01-31 23:30 JST is still January; 2025-01-31 15:30 UTC is 1 February in Japan.
    for number, placed in [
        ("J-1", datetime(2025, 1, 31, 14, 30, tzinfo=UTC)),
        ("F-1", datetime(2025, 1, 31, 15, 30, tzinfo=UTC)),
    ]:
        order_place(
            customer=shop.customer, number=number, placed_at=placed, lines=[{"sku": "BEAN-1"}]
        )
    months = commerce_selectors.monthly_revenue(months=3, until=datetime(2025, 2, 10, tzinfo=UTC))
    assert [(str(m["month"]), m["orders"], m["net_revenue"]) for m in months] == [
        ("2024-12-01", 0, 0),
        ("2025-01-01", 1, 1200),
        ("2025-02-01", 1, 1200),
    ]


def test_language_switch(client: Client, shop: Shop, login_as: Callable[[str], Any]) -> None:
    login_as("analyst")
    url = reverse("console:customer_list")
    response = client.post("/i18n/setlang/", {"language": "en", "next": url})
    assert response.status_code == 302
    english = client.get(url).content.decode()
    assert ">Customers</a>" in english and "顧客" not in english
    client.post("/i18n/setlang/", {"language": "ja", "next": url})
    japanese = client.get(url).content.decode()
    assert ">顧客</a>" in japanese and ">Customers</a>" not in japanese
    assert 'lang="ja"' in japanese
