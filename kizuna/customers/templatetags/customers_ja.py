"""Template filters for Japanese profile details: `{% load customers_ja %}`.

`{{ customer|honorific }}` → 「山田 太郎 様」 (the name alone in English);
`{{ customer|address }}` → 「〒100-0001 東京都 千代田区千代田 1-1」.
"""

from __future__ import annotations

from typing import Any

from django import template

from kizuna.customers.japanese import customer_address, customer_honorific, honorific_name

register = template.Library()


@register.filter
def honorific(value: Any) -> str:
    """A customer (or a plain name) with 様 where Japanese is chosen."""
    if isinstance(value, str):
        return honorific_name(value)
    if value is None:
        return ""
    return customer_honorific(value)


@register.filter
def address(customer: Any) -> str:
    if customer is None:
        return ""
    return customer_address(customer)
