"""Flex message templates (LINE's JSON message layout) for coupons, the member card and a
recommendations carousel. Pure functions of plain values: each returns one message dict
that `linebot.v3.messaging.Message.from_dict` accepts (the tests check that), ready for a
narrowcast, a push or a campaign template. Japanese text by default, English with
language="en"; yen without decimals and dates as 2026年11月22日."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from kizuna.core.money import format_money

ACCENT = "#7c4a2d"
MAX_CAROUSEL = 12  # LINE: at most 12 bubbles in a carousel
ALT_MAX = 400


def _date(day: date | None, language: str) -> str:
    if day is None:
        return ""
    return f"{day.year}年{day.month}月{day.day}日" if language == "ja" else day.strftime("%d %b %Y")


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": text or " ", "wrap": True, **style}


def _uri_button(label: str, uri: str) -> dict[str, Any]:
    return {
        "type": "button",
        "style": "primary",
        "color": ACCENT,
        "action": {"type": "uri", "label": label[:20], "uri": uri},
    }


def _message(alt: str, contents: dict[str, Any]) -> dict[str, Any]:
    return {"type": "flex", "altText": alt[:ALT_MAX], "contents": contents}


def coupon_message(
    *,
    title: str,
    code: str,
    discount: str,
    valid_until: date | None = None,
    url: str = "",
    language: str = "ja",
) -> dict[str, Any]:
    """A coupon: what it gives, its code, until when, and a button to use it."""
    ja = language == "ja"
    body: list[dict[str, Any]] = [
        _text(title, weight="bold", size="lg"),
        _text(discount, size="xxl", weight="bold", color=ACCENT),
        _text(("クーポンコード: " if ja else "Code: ") + code, size="sm", color="#555555"),
    ]
    if valid_until is not None:
        until = _date(valid_until, language)
        body.append(_text(f"{until}まで有効" if ja else f"Valid until {until}", size="sm"))
    bubble: dict[str, Any] = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "spacing": "md", "contents": body},
    }
    if url:
        bubble["footer"] = {
            "type": "box",
            "layout": "vertical",
            "contents": [_uri_button("クーポンを使う" if ja else "Use coupon", url)],
        }
    alt = f"{title} {discount}（{code}）" if ja else f"{title}: {discount} ({code})"
    return _message(alt, bubble)


def member_card_message(
    *,
    name: str,
    member_number: str,
    balance: int,
    tier: str = "",
    benefits: str = "",
    expiring: Sequence[tuple[date, int]] = (),
    card_url: str = "",
    language: str = "ja",
) -> dict[str, Any]:
    """The member card: name with 様, number, points, rank and its benefits, the next
    expiring points, and a link to the full card (with the QR code) in the portal."""
    ja = language == "ja"
    greeting = f"{name} 様" if ja and name else name
    rows: list[dict[str, Any]] = [
        _text(greeting, weight="bold", size="lg"),
        _text(("会員番号 " if ja else "Member no. ") + member_number, size="sm", color="#555555"),
        {
            "type": "box",
            "layout": "baseline",
            "contents": [
                _text("保有ポイント" if ja else "Points", size="sm", flex=2),
                _text(f"{balance:,} pt", size="xl", weight="bold", color=ACCENT, flex=3),
            ],
        },
    ]
    if tier:
        rows.append(_text(("会員ランク: " if ja else "Rank: ") + tier, weight="bold"))
    if benefits:
        rows.append(_text(benefits, size="sm", color="#555555"))
    for day, points in list(expiring)[:2]:
        when = _date(day, language)
        rows.append(
            _text(
                f"{points:,} ptが{when}に失効します" if ja else f"{points:,} pt expire on {when}",
                size="xs",
                color="#aa3333",
            )
        )
    bubble: dict[str, Any] = {
        "type": "bubble",
        "header": {
            "type": "box",
            "layout": "vertical",
            "backgroundColor": ACCENT,
            "contents": [_text("会員証" if ja else "Member card", color="#ffffff", weight="bold")],
        },
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": rows},
    }
    if card_url:
        bubble["footer"] = {
            "type": "box",
            "layout": "vertical",
            "contents": [_uri_button("会員証を表示" if ja else "Show card", card_url)],
        }
    alt = (
        f"会員証: {balance:,} pt" + (f"（{tier}）" if tier else "")
        if ja
        else f"Member card: {balance:,} pt" + (f" ({tier})" if tier else "")
    )
    return _message(alt, bubble)


@dataclass(frozen=True)
class Recommendation:
    name: str
    price_minor: int
    url: str
    image_url: str = ""
    currency: str = "JPY"


def recommendations_carousel(
    items: Sequence[Recommendation], *, title: str = "", language: str = "ja"
) -> dict[str, Any]:
    """Up to 12 recommended products, one bubble each (image, name, price, button)."""
    ja = language == "ja"
    if not items:
        raise ValueError("a carousel needs at least one item")
    bubbles = []
    for item in list(items)[:MAX_CAROUSEL]:
        bubble: dict[str, Any] = {
            "type": "bubble",
            "size": "kilo",
            "body": {
                "type": "box",
                "layout": "vertical",
                "spacing": "sm",
                "contents": [
                    _text(item.name, weight="bold", size="md"),
                    _text(format_money(item.price_minor, item.currency), color=ACCENT),
                ],
            },
            "footer": {
                "type": "box",
                "layout": "vertical",
                "contents": [_uri_button("詳しく見る" if ja else "View", item.url)],
            },
        }
        if item.image_url:
            bubble["hero"] = {
                "type": "image",
                "url": item.image_url,
                "size": "full",
                "aspectRatio": "1:1",
                "aspectMode": "cover",
            }
        bubbles.append(bubble)
    alt = title or ("あなたへのおすすめ" if ja else "Recommended for you")
    return _message(alt, {"type": "carousel", "contents": bubbles})
