"""The console's LINE pages (kizuna/console/views_line.py) against the local LINE server:
audiences, narrowcasts composed from Flex templates with LINE's progress, rich menus."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from kizuna.catalog.services import product_create
from kizuna.line_marketing import services
from kizuna.line_marketing.models import LineAudience, Narrowcast, RichMenu
from kizuna.loyalty.models import Account, Tier
from kizuna.loyalty.services import account_for, programme_get

from .conftest import line_id

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def staff(client: Client, make_staff):
    def login(role: str) -> Client:
        client.force_login(make_staff(role))
        return client

    return login


def test_pages_need_a_login_and_the_line_permissions(client, staff, channel, tokyo) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    pages = [
        reverse("console:line_audiences"),
        reverse("console:line_audience", args=[audience.pk]),
        reverse("console:line_narrowcasts"),
        reverse("console:line_richmenus"),
        reverse("console:line_narrowcast_new"),
        reverse("console:line_richmenu_new"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    staff("support")  # no LINE permission at all
    for url in pages:
        assert client.get(url).status_code == 403, url
    analyst = staff("analyst")  # may look, not send or create
    for url in pages[:4]:
        assert analyst.get(url).status_code == 200, url
    for url in pages[4:]:
        assert analyst.get(url).status_code == 403, url
    posts = [
        (reverse("console:line_audience_new"), {"channel": channel.pk, "segment": tokyo.pk}),
        (reverse("console:line_narrowcast_new"), {"audience": audience.pk}),
        (reverse("console:line_richmenu_new"), {}),
    ]
    for url, data in posts:
        assert analyst.post(url, data).status_code == 403, url
    assert LineAudience.objects.count() == 1 and Narrowcast.objects.count() == 0
    nav = analyst.get(reverse("console:dashboard"), **EN).content.decode()
    assert reverse("console:line_audiences") in nav


def test_csrf_is_checked(make_staff, channel, tokyo) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_staff("marketer"))
    response = client.post(
        reverse("console:line_audience_new"), {"channel": channel.pk, "segment": tokyo.pk}
    )
    assert response.status_code == 403 and LineAudience.objects.count() == 0


def test_upload_a_segment_and_ask_line_for_its_status(staff, channel, tokyo, line_server) -> None:
    client = staff("marketer")
    response = client.post(
        reverse("console:line_audience_new"),
        {"channel": channel.pk, "segment": tokyo.pk, "description": ""},
        **EN,
    )
    audience = LineAudience.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("console:line_audience", args=[audience.pk])
    assert sorted(line_server.audiences[audience.audience_group_id]) == [
        line_id(n) for n in range(3)
    ]
    page = client.get(response["Location"], **EN).content.decode()
    assert "東京の会員" in page and "IN_PROGRESS" in page
    client.post(reverse("console:line_audience_refresh", args=[audience.pk]), **EN)
    page = client.get(response["Location"], **EN).content.decode()
    assert "READY" in page and LineAudience.objects.get().line_count == 3


def test_upload_refusals_show_on_the_form(staff, channel, tokyo, line_server) -> None:
    tokyo.rules = {
        "version": 1,
        "match": "all",
        "conditions": [{"field": "profile.prefecture", "op": "in", "value": ["JP-47"]}],
    }
    tokyo.save()
    client = staff("marketer")
    response = client.post(
        reverse("console:line_audience_new"), {"channel": channel.pk, "segment": tokyo.pk}, **EN
    )
    assert response.status_code == 422
    assert "No member of this segment follows the LINE account." in response.content.decode()
    response = client.post(reverse("console:line_audience_new"), {"channel": 999999}, **EN)
    assert response.status_code == 422
    assert LineAudience.objects.count() == 0 and line_server.requests == []


def test_compose_a_coupon_narrowcast_and_follow_its_progress(
    staff, channel, tokyo, line_server
) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    client = staff("marketer")
    form = client.get(reverse("console:line_narrowcast_new") + f"?audience={audience.pk}")
    assert form.status_code == 200 and 'name="idempotency_key"' in form.content.decode()
    key = uuid.uuid4().hex
    data = {
        "audience": audience.pk,
        "template": "coupon",
        "title": "冬のクーポン",
        "code": "WINTER",
        "discount": "10%OFF",
        "valid_until": "2026-12-31",
        "url": "https://shop.example.jp/c",
        "idempotency_key": key,
    }
    response = client.post(reverse("console:line_narrowcast_new"), data)
    sent = Narrowcast.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("console:line_narrowcast", args=[sent.pk])
    body = line_server.narrowcasts[0]
    assert body["messages"][0]["type"] == "flex"
    assert "2026年12月31日まで有効" in str(body["messages"][0])  # Japanese console: Japanese card
    # A double submit of the same form sends nothing more.
    client.post(reverse("console:line_narrowcast_new"), data)
    assert len(line_server.narrowcasts) == 1 and Narrowcast.objects.count() == 1
    line_server.progress_phase = "succeeded"
    client.post(reverse("console:line_narrowcast_refresh", args=[sent.pk]))
    page = client.get(response["Location"], **EN).content.decode()
    assert "succeeded" in page and "(100%)" in page
    listing = client.get(reverse("console:line_narrowcasts"), **EN).content.decode()
    assert "東京の会員" in listing and "succeeded" in listing


def test_compose_products_to_a_segment(staff, channel, tokyo, line_server) -> None:
    bean = product_create(data={"sku": "BEAN-1", "name": "深煎りブレンド", "price_minor": 1200})
    client = staff("marketer")
    response = client.post(
        reverse("console:line_narrowcast_new"),
        {
            "segment": tokyo.pk,
            "channel": channel.pk,
            "template": "recommendations",
            "title": "おすすめ",
            "products": [bean.pk],
            "url": "https://shop.example.jp/p/",
            "idempotency_key": "seg-1",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    sent = Narrowcast.objects.select_related("audience").get()
    assert sent.audience.segment_id == tokyo.pk and sent.audience.size == 3
    message = str(line_server.narrowcasts[0]["messages"][0])
    assert "¥1,200" in message and "https://shop.example.jp/p/BEAN-1" in message


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"template": "text", "text": "x"}, "Choose an audience or a segment (one of them)."),
        ({"template": "coupon", "title": "t"}, "Required for this message."),
        ({"template": "text", "segment": "SEG"}, "Choose the LINE channel to upload the segment"),
    ],
)
def test_compose_refusals(staff, channel, tokyo, line_server, data, field_error) -> None:
    client = staff("marketer")
    data = {**data, "idempotency_key": "bad"}
    if data.get("segment") == "SEG":
        data["segment"] = tokyo.pk
    response = client.post(reverse("console:line_narrowcast_new"), data, **EN)
    assert response.status_code == 422 and field_error in response.content.decode()
    assert Narrowcast.objects.count() == 0 and line_server.requests == []


def test_rich_menu_from_a_layout_linked_to_a_tier_and_made_default(
    staff, channel, tokyo, line_server
) -> None:
    from kizuna.customers.models import Customer

    gold = Tier.objects.create(programme=programme_get(), code="gold", name="ゴールド", rank=2)
    for customer in Customer.objects.order_by("pk")[:2]:
        Account.objects.filter(pk=account_for(customer).pk).update(tier=gold)
    client = staff("marketer")
    base = {
        "channel": channel.pk,
        "layout": "member",
        "name": "ゴールド会員メニュー",
        "chat_bar_text": "メニュー",
        "url": "https://shop.example.jp/m/",
        "tier": gold.pk,
    }
    bad = client.post(
        reverse("console:line_richmenu_new"),
        {**base, "image": SimpleUploadedFile("m.gif", b"GIF89a", content_type="image/gif")},
        **EN,
    )
    assert bad.status_code == 422 and "The image must be PNG or JPEG." in bad.content.decode()
    assert RichMenu.objects.count() == 0 and line_server.menus == {}
    response = client.post(
        reverse("console:line_richmenu_new"),
        {**base, "image": SimpleUploadedFile("m.png", PNG, content_type="image/png")},
    )
    assert response.status_code == 302
    menu = RichMenu.objects.get()
    assert menu.tier_id == gold.pk and line_server.images[menu.rich_menu_id] == ("image/png", PNG)
    assert line_server.menus[menu.rich_menu_id]["areas"][0]["action"]["uri"] == base["url"]
    client.post(reverse("console:line_richmenu_link", args=[menu.pk]))
    assert line_server.links == {line_id(0): menu.rich_menu_id, line_id(1): menu.rich_menu_id}
    client.post(reverse("console:line_richmenu_default", args=[menu.pk]))
    assert line_server.default_menu == menu.rich_menu_id
    page = client.get(reverse("console:line_richmenus"), **EN).content.decode()
    assert "ゴールド会員メニュー" in page and "default" in page and "Tier: ゴールド" in page


def test_dates_follow_the_language(staff, channel, tokyo) -> None:
    audience = services.audience_upload(channel=channel, segment=tokyo)
    moment = datetime(2026, 11, 22, 10, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    LineAudience.objects.filter(pk=audience.pk).update(created_at=moment)
    client = staff("marketer")
    url = reverse("console:line_audience", args=[audience.pk])
    ja = client.get(url, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    en = client.get(url, **EN).content.decode()
    assert "2026年11月22日 10:30" in ja and "2026-11-22" not in ja
    assert "2026-11-22 10:30" in en and "2026年" not in en
