"""Reads of the loyalty programme: a member's card, the ledger, rewards and coupons a
customer can use, the points liability report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from kizuna.core.errors import NotFound
from kizuna.core.timeutil import JST, local_date, now
from kizuna.customers.models import Customer
from kizuna.loyalty import rules
from kizuna.loyalty.models import (
    Account,
    Coupon,
    CouponDefinition,
    EntryKind,
    EntrySource,
    LedgerEntry,
    Lot,
    LotKind,
    Programme,
    Reward,
    Tier,
    TierPeriod,
)


@dataclass
class MemberCard:
    customer: Customer
    account: Account | None
    programme: Programme | None
    balance: int = 0
    tier: Tier | None = None
    next_tier: Tier | None = None
    to_next: int = 0
    progress_percent: int = 0
    tier_value: int = 0
    tier_held_until: date | None = None
    paid_balance: int = 0
    free_balance: int = 0
    expiring: list[tuple[date, int]] = field(default_factory=list)


def programme_current() -> Programme | None:
    return Programme.objects.order_by("id").first()


def account_get(*, customer: Customer) -> Account | None:
    return Account.objects.select_related("tier").filter(customer=customer).first()


def account_by_member_number(*, member_number: str) -> Account:
    account = (
        Account.objects.select_related("customer", "tier")
        .filter(member_number=member_number)
        .first()
    )
    if account is None:
        raise NotFound("member", member_number)
    return account


def expiring_points(*, account: Account, months: int = 3) -> list[tuple[date, int]]:
    """Points per expiry date within the next `months` months."""
    until = rules.expiry_date(local_date(now()), months) or local_date(now())
    return [
        (row["expires_on"], int(row["points"]))
        for row in Lot.objects.filter(
            account=account, remaining__gt=0, expires_on__isnull=False, expires_on__lte=until
        )
        .values("expires_on")
        .annotate(points=Sum("remaining"))
        .order_by("expires_on")
    ]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), JST)


def qualifying_values(
    programme: Programme,
    today: date,
    account_id: int | None = None,
    *,
    previous_year: bool = False,
) -> dict[int, int]:
    """Each account's qualifying value, from the ledger: order spend net of refunds (or
    points earned from orders) in the rolling window, or with a yearly tier period in the
    rank year so far (`previous_year`: in the whole rank year before)."""
    until = None
    if programme.tier_period == TierPeriod.YEARLY:
        start = rules.rank_year_start(today, programme.tier_year_start_month)
        if previous_year:
            until = _midnight(start)
            start = rules.rank_year_start(start - timedelta(days=1), start.month)
        since = _midnight(start)
    else:
        since = _midnight(rules.months_back(today, programme.tier_window_months))
    value_field = "spend_minor" if programme.tier_basis == "spend" else "points"
    qs = LedgerEntry.objects.filter(
        kind__in=[EntryKind.EARN, EntryKind.REVERSAL],
        occurred_at__gte=since,
        source=EntrySource.ORDER,
    )
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    return {
        a: max(0, int(v or 0))
        for a, v in qs.values_list("account_id")
        .annotate(v=Sum(value_field))
        .values_list("account_id", "v")
    }


def rank_values(programme: Programme, today: date, account_id: int | None = None) -> dict[int, int]:
    """The value each account's rank is decided by: the rolling window's; with a yearly
    period the better of last rank year's total (the rank it holds this year) and this
    year's so far (reached early)."""
    current = qualifying_values(programme, today, account_id)
    if programme.tier_period != TierPeriod.YEARLY:
        return current
    held = qualifying_values(programme, today, account_id, previous_year=True)
    return {a: max(current.get(a, 0), held.get(a, 0)) for a in current.keys() | held.keys()}


def member_card(*, customer: Customer) -> MemberCard:
    programme = programme_current()
    account = account_get(customer=customer)
    card = MemberCard(customer=customer, account=account, programme=programme)
    if account is None or programme is None:
        return card
    card.balance = account.balance
    card.tier = account.tier
    card.tier_held_until = account.tier_kept_until
    by_kind = dict(
        Lot.objects.filter(account=account, remaining__gt=0)
        .values_list("kind")
        .annotate(n=Sum("remaining"))
        .values_list("kind", "n")
    )
    card.paid_balance = int(by_kind.get(LotKind.PAID, 0) or 0)
    card.free_balance = max(0, account.balance - card.paid_balance)
    # Progress shown is this window's (with a yearly period: this rank year's, which holds
    # next year's rank).
    account.tier_value = qualifying_values(programme, local_date(now()), account.pk).get(
        account.pk, 0
    )
    card.tier_value = account.tier_value
    tiers = list(programme.tiers.all())
    current_rank = account.tier.rank if account.tier else -1
    for tier in tiers:
        if tier.rank > current_rank and tier.threshold > account.tier_value:
            card.next_tier = tier
            card.to_next = tier.threshold - account.tier_value
            base = account.tier.threshold if account.tier else 0
            span = max(1, tier.threshold - base)
            card.progress_percent = max(0, min(100, (account.tier_value - base) * 100 // span))
            break
    card.expiring = expiring_points(account=account)
    return card


def ledger_list(*, account: Account) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account=account).order_by("-occurred_at", "-id")


def rewards_available(*, account: Account | None) -> QuerySet[Reward]:
    at = now()
    qs = Reward.objects.filter(active=True).filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=at),
        Q(valid_until__isnull=True) | Q(valid_until__gt=at),
        Q(stock__isnull=True) | Q(stock__gt=0),
    )
    tier_id = account.tier_id if account else None
    qs = qs.annotate(n_tiers=Count("eligible_tiers")).filter(
        Q(n_tiers=0) | Q(eligible_tiers=tier_id)
    )
    return qs.distinct().order_by("points_price", "code")


def reward_list() -> QuerySet[Reward]:
    return Reward.objects.order_by("points_price", "code")


def coupons_of(*, customer: Customer) -> QuerySet[Coupon]:
    at = now()
    return (
        Coupon.objects.select_related("definition")
        .filter(customer=customer, used_at__isnull=True, definition__active=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by("valid_until", "id")
    )


def coupon_definition_list() -> QuerySet[CouponDefinition]:
    return CouponDefinition.objects.annotate(issued=Count("coupons")).order_by("-created_at")


@dataclass
class LiabilityRow:
    kind: str
    expires_month: str
    points: int
    gross_yen: Decimal
    net_yen: Decimal


@dataclass
class LiabilityReport:
    as_of: date
    breakage: Decimal
    rows: list[LiabilityRow]
    points: int
    gross_yen: Decimal
    net_yen: Decimal
    by_kind: dict[str, dict[str, Any]]


def _yen(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def points_liability() -> LiabilityReport:
    """Outstanding points x their yen value, by lot kind and expiry month, net of expected
    breakage (ASBJ Statement No. 29: a contract liability released on use or expiry).
    Paid points are prepaid instruments: no breakage is netted from them."""
    programme = programme_current()
    breakage = programme.expected_breakage if programme else Decimal(0)
    rows: list[LiabilityRow] = []
    by_kind: dict[str, dict[str, Any]] = {}
    for row in (
        Lot.objects.filter(remaining__gt=0)
        .values("kind", "expires_on__year", "expires_on__month")
        .annotate(points=Sum("remaining"), value=Sum(F("remaining") * F("value_per_point")))
        .order_by("kind", "expires_on__year", "expires_on__month")
    ):
        gross = Decimal(row["value"] or 0)
        net = gross if row["kind"] == "paid" else gross * (1 - breakage)
        month = (
            f"{row['expires_on__year']:04d}-{row['expires_on__month']:02d}"
            if row["expires_on__year"]
            else ""
        )
        rows.append(LiabilityRow(row["kind"], month, int(row["points"]), _yen(gross), _yen(net)))
        bucket = by_kind.setdefault(
            row["kind"], {"points": 0, "gross": Decimal(0), "net": Decimal(0)}
        )
        bucket["points"] += int(row["points"])
        bucket["gross"] += _yen(gross)
        bucket["net"] += _yen(net)
    return LiabilityReport(
        as_of=local_date(timezone.now()),
        breakage=breakage,
        rows=rows,
        points=sum(r.points for r in rows),
        gross_yen=sum((r.gross_yen for r in rows), Decimal(0)),
        net_yen=sum((r.net_yen for r in rows), Decimal(0)),
        by_kind=by_kind,
    )


def programme_summary() -> dict[str, Any]:
    agg = Account.objects.aggregate(members=Count("id"), points=Sum("balance"))
    tiers = dict(
        Account.objects.values_list("tier__code")
        .annotate(n=Count("id"))
        .values_list("tier__code", "n")
    )
    since = now() - timedelta(days=30)
    flows = dict(
        LedgerEntry.objects.filter(occurred_at__gte=since)
        .values_list("kind")
        .annotate(p=Sum("points"))
        .values_list("kind", "p")
    )
    return {
        "members": agg["members"] or 0,
        "points": agg["points"] or 0,
        "tiers": tiers,
        "flows": flows,
    }


def ledger_replay(*, account: Account) -> tuple[int, dict[int, int]]:
    """The balance and lot remainders as the ledger says they are (for checks)."""
    balance = 0
    lots: dict[int, int] = {}
    for points, allocations in LedgerEntry.objects.filter(account=account).values_list(
        "points", "allocations"
    ):
        balance += points
        for lot_id, delta in allocations:
            lots[lot_id] = lots.get(lot_id, 0) + delta
    return balance, lots
