"""Pure rules of the programme: how many points an order earns, when points expire, which
tier a value qualifies for, how refunds reverse points, what a coupon takes off, how FIFO
consumes lots. No database: tested on plain data."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}


@dataclass(frozen=True)
class EarnRules:
    earn_points: int = 1
    earn_per_yen: int = 100
    rounding: str = "floor"
    category_multipliers: Mapping[str, Decimal] | None = None
    product_multipliers: Mapping[str, Decimal] | None = None


@dataclass(frozen=True)
class Line:
    sku: str
    category: str
    total: int


@dataclass(frozen=True)
class TierRule:
    id: int
    rank: int
    threshold: int
    multiplier: Decimal


def round_points(value: Decimal, rounding: str) -> int:
    return int(value.to_integral_value(rounding=ROUNDING[rounding]))


def order_points(
    *,
    total: int,
    lines: Sequence[Line],
    rules: EarnRules,
    tier_multiplier: Decimal = Decimal(1),
    campaign_multiplier: Decimal = Decimal(1),
) -> int:
    """Points for an order: each line's share of the paid total (discounts spread pro
    rata) at the base rate times its product or category multiplier, then the tier and
    campaign multipliers, rounded once at the end."""
    if total <= 0:
        return 0
    products = rules.product_multipliers or {}
    categories = rules.category_multipliers or {}
    plain = (
        tier_multiplier == 1
        and campaign_multiplier == 1
        and not any(line.sku in products or line.category in categories for line in lines)
    )
    if plain:  # exact integer arithmetic, the common case (and what batches of millions hit)
        n, d = total * rules.earn_points, rules.earn_per_yen
        if rules.rounding == "ceil":
            return -(-n // d)
        if rules.rounding == "half_up":
            return (2 * n + d) // (2 * d)
        return n // d
    rate = Decimal(rules.earn_points) / Decimal(rules.earn_per_yen)
    line_sum = sum(line.total for line in lines)
    if not lines or line_sum <= 0:
        raw = Decimal(total) * rate
    else:
        raw = Decimal(0)
        for line in lines:
            multiplier = products.get(line.sku) or categories.get(line.category) or Decimal(1)
            raw += Decimal(line.total) * Decimal(total) / Decimal(line_sum) * rate * multiplier
    return max(0, round_points(raw * tier_multiplier * campaign_multiplier, rules.rounding))


def expiry_date(earned_on: date, months: int) -> date | None:
    """The last day of the month `months` months after the month of `earned_on`."""
    if months <= 0:
        return None
    index = earned_on.year * 12 + earned_on.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def months_back(today: date, months: int) -> date:
    """The same day `months` months earlier (clamped to the month's last day)."""
    index = today.year * 12 + today.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))


def qualifying_tier(value: int, tiers: Sequence[TierRule]) -> TierRule | None:
    """The highest tier whose threshold `value` reaches."""
    best = None
    for tier in sorted(tiers, key=lambda t: t.rank):
        if value >= tier.threshold:
            best = tier
    return best


def next_tier(value: int, tiers: Sequence[TierRule]) -> tuple[TierRule | None, int]:
    """The next tier above what `value` qualifies for and how much is still missing."""
    for tier in sorted(tiers, key=lambda t: t.rank):
        if value < tier.threshold:
            return tier, tier.threshold - value
    return None, 0


def evaluate_tier(
    *,
    current: TierRule | None,
    value: int,
    tiers: Sequence[TierRule],
    kept_until: date | None,
    today: date,
    grace_months: int,
) -> tuple[TierRule | None, date | None]:
    """The tier after an evaluation and the date it is kept until.

    Qualifying for a tier (again) keeps it `grace_months` past today; a customer below
    their tier keeps it until that date, then drops to what they qualify for."""
    earned = qualifying_tier(value, tiers)
    keep = _add_months(today, grace_months) if grace_months else None
    if current is None or (earned is not None and earned.rank >= current.rank):
        return earned, keep if earned is not None else None
    if kept_until is not None and today <= kept_until:
        return current, kept_until
    return earned, keep if earned is not None else None


def rank_year_start(today: date, start_month: int = 1) -> date:
    """The first day of the rank year `today` is in (years start on the 1st of
    `start_month`: 1 for calendar years, 4 for Japanese fiscal years)."""
    year = today.year if today.month >= start_month else today.year - 1
    return date(year, start_month, 1)


def rank_year_end(today: date, start_month: int = 1) -> date:
    """The last day of the rank year `today` is in: the day a held rank is kept until."""
    start = rank_year_start(today, start_month)
    return _add_months(start, 12) - timedelta(days=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def refund_reversal(*, earned: int, total: int, refunded_before: int, amount: int) -> int:
    """Points to take back for a refund of `amount` of an order of `total` that earned
    `earned`: the refunded share, computed cumulatively so that partial refunds add up to
    exactly `earned` when the whole order is refunded."""
    if earned <= 0 or total <= 0:
        return 0
    before = min(refunded_before, total)
    after = min(refunded_before + amount, total)
    return (earned * after) // total - (earned * before) // total


def coupon_discount(*, kind: str, value: int, order_total: int, free_item_price: int = 0) -> int:
    """What a coupon takes off an order (never more than the order)."""
    if kind == "percent":
        discount = order_total * value // 100
    elif kind == "fixed":
        discount = value
    else:
        discount = free_item_price
    return max(0, min(discount, order_total))


@dataclass
class OpenLot:
    id: int
    remaining: int
    expires_on: date | None
    earned_at: datetime
    paid: bool = False


def fifo_allocate(
    lots: Iterable[OpenLot], points: int, paid_order: str = "expiry"
) -> list[tuple[int, int]]:
    """Take `points` from lots, first-expiring first (never-expiring last, then oldest);
    with `paid_order` "free_first" all free lots go before any paid lot, with "paid_first"
    the other way round (first-expiring first within each kind).
    Returns [(lot id, points taken)]; raises ValueError if the lots hold too few."""
    taken: list[tuple[int, int]] = []
    need = points

    def kind_rank(lot: OpenLot) -> int:
        if paid_order == "free_first":
            return 1 if lot.paid else 0
        if paid_order == "paid_first":
            return 0 if lot.paid else 1
        return 0

    ordered = sorted(
        (lot for lot in lots if lot.remaining > 0),
        key=lambda lot: (
            kind_rank(lot),
            lot.expires_on is None,
            lot.expires_on or date.max,
            lot.earned_at,
            lot.id,
        ),
    )
    for lot in ordered:
        if need <= 0:
            break
        take = min(lot.remaining, need)
        taken.append((lot.id, take))
        need -= take
    if need > 0:
        raise ValueError("not enough points in the lots")
    return taken
