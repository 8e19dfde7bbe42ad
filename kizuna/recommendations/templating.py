"""Recommendations in message templates.

Messaging registers two context entries (see kizuna/messaging/context.py), each a function
bound to the message's customer:

- `recommendations(customer, n)`: a list of up to `n` products (`sku`, `name`, `name_en`,
  `category`, `price` in yen/minor units, `currency`, `url`) for email and text templates:
  `{% for p in recommendations(customer, 3) %}{{ p.name }} {{ p.price|yen }}{% endfor %}`.
- `recommendation_carousel(customer, n)`: a LINE Flex carousel (JSON text) of those products,
  for the body of a Flex template: `{{ recommendation_carousel(customer, 3) }}`.

The `customer` argument is accepted for readability; the list is always the message's own
customer's. Product links come from settings.KIZUNA_RECOMMENDATIONS_PRODUCT_URL, a format
string with `{sku}` (no link when unset).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings

from kizuna.customers.models import Customer
from kizuna.recommendations import selectors

DEFAULT_N = 3
MAX_TEMPLATE_N = 12  # a LINE carousel holds at most 12 bubbles


def product_url(sku: str) -> str:
    pattern = str(getattr(settings, "KIZUNA_RECOMMENDATIONS_PRODUCT_URL", "") or "")
    return pattern.format(sku=sku) if pattern else ""


def products_for(customer: Customer, n: int = DEFAULT_N) -> list[dict[str, Any]]:
    n = max(1, min(int(n), MAX_TEMPLATE_N))
    result = selectors.recommendations_for(customer=customer, n=n)
    return [
        {
            "sku": item.sku,
            "name": item.name,
            "name_en": item.name_en,
            "category": item.category,
            "price": item.price_minor,
            "currency": item.currency,
            "url": product_url(item.sku),
        }
        for item in result.items
    ]


def _bubble(product: dict[str, Any]) -> dict[str, Any]:
    bubble: dict[str, Any] = {
        "type": "bubble",
        "size": "micro",
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "sm",
            "contents": [
                {"type": "text", "text": product["name"], "weight": "bold", "wrap": True},
                {
                    "type": "text",
                    "text": f"¥{product['price']:,}",
                    "size": "sm",
                    "color": "#666666",
                },
            ],
        },
    }
    if product["url"]:
        bubble["action"] = {"type": "uri", "label": product["name"][:40], "uri": product["url"]}
    return bubble


def flex_carousel(products: list[dict[str, Any]], *, empty_text: str = "") -> dict[str, Any]:
    """A Flex carousel container of product bubbles (one text bubble when there are none)."""
    if not products:
        return {
            "type": "bubble",
            "body": {
                "type": "box",
                "layout": "vertical",
                "contents": [{"type": "text", "text": empty_text or "-", "wrap": True}],
            },
        }
    return {"type": "carousel", "contents": [_bubble(p) for p in products[:MAX_TEMPLATE_N]]}


def list_function(customer: Customer) -> Callable[..., list[dict[str, Any]]]:
    def recommendations(_who: Any = None, n: int = DEFAULT_N) -> list[dict[str, Any]]:
        return products_for(customer, n)

    return recommendations


def carousel_function(customer: Customer) -> Callable[..., str]:
    def recommendation_carousel(_who: Any = None, n: int = DEFAULT_N, empty_text: str = "") -> str:
        carousel = flex_carousel(products_for(customer, n), empty_text=str(empty_text))
        return json.dumps(carousel, ensure_ascii=False)

    return recommendation_carousel
