"""Fixtures: the real SMTP and LINE-shaped servers of the messaging tests (on loopback),
channels, a customer and a few FAQ articles made through services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kizuna.messaging.tests.conftest import (  # noqa: F401  (fixtures)
    _daytime,
    commit,
    dkim_key,
    email_channel,
    line_api,
    line_channel,
    make_customer,
    smtp_server,
)
from kizuna.support import faq, services


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_index() -> None:
    faq.articles_changed()


@pytest.fixture
def customer(db: None):
    return make_customer("hanako@example.jp")


ARTICLES = [
    (
        "opening-hours",
        "ja",
        "営業時間を教えてください",
        "店舗の営業時間は平日7時から21時、土日祝は8時から20時です。",
        ["営業時間", "店舗"],
    ),
    (
        "opening-hours",
        "en",
        "What are your opening hours?",
        "Our stores open 7am to 9pm on weekdays and 8am to 8pm at weekends and holidays.",
        ["hours", "store"],
    ),
    (
        "points-expiry",
        "ja",
        "ポイントの有効期限はありますか",
        "ポイントは最後にご利用いただいた日から12か月で失効します。",
        ["ポイント", "有効期限"],
    ),
    (
        "points-expiry",
        "en",
        "Do my points expire?",
        "Points expire 12 months after your last purchase or redemption.",
        ["points", "expiry"],
    ),
    (
        "beans-delivery",
        "ja",
        "コーヒー豆の配送について",
        "オンラインストアでご注文のコーヒー豆は、3営業日以内に発送します。送料は全国一律500円です。",
        ["配送", "送料", "豆"],
    ),
    (
        "beans-delivery",
        "en",
        "Coffee bean delivery",
        "Coffee beans ordered online ship within 3 business days; shipping is 500 yen anywhere.",
        ["delivery", "shipping", "beans"],
    ),
]


@pytest.fixture
def articles(db: None) -> list:
    return [
        services.faq_article_save(key=k, locale=lc, title=t, body=b, tags=tags)
        for k, lc, t, b, tags in ARTICLES
    ]
