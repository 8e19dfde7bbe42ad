"""Attribution of orders to campaign messages. Pure: touches and orders in, credit out.

last_touch (default): an order is credited to the most recent marketing message the customer
was sent before it (any campaign or journey), when that message is one of this campaign's and
was sent at most `window` earlier. any_touch: credited when any of this campaign's messages
was sent to the customer within `window` before the order (other messages do not matter).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

LAST_TOUCH = "last_touch"
ANY_TOUCH = "any_touch"
MODELS = (LAST_TOUCH, ANY_TOUCH)


@dataclass(frozen=True)
class Touch:
    customer_id: int
    at: datetime
    source: str  # the delivery's source ("campaign:12:A")


@dataclass(frozen=True)
class Order:
    order_id: int
    customer_id: int
    placed_at: datetime
    revenue: int  # minor units, net of refunds


@dataclass
class Credit:
    orders: int = 0
    revenue: int = 0
    customers: set[int] = field(default_factory=set)


def match(
    *, touches: list[Touch], orders: list[Order], sources: set[str], window: timedelta, model: str
) -> list[tuple[Order, Touch]]:
    """Each order credited to one of `sources`, with the touch that earned it."""
    if model not in MODELS:
        raise ValueError(f"unknown attribution model {model!r}")
    by_customer: dict[int, list[Touch]] = defaultdict(list)
    for touch in touches:
        by_customer[touch.customer_id].append(touch)
    for items in by_customer.values():
        items.sort(key=lambda t: t.at)
    matched: list[tuple[Order, Touch]] = []
    for order in orders:
        items = by_customer.get(order.customer_id, [])
        upto = bisect.bisect_right([t.at for t in items], order.placed_at)
        chosen: Touch | None = None
        if model == LAST_TOUCH:
            if upto:
                last = items[upto - 1]
                if last.source in sources and order.placed_at - last.at <= window:
                    chosen = last
        else:
            for touch in reversed(items[:upto]):
                if order.placed_at - touch.at > window:
                    break
                if touch.source in sources:
                    chosen = touch
                    break
        if chosen is not None:
            matched.append((order, chosen))
    return matched


def attribute(
    *, touches: list[Touch], orders: list[Order], sources: set[str], window: timedelta, model: str
) -> dict[str, Credit]:
    """{source: Credit} for the sources of this campaign; each order is credited once."""
    credit: dict[str, Credit] = {s: Credit() for s in sources}
    for order, touch in match(
        touches=touches, orders=orders, sources=sources, window=window, model=model
    ):
        entry = credit[touch.source]
        entry.orders += 1
        entry.revenue += order.revenue
        entry.customers.add(order.customer_id)
    return credit
