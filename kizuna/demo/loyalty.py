"""The demo business's loyalty programme: Kizuna Coffee Rewards (1 point per ¥100; tiers
Regular / Silver / Gold / Platinum by rolling 12-month spend), rewards, coupons, and each
demo customer's points history computed in bulk from their orders."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from decimal import Decimal

from kizuna.catalog.models import Product
from kizuna.commerce.models import Order, OrderLine, Refund
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.demo import business as biz
from kizuna.loyalty import bulk as loyalty_bulk
from kizuna.loyalty import services
from kizuna.loyalty.models import CouponDefinition, Programme, Reward, Tier

TIERS = [
    ("regular", "レギュラー", "Regular", 0, "1", "ポイント 1%"),
    ("silver", "シルバー", "Silver", 30_000, "1.25", "ポイント 1.25倍・誕生月ドリンク1杯無料"),
    ("gold", "ゴールド", "Gold", 80_000, "1.5", "ポイント 1.5倍・豆 10%オフ"),
    ("platinum", "プラチナ", "Platinum", 150_000, "2", "ポイント 2倍・新作先行試飲会"),
]
REWARDS = [
    ("drip", "ドリップコーヒー1杯", "A drip coffee", 300, None),
    ("latte", "カフェラテ1杯", "A caffè latte", 450, None),
    ("beans-200", "ハウスブレンド豆 200g", "House blend beans 200 g", 1500, 200),
    ("tumbler", "絆珈琲オリジナルタンブラー", "Kizuna Coffee tumbler", 3000, 50),
]


def programme_setup() -> Programme:
    programme = Programme.objects.order_by("id").first() or Programme.objects.create(
        name="絆珈琲リワード",
        earn_points=1,
        earn_per_yen=100,
        category_multipliers={"beans": "2"},
        event_points={"Store Checked In": 5, "Review Submitted": 20, "Survey Answered": 30},
        point_value=Decimal("1"),
        expected_breakage=Decimal("0.25"),
        expiry_months=12,
        tier_window_months=12,
        tier_grace_months=1,
    )
    for rank, (code, name, name_en, threshold, mult, benefits) in enumerate(TIERS):
        Tier.objects.get_or_create(
            programme=programme,
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "rank": rank,
                "threshold": threshold,
                "earn_multiplier": Decimal(mult),
                "benefits": benefits,
            },
        )
    for code, name, name_en, price, stock in REWARDS:
        Reward.objects.get_or_create(
            code=code,
            defaults={"name": name, "name_en": name_en, "points_price": price, "stock": stock},
        )
    if programme.birthday_coupon is None:
        programme.birthday_coupon = (
            services.coupon_definition_create(
                data={
                    "name": "誕生日ドリンク無料",
                    "kind": "free_item",
                    "free_sku": "KC-D02",
                    "valid_days": 31,
                }
            )
            if Customer.objects.exists() and _has_sku("KC-D02")
            else None
        )
        programme.save()
    if not CouponDefinition.objects.filter(shared_code="WELCOME10").exists():
        services.coupon_definition_create(
            data={
                "name": "ようこそ10%オフ",
                "kind": "percent",
                "value": 10,
                "shared_code": "WELCOME10",
                "min_spend_minor": 1000,
                "per_customer_limit": 1,
            }
        )
    return programme


def _has_sku(sku: str) -> bool:
    return Product.objects.filter(sku=sku).exists()


def load(*, today: date | None = None) -> dict[str, int]:
    """Set up the programme and write the demo customers' points from their orders."""
    programme = programme_setup()
    # Lines matter only where a product or category multiplier applies; the rest of an
    # order's subtotal is one plain line.
    special = set(programme.product_multipliers) | set(
        Product.objects.filter(category__slug__in=list(programme.category_multipliers)).values_list(
            "sku", flat=True
        )
    )
    lines: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for order_id, sku, total in OrderLine.objects.filter(
        order__source=biz.SOURCE, sku__in=special
    ).values_list("order_id", "sku", "total_minor"):
        lines[order_id].append((sku, total))
    rows = []
    for order_id, customer_id, number, total, subtotal, placed_at in Order.objects.filter(
        source=biz.SOURCE, number__startswith=biz.ORDER_PREFIX
    ).values_list("id", "customer_id", "number", "total_minor", "subtotal_minor", "placed_at"):
        special_lines = lines.get(order_id, [])
        rest = subtotal - sum(t for _sku, t in special_lines)
        parts = (*special_lines, ("", rest)) if special_lines and rest > 0 else tuple(special_lines)
        rows.append(
            loyalty_bulk.OrderEarnRow(customer_id, order_id, number, total, placed_at, parts)
        )
    entries, points = loyalty_bulk.points_earn_batch(rows)
    reversed_ = loyalty_bulk.points_reverse_batch(
        [
            loyalty_bulk.RefundRow(order_id, amount, f"refund:{refund_id}", at)
            for refund_id, order_id, amount, at in Refund.objects.filter(
                order__source=biz.SOURCE
            ).values_list("id", "order_id", "amount_minor", "created_at")
        ]
    )
    today = today or now().date()
    expired = services.points_expire(today=today)
    services.tiers_evaluate(today=today)
    # A few members have exchanged points for rewards.
    rng = random.Random(7)
    drip = Reward.objects.get(code="drip")
    rich = list(
        Customer.objects.filter(loyalty_account__balance__gte=1000).values_list("pk", flat=True)[
            :2000
        ]
    )
    redeemed = 0
    for customer_id in rng.sample(rich, min(150, len(rich))):
        services.reward_redeem(
            customer=Customer.objects.get(pk=customer_id),
            reward=drip,
            idempotency_key=f"demo-redeem:{customer_id}",
        )
        redeemed += 1
    coupons = services.birthday_coupons_issue(month=today.replace(day=1))
    return {
        "entries": entries,
        "points": points,
        "reversals": reversed_,
        "expired": expired.points,
        "redemptions": redeemed,
        "birthday_coupons": coupons,
    }
