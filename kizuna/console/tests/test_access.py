"""Who may see and do what: anonymous users sign in first, each role gets exactly its
permissions (403 otherwise), and sign-in attempts are rate-limited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kizuna.commerce.models import Refund
from kizuna.customers.models import ConsentEntry, Customer

from .conftest import Shop

pytestmark = pytest.mark.django_db


def _pages(shop: Shop) -> dict[str, str]:
    c, o = shop.customer.pk, shop.order.pk
    product = shop.order.lines.get().product_id
    return {
        "dashboard": reverse("console:dashboard"),
        "customers": reverse("console:customer_list"),
        "customer": reverse("console:customer_detail", args=[c]),
        "timeline": reverse("console:customer_timeline", args=[c]),
        "edit": reverse("console:customer_edit", args=[c]),
        "products": reverse("console:product_list"),
        "product": reverse("console:product_detail", args=[product]),
        "orders": reverse("console:order_list"),
        "order": reverse("console:order_detail", args=[o]),
    }


def test_anonymous_is_sent_to_login_from_every_page(client: Client, shop: Shop) -> None:
    login = reverse("console:login")
    pages = _pages(shop)
    posts = [
        reverse("console:identity_add", args=[shop.customer.pk]),
        reverse("console:consent_add", args=[shop.customer.pk]),
        reverse("console:refund_add", args=[shop.order.pk]),
    ]
    for url in [*pages.values(), *posts]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{login}?next={url}", url
    for url in posts:
        assert client.post(url, {})["Location"].startswith(login)
    assert ConsentEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("role", "forbidden"),
    [
        ("admin", set()),
        ("marketer", set()),
        ("analyst", {"edit"}),
        ("support", set()),
    ],
)
def test_each_role_sees_the_pages_its_permissions_allow(
    client: Client, shop: Shop, login_as: Callable[[str], Any], role: str, forbidden: set[str]
) -> None:
    login_as(role)
    for name, url in _pages(shop).items():
        expected = 403 if name in forbidden else 200
        assert client.get(url).status_code == expected, (role, name)


def test_a_signed_in_user_without_a_role_gets_403(
    client: Client, shop: Shop, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user(username="nobody", password="x-Pass-123!")
    client.force_login(user)
    assert client.get(reverse("console:customer_list")).status_code == 403
    assert client.get(reverse("console:dashboard")).status_code == 403


def test_analyst_cannot_edit_a_customer_or_refund(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("analyst")
    edit = client.post(
        reverse("console:customer_edit", args=[shop.customer.pk]),
        {"family_name": "変更", "gender": "unspecified", "locale": "ja"},
    )
    refund = client.post(
        reverse("console:refund_add", args=[shop.order.pk]),
        {"amount": "100", "idempotency_key": "k-analyst"},
    )
    identity = client.post(
        reverse("console:identity_add", args=[shop.customer.pk]),
        {"kind": "external", "value": "POS-1"},
    )
    assert (edit.status_code, refund.status_code, identity.status_code) == (403, 403, 403)
    assert Customer.objects.get(pk=shop.customer.pk).family_name == "佐藤"
    assert Refund.objects.count() == 0
    assert not shop.customer.identities.filter(kind="external").exists()


def test_marketer_cannot_refund(client: Client, shop: Shop, login_as: Callable[[str], Any]) -> None:
    login_as("marketer")
    page = client.get(reverse("console:order_detail", args=[shop.order.pk]))
    assert 'name="idempotency_key"' not in page.content.decode()
    response = client.post(
        reverse("console:refund_add", args=[shop.order.pk]),
        {"amount": "100", "idempotency_key": "k-marketer"},
    )
    assert response.status_code == 403
    assert Refund.objects.count() == 0


def test_support_can_record_consent(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    user = login_as("support")
    response = client.post(
        reverse("console:consent_add", args=[shop.customer.pk]),
        {
            "purpose": "marketing",
            "channel": "line",
            "status": "granted",
            "legal_basis": "consent",
            "notice_version": "2026-04",
            "note": "店頭で口頭確認",
        },
    )
    assert response.status_code == 302
    entry = ConsentEntry.objects.get(customer=shop.customer)
    assert (entry.purpose, entry.channel, entry.status, entry.source) == (
        "marketing",
        "line",
        "granted",
        "console",
    )
    assert entry.recorded_by == user
    assert entry.evidence == {"note": "店頭で口頭確認"}


@pytest.mark.usefixtures("ratelimit_clock_pinned")
def test_login_works_and_is_rate_limited_per_ip(client: Client, make_staff: Any) -> None:
    make_staff("analyst", username="aiko", password="s3cret-Pass!")
    url = reverse("console:login")
    ok = client.post(url, {"username": "aiko", "password": "s3cret-Pass!"})
    assert ok.status_code == 302 and ok["Location"] == reverse("console:dashboard")
    client.logout()
    for _ in range(9):  # 10 attempts per minute in all, the successful one included
        assert client.post(url, {"username": "aiko", "password": "wrong"}).status_code == 200
    blocked = client.post(url, {"username": "aiko", "password": "s3cret-Pass!"})
    assert blocked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address is not affected.
    other = client.post(
        url, {"username": "aiko", "password": "s3cret-Pass!"}, REMOTE_ADDR="10.0.0.7"
    )
    assert other.status_code == 302


def test_logout_is_a_post_and_ends_the_session(
    client: Client, login_as: Callable[[str], Any]
) -> None:
    login_as("analyst")
    response = client.post(reverse("console:logout"))
    assert response.status_code == 302
    assert client.get(reverse("console:dashboard")).status_code == 302


def test_header_shows_role_and_admin_link_only_for_superusers(
    client: Client, make_staff: Any, login_as: Callable[[str], Any]
) -> None:
    login_as("marketer")
    page = client.get(reverse("console:dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Marketer" in page
    assert 'href="/admin/"' not in page
    boss = make_staff("admin")
    boss.is_superuser = True
    boss.save()
    client.force_login(boss)
    assert 'href="/admin/"' in client.get(reverse("console:dashboard")).content.decode()
