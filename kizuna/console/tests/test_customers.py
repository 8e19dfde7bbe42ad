"""Customer list (search, filters, query count) and the customer 360 with its forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kizuna.commerce.services import order_place
from kizuna.customers.models import Customer, Event, Identity
from kizuna.customers.services import (
    consent_record,
    customer_create,
    event_record,
    trait_definition_create,
)

from .conftest import Shop

pytestmark = pytest.mark.django_db


def test_search_finds_katakana_names_when_typing_hiragana(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    customer_create(data={"family_name": "鈴木", "family_name_kana": "スズキ"})
    login_as("marketer")  # analysts see names masked (privacy)
    page = client.get(reverse("console:customer_list"), {"q": "さとう"}).content.decode()
    assert "佐藤 花子" in page
    assert "鈴木" not in page


def test_live_search_renders_only_the_results_partial(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("marketer")  # analysts see names masked (privacy)
    response = client.get(reverse("console:customer_list"), {"q": "はなこ"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "佐藤 花子" in body
    assert "<html" not in body and 'name="q"' not in body
    assert "HX-Request" in response["Vary"]


def test_list_shows_order_stats_and_filters(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    customer_create(data={"family_name": "梅田", "prefecture": "JP-27"})
    login_as("marketer")  # analysts see names masked (privacy)
    page = client.get(reverse("console:customer_list"), {"prefecture": "JP-13"}).content.decode()
    assert "佐藤 花子" in page and "梅田" not in page
    assert "¥2,400" in page  # net spend of the one order
    page = client.get(reverse("console:customer_list"), {"has_email": "no"}).content.decode()
    assert "梅田" in page and "佐藤 花子" not in page


def test_customer_list_queries_do_not_grow_with_the_page(
    client: Client,
    shop: Shop,
    login_as: Callable[[str], Any],
    django_assert_max_num_queries: Any,
) -> None:
    for i in range(55):
        customer = customer_create(data={"family_name": f"顧客{i}"})
        order_place(customer=customer, number=f"N-{i}", lines=[{"sku": "BEAN-1"}])
    login_as("analyst")
    # 8 for the page itself, plus per-request constants: the role lookup and the session
    # renewal of the idle timeout (its UPDATE inside a savepoint).
    with django_assert_max_num_queries(11):
        response = client.get(reverse("console:customer_list"))
    assert response.status_code == 200
    assert response.content.decode().count('class="num">¥1,200<') == 50  # a full page


def test_customer_360_shows_identities_consent_orders_and_timeline(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    c = shop.customer
    consent_record(
        customer=c,
        purpose="marketing",
        channel="email",
        status="granted",
        source="signup_form",
        notice_version="2026-04",
    )
    consent_record(
        customer=c,
        purpose="marketing",
        channel="email",
        status="withdrawn",
        source="unsubscribe_link",
    )
    event_record(type="Product Viewed", customer=c, properties={"sku": "BEAN-1"})
    login_as("analyst")
    page = client.get(
        reverse("console:customer_detail", args=[c.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    # Analysts see personal data masked (kizuna.iam.masking): the identity is there, masked.
    assert "h***@example.jp" in page and "hanako@example.jp" not in page
    assert "signup_form" in page and "unsubscribe_link" in page  # full ledger
    assert "Consent history (2 entries)" in page
    assert reverse("console:order_detail", args=[shop.order.pk]) in page
    assert "WEB-1001" in page and "¥2,400" in page
    assert "Product Viewed" in page and "Order placed" in page  # timeline
    assert "Tokyo" in page
    assert 'id="scores"' not in page  # no scores exist yet, so no section at all
    # Analysts may look but not change: no edit, identity or consent forms.
    assert reverse("console:customer_edit", args=[c.pk]) not in page
    assert reverse("console:identity_add", args=[c.pk]) not in page


def test_customer_360_in_japanese_uses_the_honorific(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("marketer")  # analysts see names masked (privacy)
    page = client.get(
        reverse("console:customer_detail", args=[shop.customer.pk]), HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()
    assert "佐藤 花子 様" in page
    assert "サトウ ハナコ" in page
    assert "東京都" in page


def test_missing_customer_is_404(client: Client, login_as: Callable[[str], Any]) -> None:
    login_as("analyst")
    assert client.get(reverse("console:customer_detail", args=[999999])).status_code == 404


def test_timeline_loads_more_by_keyset(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    c = shop.customer
    for i in range(25):
        event_record(type="Page Viewed", customer=c, properties={"n": i})
    login_as("analyst")
    total = Event.objects.filter(customer=c).count()
    first = client.get(reverse("console:customer_detail", args=[c.pk])).content.decode()
    assert first.count('class="event"') == 20
    marker = 'hx-get="' + reverse("console:customer_timeline", args=[c.pk]) + "?before="
    assert marker in first
    before = first.split(marker)[1].split('"')[0]
    more = client.get(
        reverse("console:customer_timeline", args=[c.pk]),
        {"before": before},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert more.count('class="event"') == total - 20
    assert "<html" not in more and marker not in more
    shown = {*first.split('data-event-id="')[1:], *more.split('data-event-id="')[1:]}
    assert len({s.split('"')[0] for s in shown}) == total  # no event twice, none skipped


def test_edit_profile_saves_through_the_service_with_the_actor(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    from auditlog.models import LogEntry

    trait_definition_create(
        key="favourite_drink", label="好きな飲み物", type="choice", choices=["latte", "drip"]
    )
    user = login_as("support")
    url = reverse("console:customer_edit", args=[shop.customer.pk])
    assert "好きな飲み物" in client.get(url).content.decode()
    response = client.post(
        url,
        {
            "family_name": "佐藤",
            "given_name": "花子",
            "family_name_kana": "さとう",
            "given_name_kana": "はなこ",
            "email": "hanako@example.jp",
            "phone": "090-1234-5678",
            "gender": "female",
            "prefecture": "JP-13",
            "locale": "ja",
            "trait_favourite_drink": "drip",
        },
    )
    assert response.status_code == 302
    customer = Customer.objects.get(pk=shop.customer.pk)
    assert customer.phone == "+819012345678"
    assert customer.gender == "female"
    assert customer.traits == {"favourite_drink": "drip"}
    assert Identity.objects.filter(customer=customer, kind="phone").exists()
    entry = LogEntry.objects.get_for_object(customer).latest("timestamp")
    assert entry.actor == user


def test_edit_profile_with_invalid_email_shows_the_error_and_changes_nothing(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    login_as("marketer")
    before = Customer.objects.values().get(pk=shop.customer.pk)
    events_before = Event.objects.count()
    response = client.post(
        reverse("console:customer_edit", args=[shop.customer.pk]),
        {"family_name": "山田", "email": "not-an-email", "gender": "unspecified", "locale": "ja"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == ["email"]
    assert "Enter a valid email address" in form.errors["email"][0]
    assert "Enter a valid email address" in response.content.decode()
    assert Customer.objects.values().get(pk=shop.customer.pk) == before
    assert Event.objects.count() == events_before


def test_edit_profile_shows_trait_errors_on_the_trait_field(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    trait_definition_create(key="cups", label="Cups per day", type="integer")
    login_as("admin")
    response = client.post(
        reverse("console:customer_edit", args=[shop.customer.pk]),
        {"gender": "unspecified", "locale": "ja", "trait_cups": "two"},
    )
    assert response.status_code == 400
    assert "trait_cups" in response.context["form"].errors
    assert Customer.objects.get(pk=shop.customer.pk).traits == {}


def test_add_identity_links_it_and_rejects_duplicates(
    client: Client, shop: Shop, login_as: Callable[[str], Any]
) -> None:
    other = customer_create(data={"email": "other@example.jp"})
    login_as("marketer")
    url = reverse("console:identity_add", args=[shop.customer.pk])
    ok = client.post(url, {"kind": "line", "value": "U" + "a" * 32})
    assert ok.status_code == 302
    assert Identity.objects.filter(customer=shop.customer, kind="line").exists()
    clash = client.post(url, {"kind": "email", "value": "other@example.jp"})
    assert clash.status_code == 400
    assert "value" in clash.context["identity_form"].errors
    assert Identity.objects.get(kind="email", value="other@example.jp").customer == other
