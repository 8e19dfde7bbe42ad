from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client

from kizuna.loyalty import services
from kizuna.loyalty.models import Reward
from kizuna.portal.links import SALT, customer_id_from, member_token, member_url

pytestmark = pytest.mark.django_db


def test_signed_link_round_trip_and_tampering() -> None:
    token = member_token(42)
    assert customer_id_from(token) == 42
    assert customer_id_from(token[:-2] + "xx") is None
    assert customer_id_from(signing.dumps({"c": 42}, salt="other")) is None
    assert customer_id_from(signing.dumps({"c": 42}, salt=SALT), max_age=-1) is None


def test_member_card_shows_balance_tier_qr_coupons_in_both_languages(programme, customer):
    services.points_earn_for_order(customer_id=customer.pk, order_id=1, number="A-1", total=12345)
    services.tiers_evaluate()
    Reward.objects.create(code="latte", name="ラテ", name_en="Latte", points_price=100)
    d = services.coupon_definition_create(data={"name": "誕生日", "kind": "fixed", "value": 500})
    [coupon] = services.coupons_issue(definition=d, idempotency_key="b", customers=[customer])
    client = Client()
    r = client.get(member_url(customer.pk))
    assert r.status_code == 200
    html = r.content.decode()
    assert "123" in html and "K" + f"{customer.pk:09d}" in html
    assert coupon.code in html and "ラテ" in html
    assert 'src="/m/' in html and "qr.svg" in html
    assert "style=" not in html and "<script" not in html
    assert r["Content-Language"] == "ja"
    en = client.get(member_url(customer.pk) + "?lang=en").content.decode()
    assert "Latte" in en and "Member card" in en
    qr = client.get(member_url(customer.pk) + "qr.svg")
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml"
    assert qr.content.lstrip().startswith(b"<svg")
    history = client.get(member_url(customer.pk) + "history/")
    assert history.status_code == 200 and "A-1" in history.content.decode()


def test_bad_token_is_404_and_portal_is_rate_limited(programme, customer):
    client = Client()
    assert client.get("/m/not-a-token/").status_code == 404
    url = member_url(customer.pk)
    # 60 a minute per address, in windows at a key-dependent offset (django-ratelimit): on a
    # slow machine the first 61 can straddle a window's end, so go on (up to two windows'
    # worth) until refused; the limit must bite within them.
    codes: list[int] = []
    while len(codes) < 2 * 60 + 5 and not (codes and codes[-1] in (403, 429)):
        codes.append(client.get(url).status_code)
    assert codes[0] == 200
    assert codes[-1] in (403, 429), codes
    assert set(codes[:-1]) == {200}
