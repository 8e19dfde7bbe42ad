"""Rich menu layouts to start from: a definition (size, areas and their actions) built from a
few values, ready for `services.rich_menu_create` with an image drawn to the same layout.

Sizes and area bounds follow LINE's rich menu templates (2500 px wide; 843 px compact or
1686 px full height). Message actions send the text shown as if the user typed it, so a
keyword reply or a support bot can answer it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

WIDTH = 2500
COMPACT = 843
FULL = 1686


def _area(x: int, y: int, width: int, height: int, action: dict[str, Any]) -> dict[str, Any]:
    return {"bounds": {"x": x, "y": y, "width": width, "height": height}, "action": action}


def _uri(label: str, uri: str) -> dict[str, Any]:
    return {"type": "uri", "label": label[:20], "uri": uri}


def _text(label: str) -> dict[str, Any]:
    return {"type": "message", "label": label[:20], "text": label}


def _member(url: str) -> list[dict[str, Any]]:
    # Two halves: the member card (portal) and the coupons keyword.
    half = WIDTH // 2
    return [
        _area(0, 0, half, COMPACT, _uri("会員証", url)),
        _area(half, 0, WIDTH - half, COMPACT, _text("クーポン")),
    ]


def _shop(url: str) -> list[dict[str, Any]]:
    # Three columns: the shop, coupons, contact.
    third = WIDTH // 3
    return [
        _area(0, 0, third, COMPACT, _uri("ショップ", url)),
        _area(third, 0, third, COMPACT, _text("クーポン")),
        _area(2 * third, 0, WIDTH - 2 * third, COMPACT, _text("お問い合わせ")),
    ]


def _full(url: str) -> list[dict[str, Any]]:
    # 2 x 3 grid: shop, member card, coupons / news, shops nearby, contact.
    third, half = WIDTH // 3, FULL // 2
    cells = [
        _uri("ショップ", url),
        _text("会員証"),
        _text("クーポン"),
        _text("お知らせ"),
        _text("店舗検索"),
        _text("お問い合わせ"),
    ]
    areas = []
    for i, action in enumerate(cells):
        col, row = i % 3, i // 3
        width = third if col < 2 else WIDTH - 2 * third
        areas.append(_area(col * third, row * half, width, half, action))
    return areas


@dataclass(frozen=True)
class Layout:
    label: str | Promise
    height: int
    areas: Callable[[str], list[dict[str, Any]]]


LAYOUTS: dict[str, Layout] = {
    "member": Layout(_("Members: member card | coupons (2500×843)"), COMPACT, _member),
    "shop": Layout(_("Shop: shop | coupons | contact (2500×843)"), COMPACT, _shop),
    "full": Layout(_("Full: six buttons in two rows (2500×1686)"), FULL, _full),
}


def layout_choices() -> list[tuple[str, str | Promise]]:
    return [(key, layout.label) for key, layout in LAYOUTS.items()]


def build(layout: str, *, name: str, chat_bar_text: str, url: str) -> dict[str, Any]:
    """The rich menu definition of `layout` (a key of LAYOUTS); the first button opens `url`."""
    chosen = LAYOUTS[layout]
    return {
        "size": {"width": WIDTH, "height": chosen.height},
        "selected": False,
        "name": name,
        "chatBarText": chat_bar_text,
        "areas": chosen.areas(url),
    }
