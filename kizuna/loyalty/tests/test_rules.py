from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from kizuna.loyalty import rules

T = [rules.TierRule(1, 0, 0, Decimal(1)), rules.TierRule(2, 1, 20000, Decimal("1.5"))]


def test_order_points_base_rate_and_rounding() -> None:
    r = rules.EarnRules(earn_points=1, earn_per_yen=100)
    assert rules.order_points(total=1999, lines=[], rules=r) == 19
    assert rules.order_points(total=1950, lines=[], rules=rules.EarnRules(rounding="half_up")) == 20
    assert rules.order_points(total=1901, lines=[], rules=rules.EarnRules(rounding="ceil")) == 20
    assert rules.order_points(total=0, lines=[], rules=r) == 0


def test_order_points_category_product_tier_and_campaign_multipliers() -> None:
    r = rules.EarnRules(
        category_multipliers={"beans": Decimal(2)}, product_multipliers={"SPECIAL": Decimal(3)}
    )
    lines = [rules.Line("LATTE", "drinks", 1000), rules.Line("BEANS", "beans", 1000)]
    assert rules.order_points(total=2000, lines=lines, rules=r) == 30
    # a discount spreads pro rata over the lines
    assert rules.order_points(total=1000, lines=lines, rules=r) == 15
    assert (
        rules.order_points(total=1000, lines=[rules.Line("SPECIAL", "beans", 1000)], rules=r) == 30
    )
    assert (
        rules.order_points(
            total=2000,
            lines=lines,
            rules=r,
            tier_multiplier=Decimal("1.5"),
            campaign_multiplier=Decimal(2),
        )
        == 90
    )


def test_expiry_is_end_of_month_n_months_later() -> None:
    assert rules.expiry_date(date(2026, 1, 15), 12) == date(2027, 1, 31)
    assert rules.expiry_date(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert rules.expiry_date(date(2026, 1, 1), 0) is None
    assert rules.months_back(date(2026, 3, 31), 1) == date(2026, 2, 28)


def test_tier_evaluation_with_grace() -> None:
    assert rules.qualifying_tier(25000, T) == T[1]
    assert rules.next_tier(5000, T) == (T[1], 15000)
    today = date(2026, 6, 1)
    # upgrade: kept 3 months
    assert rules.evaluate_tier(
        current=T[0], value=30000, tiers=T, kept_until=None, today=today, grace_months=3
    ) == (T[1], date(2026, 9, 1))
    # below the tier but within grace: kept
    assert rules.evaluate_tier(
        current=T[1], value=100, tiers=T, kept_until=date(2026, 9, 1), today=today, grace_months=3
    ) == (T[1], date(2026, 9, 1))
    # grace over: down
    assert rules.evaluate_tier(
        current=T[1], value=100, tiers=T, kept_until=date(2026, 5, 1), today=today, grace_months=0
    ) == (T[0], None)


def test_refund_reversal_adds_up_exactly() -> None:
    parts = [
        rules.refund_reversal(earned=33, total=1000, refunded_before=b, amount=a)
        for b, a in [(0, 333), (333, 333), (666, 334)]
    ]
    assert sum(parts) == 33
    assert rules.refund_reversal(earned=10, total=1000, refunded_before=900, amount=500) == 1


def test_coupon_discount_never_exceeds_the_order() -> None:
    assert rules.coupon_discount(kind="percent", value=10, order_total=1234) == 123
    assert rules.coupon_discount(kind="fixed", value=500, order_total=300) == 300
    assert (
        rules.coupon_discount(kind="free_item", value=0, order_total=2000, free_item_price=500)
        == 500
    )


def test_fifo_takes_first_expiring_then_never_expiring() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    lots = [
        rules.OpenLot(1, 10, None, at),
        rules.OpenLot(2, 5, date(2026, 5, 31), at),
        rules.OpenLot(3, 5, date(2026, 3, 31), at),
    ]
    assert rules.fifo_allocate(lots, 12) == [(3, 5), (2, 5), (1, 2)]
    with pytest.raises(ValueError):
        rules.fifo_allocate(lots, 21)
