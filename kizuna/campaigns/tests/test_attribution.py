"""Attribution of orders to campaign messages, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kizuna.campaigns.attribution import Order, Touch, attribute, match

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
OURS = {"campaign:1:A", "campaign:1:B"}


def _order(pk: int, customer: int, after: timedelta, revenue: int = 1000) -> Order:
    return Order(pk, customer, T0 + after, revenue)


def test_last_touch_within_the_window() -> None:
    touches = [Touch(1, T0, "campaign:1:A"), Touch(2, T0, "campaign:1:B")]
    orders = [
        _order(10, 1, timedelta(days=2), 3000),
        _order(11, 1, timedelta(days=3), 500),
        _order(12, 2, timedelta(days=8)),  # outside the 7-day window
        _order(13, 3, timedelta(days=1)),  # never touched
        _order(14, 2, -timedelta(hours=1)),  # before the message
    ]
    credit = attribute(
        touches=touches, orders=orders, sources=OURS, window=WEEK, model="last_touch"
    )
    assert credit["campaign:1:A"].orders == 2 and credit["campaign:1:A"].revenue == 3500
    assert credit["campaign:1:A"].customers == {1}
    assert credit["campaign:1:B"].orders == 0
    # The window edge is included.
    edge = attribute(
        touches=touches, orders=[_order(15, 2, WEEK)], sources=OURS, window=WEEK, model="last_touch"
    )
    assert edge["campaign:1:B"].orders == 1


def test_a_later_message_takes_the_last_touch_but_not_any_touch() -> None:
    touches = [
        Touch(1, T0, "campaign:1:A"),
        Touch(1, T0 + timedelta(days=1), "campaign:2:A"),  # another campaign, later
    ]
    orders = [_order(10, 1, timedelta(days=2))]
    last = match(touches=touches, orders=orders, sources=OURS, window=WEEK, model="last_touch")
    assert last == []
    anyt = match(touches=touches, orders=orders, sources=OURS, window=WEEK, model="any_touch")
    assert [(o.order_id, t.source) for o, t in anyt] == [(10, "campaign:1:A")]


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError):
        match(touches=[], orders=[], sources=OURS, window=WEEK, model="first_touch")
