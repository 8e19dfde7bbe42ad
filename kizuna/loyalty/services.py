"""Writes of the loyalty programme. Every change of points is one ledger entry written in
the same transaction as the balance and lot projections it moves, under the account's row
lock, with its idempotency key claimed by a unique constraint in that transaction.

Lock order everywhere: accounts (by id) → their lots → reward / coupon definition → coupon
(a lot is only ever locked by a transaction holding its account).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, Sum, Value
from django.utils.translation import gettext as _

from kizuna.catalog.models import Product
from kizuna.core import events as bus
from kizuna.core.audit import acting_as
from kizuna.core.bulk import allocate_ids
from kizuna.core.timeutil import local_date, now
from kizuna.customers.merge import merge_note_moved
from kizuna.customers.models import Customer, CustomerMerge
from kizuna.customers.services import event_record
from kizuna.loyalty import rules
from kizuna.loyalty.models import (
    Account,
    Coupon,
    CouponDefinition,
    CouponKind,
    CouponUse,
    EntryKind,
    EntrySource,
    LedgerEntry,
    Lot,
    LotKind,
    PaidPointsOrder,
    Programme,
    Redemption,
    Reward,
    TierPeriod,
)
from kizuna.loyalty.selectors import rank_values

MAX_POINTS = 10**9
KEY_MAX = 120
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
OWN_EVENT_PREFIXES = ("points.", "tier.", "coupon.")


# --- helpers ------------------------------------------------------------------------------


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()


def order_digest(order_id: int, total: int) -> str:
    """The payload hash of an order's earn entry (cheap: batches compute it per order)."""
    return hashlib.sha256(f"earn:{order_id}:{total}".encode()).hexdigest()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_key(key: str, errors: dict[str, list[str]]) -> None:
    if not isinstance(key, str) or not key or len(key) > KEY_MAX:
        errors.setdefault("idempotency_key", []).append(
            _("An idempotency key of 1 to %(n)d characters is required.") % {"n": KEY_MAX}
        )


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _replayed(key: str, digest: str) -> LedgerEntry | None:
    """The entry already written under `key` when the payload is the same; an error when the
    key was used for something else."""
    existing = LedgerEntry.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.payload_hash != digest:
        raise ValidationError(
            {"idempotency_key": [_("This idempotency key was already used for another request.")]}
        )
    return existing


def programme_get() -> Programme:
    """The programme (created with defaults the first time)."""
    programme = Programme.objects.order_by("id").first()
    if programme is None:
        programme, _created = Programme.objects.get_or_create(
            id=1, defaults={"name": "Loyalty programme"}
        )
    return programme


def programme_active() -> Programme | None:
    """The programme if the business has set one up (reactions to events do nothing
    before that)."""
    return Programme.objects.order_by("id").first()


# How long a process trusts its snapshot of the programme's event points without asking
# the database again (saves and deletes in this process forget it at once; another
# process's change is seen within this time).
EVENT_POINTS_TTL = 1.0


@dataclass(frozen=True)
class _EventPoints:
    loaded_at: float
    points: dict[str, Any] | None  # None: no programme yet


_event_points: _EventPoints | None = None


def programme_event_points() -> dict[str, Any] | None:
    """The programme's points per engagement event type (None before a programme exists),
    from a per-process snapshot: the wildcard subscriber asks this for every event on the
    bus, so it costs a query at most once per `EVENT_POINTS_TTL` per process instead of once
    per event. Inside a transaction the snapshot is not refreshed from what it reads (that
    may still roll back)."""
    global _event_points
    snapshot = _event_points
    started = time.monotonic()
    if snapshot is not None and started - snapshot.loaded_at < EVENT_POINTS_TTL:
        return snapshot.points
    programme = programme_active()
    points = dict(programme.event_points) if programme is not None else None
    if not connection.in_atomic_block:
        _event_points = _EventPoints(started, points)
    return points


def _forget_event_points() -> None:
    global _event_points
    _event_points = None


def programme_changed(**_kwargs: Any) -> None:
    """Signal receiver (programme saved or deleted, tables flushed): forget the snapshot
    now and again once the change commits, so no reader keeps what it read before."""
    _forget_event_points()
    transaction.on_commit(_forget_event_points)


def member_number(customer_id: int) -> str:
    """'K' + 9 digits + a Luhn check digit: printable, short, typo-detecting."""
    body = f"{customer_id:09d}"
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"K{body}{(10 - total % 10) % 10}"


def account_for(customer: Customer | int) -> Account:
    customer_id = customer if isinstance(customer, int) else customer.pk
    account = Account.objects.filter(customer_id=customer_id).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(
                customer_id=customer_id, member_number=member_number(customer_id)
            )
    except IntegrityError:
        return Account.objects.get(customer_id=customer_id)


def _lock(*account_ids: int) -> dict[int, Account]:
    return {
        a.pk: a
        for a in Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk")
    }


@dataclass(frozen=True)
class LotSpec:
    points: int
    kind: str = LotKind.FREE
    value_per_point: Decimal = Decimal(1)
    expires_on: date | None = None
    earned_at: datetime | None = None


def _credit(
    account: Account,
    *,
    kind: str,
    lots: Sequence[LotSpec],
    key: str,
    digest: str,
    reason: str,
    source: str,
    source_ref: str = "",
    staff: Any = None,
    occurred_at: datetime,
    spend_minor: int = 0,
) -> LedgerEntry:
    """Add points (account locked by the caller). Points first pay off a negative balance;
    the rest become lots."""
    points = sum(spec.points for spec in lots)
    debt = max(0, -account.balance)
    specs: list[LotSpec] = []
    for spec in lots:
        pay = min(debt, spec.points)
        debt -= pay
        if spec.points - pay > 0:
            specs.append(
                LotSpec(
                    spec.points - pay,
                    spec.kind,
                    spec.value_per_point,
                    spec.expires_on,
                    spec.earned_at,
                )
            )
    lot_ids = allocate_ids(Lot, len(specs))
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=points,
        balance_after=account.balance + points,
        spend_minor=spend_minor,
        idempotency_key=key,
        payload_hash=digest,
        reason=reason[:200],
        source=source,
        source_ref=source_ref[:100],
        staff=staff,
        allocations=[[lot_id, spec.points] for lot_id, spec in zip(lot_ids, specs, strict=True)],
        occurred_at=occurred_at,
    )
    Lot.objects.bulk_create(
        [
            Lot(
                id=lot_id,
                account=account,
                entry=entry,
                kind=spec.kind,
                points=spec.points,
                remaining=spec.points,
                value_per_point=spec.value_per_point,
                earned_at=spec.earned_at or occurred_at,
                expires_on=spec.expires_on,
            )
            for lot_id, spec in zip(lot_ids, specs, strict=True)
        ]
    )
    Account.objects.filter(pk=account.pk).update(balance=F("balance") + points)
    account.balance += points
    return entry


def _open_lots(account: Account) -> list[rules.OpenLot]:
    return [
        rules.OpenLot(lot_id, remaining, expires_on, earned_at, kind == LotKind.PAID)
        for lot_id, remaining, expires_on, earned_at, kind in Lot.objects.filter(
            account=account, remaining__gt=0
        ).values_list("id", "remaining", "expires_on", "earned_at", "kind")
    ]


def paid_points_order() -> str:
    """The programme's order of spending free and paid points (expiry order by default)."""
    order = Programme.objects.order_by("id").values_list("paid_points_order", flat=True).first()
    return order or PaidPointsOrder.EXPIRY


def _debit(
    account: Account,
    *,
    kind: str,
    points: int,
    key: str,
    digest: str,
    reason: str,
    source: str,
    source_ref: str = "",
    staff: Any = None,
    occurred_at: datetime,
    spend_minor: int = 0,
    allow_negative: bool = False,
    field: str = "points",
) -> LedgerEntry:
    """Take `points` (> 0) FIFO from the lots (account locked by the caller). Without
    `allow_negative` the balance must cover them: the UPDATE's `balance >= n` guard and the
    lots' check constraints refuse an overspend even if a caller forgot the lock."""
    available = max(0, account.balance)
    if points > available and not allow_negative:
        raise ValidationError(
            {field: [_("Only %(n)d points are available.") % {"n": account.balance}]}
        )
    from_lots = min(points, available)
    taken: list[tuple[int, int]] = []
    if from_lots:
        lots = _open_lots(account)
        # The programme's order matters only when paid points are among the lots (no query
        # otherwise: most members hold free points only).
        order = paid_points_order() if any(lot.paid for lot in lots) else PaidPointsOrder.EXPIRY
        taken = rules.fifo_allocate(lots, from_lots, order)
    guard = Q(pk=account.pk) if allow_negative else Q(pk=account.pk, balance__gte=points)
    if Account.objects.filter(guard).update(balance=F("balance") - points) != 1:
        raise ValidationError({field: [_("Not enough points.")]})
    for lot_id, take in taken:
        if (
            Lot.objects.filter(pk=lot_id, remaining__gte=take).update(
                remaining=F("remaining") - take
            )
            != 1
        ):
            raise ValidationError({field: [_("Not enough points.")]})
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=-points,
        balance_after=account.balance - points,
        spend_minor=spend_minor,
        idempotency_key=key,
        payload_hash=digest,
        reason=reason[:200],
        source=source,
        source_ref=source_ref[:100],
        staff=staff,
        allocations=[[lot_id, -take] for lot_id, take in taken],
        occurred_at=occurred_at,
    )
    account.balance -= points
    return entry


def _entry_event(
    entry: LedgerEntry, customer: Customer | int, type: str, extra: dict[str, Any]
) -> None:
    if not isinstance(customer, Customer):
        customer = Customer.objects.get(pk=customer)
    event_record(
        type=type,
        customer=customer,
        occurred_at=entry.occurred_at,
        message_id=f"{type}:{entry.pk}",
        properties={
            "entry_id": entry.pk,
            "points": entry.points,
            "balance": entry.balance_after,
            "reason": entry.reason,
            **extra,
        },
    )


def _staff(actor: AbstractBaseUser | None) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --- earning ------------------------------------------------------------------------------


def earn_rules(programme: Programme) -> rules.EarnRules:
    return rules.EarnRules(
        earn_points=programme.earn_points,
        earn_per_yen=programme.earn_per_yen,
        rounding=programme.rounding,
        category_multipliers={
            k: Decimal(str(v)) for k, v in programme.category_multipliers.items()
        },
        product_multipliers={k: Decimal(str(v)) for k, v in programme.product_multipliers.items()},
    )


def campaign_multiplier(programme: Programme, at: datetime) -> Decimal:
    best = Decimal(1)
    for multiplier in programme.campaigns.filter(starts_at__lte=at, ends_at__gt=at).values_list(
        "multiplier", flat=True
    ):
        best = max(best, multiplier)
    return best


@transaction.atomic
def points_earn_for_order(
    *,
    customer_id: int,
    order_id: int,
    number: str,
    total: int,
    currency: str = "JPY",
    lines: Sequence[dict[str, Any]] = (),
    placed_at: datetime | None = None,
) -> LedgerEntry | None:
    """Points for a placed order (idempotent on the order). Non-yen orders earn nothing."""
    if currency != "JPY" or total <= 0:
        return None
    key = f"earn:order:{order_id}"
    digest = order_digest(order_id, total)
    if (existing := _replayed(key, digest)) is not None:
        return existing
    programme = programme_get()
    placed_at = placed_at or now()
    account_id = account_for(customer_id).pk
    account = _lock(account_id)[account_id]
    skus = [str(line.get("sku", "")) for line in lines]
    categories = dict(Product.objects.filter(sku__in=skus).values_list("sku", "category__slug"))
    parsed = [
        rules.Line(
            sku=str(line.get("sku", "")),
            category=categories.get(str(line.get("sku", ""))) or "",
            total=int(line.get("total", 0)),
        )
        for line in lines
    ]
    tier_multiplier = account.tier.earn_multiplier if account.tier is not None else Decimal(1)
    points = rules.order_points(
        total=total,
        lines=parsed,
        rules=earn_rules(programme),
        tier_multiplier=tier_multiplier,
        campaign_multiplier=campaign_multiplier(programme, placed_at),
    )
    if points <= 0:
        return None
    # ASBJ No. 29: the points' share of the sale is their stand-alone value.
    entry = _credit(
        account,
        kind=EntryKind.EARN,
        lots=[
            LotSpec(
                points,
                LotKind.FREE,
                programme.point_value,
                rules.expiry_date(local_date(placed_at), programme.expiry_months),
                placed_at,
            )
        ],
        key=key,
        digest=digest,
        reason=_("Order %(n)s") % {"n": number},
        source=EntrySource.ORDER,
        source_ref=f"order:{order_id}",
        occurred_at=placed_at,
        spend_minor=total,
    )
    _entry_event(entry, customer_id, "points.earned", {"order_id": order_id, "number": number})
    return entry


@transaction.atomic
def points_reverse_for_refund(
    *, customer_id: int, order_id: int, amount: int, refund_ref: str, reason: str = ""
) -> LedgerEntry | None:
    """Take back the refunded share of an order's points (idempotent on the refund)."""
    earn = LedgerEntry.objects.filter(idempotency_key=f"earn:order:{order_id}").first()
    if earn is None or amount <= 0:
        return None
    key = f"reversal:{refund_ref}"
    digest = payload_hash({"order": order_id, "amount": amount})
    if (existing := _replayed(key, digest)) is not None:
        return existing
    account = _lock(earn.account_id)[earn.account_id]
    refunded_before = -(
        LedgerEntry.objects.filter(
            kind=EntryKind.REVERSAL, source_ref=f"order:{order_id}"
        ).aggregate(s=Sum("spend_minor"))["s"]
        or 0
    )
    total = earn.spend_minor
    amount = min(amount, max(0, total - refunded_before))
    points = rules.refund_reversal(
        earned=earn.points, total=total, refunded_before=refunded_before, amount=amount
    )
    programme = programme_get()
    if not programme.allow_negative:
        points = min(points, max(0, account.balance))
    if points <= 0 and amount <= 0:
        return None
    if points <= 0:
        return None
    entry = _debit(
        account,
        kind=EntryKind.REVERSAL,
        points=points,
        key=key,
        digest=digest,
        reason=reason or _("Refund of %(ref)s") % {"ref": earn.reason},
        source=EntrySource.ORDER,
        source_ref=f"order:{order_id}",
        occurred_at=now(),
        spend_minor=-amount,
        allow_negative=programme.allow_negative,
    )
    _entry_event(entry, customer_id, "points.reversed", {"order_id": order_id})
    return entry


@transaction.atomic
def points_award(
    *,
    customer: Customer,
    points: int,
    idempotency_key: str,
    reason: str,
    source: str = EntrySource.EVENT,
    source_ref: str = "",
    kind: str = LotKind.FREE,
    value_per_point: Decimal | None = None,
    actor: AbstractBaseUser | None = None,
    occurred_at: datetime | None = None,
    expires_on: date | None = None,
) -> LedgerEntry:
    """Give points (engagement events, goodwill, paid points bought for money).

    `expires_on` gives these points their own expiry date (e.g. campaign points valid to
    the end of next month) instead of the programme's rule; it must not be before the day
    they are earned."""
    errors: dict[str, list[str]] = {}
    _check_key(idempotency_key, errors)
    if not _whole(points) or points <= 0 or points > MAX_POINTS:
        errors["points"] = [_("Points must be a whole number from 1 to %(n)d.") % {"n": MAX_POINTS}]
    if kind not in LotKind.values:
        errors["kind"] = [_("Choose free or paid points.")]
    at = occurred_at or now()
    if expires_on is not None and (not isinstance(expires_on, date) or expires_on < local_date(at)):
        errors["expires_on"] = [_("The expiry date cannot be before the day points are earned.")]
    _raise(errors)
    payload: dict[str, Any] = {"award": points, "customer": customer.pk, "kind": kind}
    if expires_on is not None:
        payload["expires_on"] = expires_on.isoformat()
    digest = payload_hash(payload)
    if (existing := _replayed(idempotency_key, digest)) is not None:
        return existing
    programme = programme_get()
    account_id = account_for(customer).pk
    account = _lock(account_id)[account_id]
    # Paid points are prepaid instruments: they do not expire by the programme's rule.
    if expires_on is not None:
        expires: date | None = expires_on
    elif kind == LotKind.PAID:
        expires = None
    else:
        expires = rules.expiry_date(local_date(at), programme.expiry_months)
    with acting_as(actor):
        entry = _credit(
            account,
            kind=EntryKind.EARN if source != EntrySource.STAFF else EntryKind.ADJUST,
            lots=[LotSpec(points, kind, value_per_point or programme.point_value, expires, at)],
            key=idempotency_key,
            digest=digest,
            reason=reason,
            source=source,
            source_ref=source_ref,
            staff=_staff(actor),
            occurred_at=at,
        )
    _entry_event(entry, customer.pk, "points.earned", {"source": source})
    return entry


@transaction.atomic
def points_adjust(
    *,
    customer: Customer,
    points: int,
    idempotency_key: str,
    reason: str,
    actor: AbstractBaseUser | None,
) -> LedgerEntry:
    """A staff correction, positive or negative, with a reason. Never below zero."""
    errors: dict[str, list[str]] = {}
    _check_key(idempotency_key, errors)
    if not _whole(points) or points == 0 or abs(points) > MAX_POINTS:
        errors["points"] = [_("Points must be a non-zero whole number.")]
    if not reason or not reason.strip():
        errors["reason"] = [_("Say why the points are adjusted.")]
    _raise(errors)
    if points > 0:
        return points_award(
            customer=customer,
            points=points,
            idempotency_key=idempotency_key,
            reason=reason,
            source=EntrySource.STAFF,
            actor=actor,
        )
    digest = payload_hash({"adjust": points, "customer": customer.pk})
    if (existing := _replayed(idempotency_key, digest)) is not None:
        return existing
    account_id = account_for(customer).pk
    account = _lock(account_id)[account_id]
    with acting_as(actor):
        entry = _debit(
            account,
            kind=EntryKind.ADJUST,
            points=-points,
            key=idempotency_key,
            digest=digest,
            reason=reason,
            source=EntrySource.STAFF,
            staff=_staff(actor),
            occurred_at=now(),
        )
    _entry_event(entry, customer.pk, "points.adjusted", {})
    return entry


# --- rewards ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedeemResult:
    redemption: Redemption
    created: bool  # False: a retry answered with the redemption made before
    balance: int  # the member's balance once this transaction commits


def reward_redeem(
    *,
    customer: Customer,
    reward: Reward,
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
) -> Redemption:
    """Exchange points for a reward. Retrying with the same key returns the same
    redemption; the balance and the stock can never be overspent."""
    return reward_redeem_result(
        customer=customer, reward=reward, idempotency_key=idempotency_key, actor=actor
    ).redemption


def _lock_member(customer: Customer) -> Account:
    """The customer's account, created if needed, locked (one query when it exists)."""
    account = Account.objects.select_for_update().filter(customer_id=customer.pk).first()
    if account is None:
        account_id = account_for(customer).pk
        account = _lock(account_id)[account_id]
    return account


@transaction.atomic
def reward_redeem_result(
    *,
    customer: Customer,
    reward: Reward | str,
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
) -> RedeemResult:
    """`reward_redeem`, also saying whether this call redeemed or replayed, and the balance;
    `reward` may be given by its code (an unknown code is a `reward` error).

    One transaction: the member's account row is locked first (so retries of one key and
    concurrent redemptions of one member queue there and each sees the one before it), the
    key is checked, the reward is read with its tier restriction in one query, points are
    taken FIFO from the lots under the balance guard, and a limited stock is decremented
    last by a guarded UPDATE (its row lock is held only for the end of the transaction)."""
    errors: dict[str, list[str]] = {}
    _check_key(idempotency_key, errors)
    _raise(errors)
    account = _lock_member(customer)
    at = now()
    tiers = Reward.eligible_tiers.through.objects.filter(reward_id=OuterRef("pk"))
    which = Q(code=reward) if isinstance(reward, str) else Q(pk=reward.pk)
    current = (
        Reward.objects.filter(which)
        .annotate(
            restricted=Exists(tiers),
            tier_allowed=(
                Exists(tiers.filter(tier_id=account.tier_id))
                if account.tier_id is not None
                else Value(False)
            ),
        )
        .first()
    )
    if current is None:
        raise ValidationError({"reward": [_("No reward with code %(c)s.") % {"c": reward}]})
    digest = payload_hash({"reward": current.pk, "customer": customer.pk})
    if (existing := _replayed(idempotency_key, digest)) is not None:
        return RedeemResult(existing.redemption, False, account.balance)
    if not current.active or (current.valid_from and at < current.valid_from):
        raise ValidationError({"reward": [_("This reward is not available.")]})
    if current.valid_until and at >= current.valid_until:
        raise ValidationError({"reward": [_("This reward has ended.")]})
    if current.restricted and not current.tier_allowed:
        raise ValidationError({"reward": [_("This reward is not available at your tier.")]})
    if current.stock is not None and current.stock < 1:
        raise ValidationError({"reward": [_("This reward is out of stock.")]})
    with acting_as(actor):
        entry = _debit(
            account,
            kind=EntryKind.REDEEM,
            points=current.points_price,
            key=idempotency_key,
            digest=digest,
            reason=_("Reward: %(r)s") % {"r": current.name},
            source=EntrySource.REWARD,
            source_ref=f"reward:{current.code}",
            staff=_staff(actor),
            occurred_at=at,
        )
        redemption = Redemption.objects.create(
            account=account, reward=current, entry=entry, points=current.points_price
        )
    _entry_event(entry, customer, "points.redeemed", {"reward": current.code})
    # The stock read above may be stale: this guarded UPDATE is what decides.
    if (
        current.stock is not None
        and Reward.objects.filter(pk=current.pk, stock__gte=1).update(stock=F("stock") - 1) != 1
    ):
        raise ValidationError({"reward": [_("This reward is out of stock.")]})
    return RedeemResult(redemption, True, account.balance)


# --- expiry and tiers (monthly) -----------------------------------------------------------


@dataclass
class BatchResult:
    accounts: int = 0
    entries: int = 0
    points: int = 0


def _expire_chunk(ids: list[int], today: date, at: datetime) -> BatchResult:
    from kizuna.loyalty.bulk import insert_entries, update_balances

    result = BatchResult()
    with transaction.atomic():
        balances = dict(
            Account.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "balance")
        )
        due: dict[int, list[tuple[int, int]]] = {}
        for lot_id, account_id, remaining in (
            Lot.objects.filter(account_id__in=ids, expires_on__lt=today, remaining__gt=0)
            .order_by("account_id", "expires_on", "id")
            .values_list("id", "account_id", "remaining")
        ):
            due.setdefault(account_id, []).append((lot_id, remaining))
        if not due:
            return result
        rows = []
        deltas = []
        stamp = today.isoformat()
        for account_id, lots in due.items():
            points = sum(r for _lot, r in lots)
            rows.append(
                {
                    "account_id": account_id,
                    "kind": EntryKind.EXPIRE,
                    "points": -points,
                    "balance_after": balances[account_id] - points,
                    "spend_minor": 0,
                    "idempotency_key": f"expire:{account_id}:{stamp}",
                    "payload_hash": payload_hash({"expire": stamp, "points": points}),
                    "reason": "Expired",
                    "source": EntrySource.SYSTEM,
                    "source_ref": "",
                    "allocations": [[lot_id, -r] for lot_id, r in lots],
                    "occurred_at": at,
                }
            )
            deltas.append((account_id, -points))
            result.points += points
        Lot.objects.filter(account_id__in=ids, expires_on__lt=today, remaining__gt=0).update(
            remaining=0
        )
        update_balances(deltas)
        insert_entries(rows, event_type="points.expired")
        result.accounts = len(due)
        result.entries = len(rows)
    return result


def points_expire(*, today: date | None = None, chunk: int = 20_000) -> BatchResult:
    """Expire every lot whose date has passed: one `expire` entry per account, in chunks
    of accounts, each chunk one transaction holding its accounts' row locks. Idempotent
    per day (the key names the account and the date)."""
    today = today or local_date(now())
    at = now()
    if connection.vendor == "postgresql":
        from kizuna.loyalty.bulk import expire_range_postgresql

        bounds = Lot.objects.filter(expires_on__lt=today, remaining__gt=0).aggregate(
            lo=Min("account_id"), hi=Max("account_id")
        )
        total = BatchResult()
        if bounds["lo"] is None:
            return total
        span = chunk * 5
        for lo in range(bounds["lo"], bounds["hi"] + 1, span):
            accounts, points = expire_range_postgresql(lo, lo + span - 1, today, at)
            total.accounts += accounts
            total.entries += accounts
            total.points += points
        return total
    account_ids = list(
        Lot.objects.filter(expires_on__lt=today, remaining__gt=0)
        .order_by("account_id")
        .values_list("account_id", flat=True)
        .distinct()
    )
    total = BatchResult()
    for start in range(0, len(account_ids), chunk):
        part = _expire_chunk(account_ids[start : start + chunk], today, at)
        total.accounts += part.accounts
        total.entries += part.entries
        total.points += part.points
    return total


def tier_rules(programme: Programme) -> list[rules.TierRule]:
    return [
        rules.TierRule(t.pk, t.rank, t.threshold, t.earn_multiplier) for t in programme.tiers.all()
    ]


def tiers_evaluate(*, today: date | None = None, chunk: int = 100_000) -> BatchResult:
    """Re-evaluate every member's tier from the rolling window, applying the grace rule.
    Accounts are evaluated in chunks of ids, each chunk one transaction holding its
    accounts' row locks; only changed accounts are written, each change recorded as a
    `tier.changed` event. Idempotent per day."""
    from kizuna.loyalty.bulk import insert_events, update_tiers

    today = today or local_date(now())
    programme = programme_get()
    tiers = tier_rules(programme)
    by_id = {t.id: t for t in tiers}
    names = {t.pk: t.code for t in programme.tiers.all()}
    values = rank_values(programme, today)
    yearly = programme.tier_period == TierPeriod.YEARLY
    result = BatchResult()
    at = now()
    top = Account.objects.aggregate(top=Max("pk"))["top"] or 0
    for lo in range(0, top + 1, chunk):
        with transaction.atomic():
            changes: list[tuple[int, int | None, int, date | None]] = []
            events: list[tuple[int, str, dict[str, Any]]] = []
            for account_id, customer_id, tier_id, kept_until in (
                Account.objects.select_for_update()
                .filter(pk__gte=lo, pk__lt=lo + chunk)
                .order_by("pk")
                .values_list("pk", "customer_id", "tier_id", "tier_kept_until")
            ):
                value = values.get(account_id, 0)
                if yearly:
                    # The rank is what last year's (or this year's) total reaches; it is
                    # held to the end of the rank year and reset by the next evaluation.
                    new = rules.qualifying_tier(value, tiers)
                    keep = (
                        rules.rank_year_end(today, programme.tier_year_start_month) if new else None
                    )
                else:
                    new, keep = rules.evaluate_tier(
                        current=by_id.get(tier_id) if tier_id else None,
                        value=value,
                        tiers=tiers,
                        kept_until=kept_until,
                        today=today,
                        grace_months=programme.tier_grace_months,
                    )
                new_id = new.id if new else None
                if new_id != tier_id or keep != kept_until:
                    changes.append((account_id, new_id, value, keep))
                if new_id != tier_id:
                    events.append(
                        (
                            customer_id,
                            # The new tier in the id: a second change on one day (an
                            # upgrade after more orders) is its own event.
                            f"tier.changed:{account_id}:{today.isoformat()}:"
                            f"{names.get(new_id) if new_id else '-'}",
                            {
                                "from": names.get(tier_id) if tier_id else None,
                                "to": names.get(new_id) if new_id else None,
                                "value": value,
                            },
                        )
                    )
            result.accounts += update_tiers(changes, today)
            insert_events("tier.changed", events, at)
            result.entries += len(events)
    return result


# --- merge --------------------------------------------------------------------------------

# Keys of a merge's snapshot (`CustomerMerge.snapshot`): the ids of the transfer entries in
# "moved" (the unmerge's event carries them), the survivor's tier before the merge apart.
MERGE_ENTRIES_KEY, MERGE_TIER_KEY = "loyalty_entries", "loyalty_tier"
# ... and of the personal coupons and coupon uses it moved.
MERGE_COUPONS_KEY, MERGE_COUPON_USES_KEY = "loyalty_coupons", "loyalty_coupon_uses"


def customer_merged(event: bus.DomainEvent) -> None:
    """In the merge's transaction: move the merged customer's points, personal coupons and
    coupon uses (per-customer limits then count for the person) to the survivor, and note in
    the merge's snapshot the transfer entries, the coupons, the uses and the survivor's tier
    before (so an unmerge can move them back)."""
    survivor_id = int(event.properties["survivor_id"])
    merged_id = int(event.properties["merged_id"])
    merge_id = event.properties.get("merge_id")
    coupons = list(Coupon.objects.filter(customer_id=merged_id).values_list("pk", flat=True))
    Coupon.objects.filter(pk__in=coupons).update(customer_id=survivor_id)
    uses = list(CouponUse.objects.filter(customer_id=merged_id).values_list("pk", flat=True))
    CouponUse.objects.filter(pk__in=uses).update(customer_id=survivor_id)
    if merge_id and coupons:
        merge_note_moved(merge_id=int(merge_id), key=MERGE_COUPONS_KEY, row_ids=coupons)
    if merge_id and uses:
        merge_note_moved(merge_id=int(merge_id), key=MERGE_COUPON_USES_KEY, row_ids=uses)
    before = Account.objects.filter(customer_id=survivor_id).values("tier_id", "tier_kept_until")
    tier_before = before.first() or {"tier_id": None, "tier_kept_until": None}
    moved = points_transfer_on_merge(
        survivor_id=survivor_id, merged_id=merged_id, merge_id=int(merge_id) if merge_id else None
    )
    if not merge_id:
        return
    if moved is not None:
        merge_note_moved(
            merge_id=int(merge_id), key=MERGE_ENTRIES_KEY, row_ids=[e.pk for e in moved]
        )
    after = Account.objects.filter(customer_id=survivor_id).values("tier_id", "tier_kept_until")
    tier_after = after.first() or {"tier_id": None, "tier_kept_until": None}
    if tier_after != tier_before:
        _merge_note_tier(
            int(merge_id),
            {
                "before": [tier_before["tier_id"], _iso(tier_before["tier_kept_until"])],
                "adopted": [tier_after["tier_id"], _iso(tier_after["tier_kept_until"])],
            },
        )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _merge_note_tier(merge_id: int, note: dict[str, Any]) -> None:
    record = CustomerMerge.objects.select_for_update().get(pk=merge_id)
    snapshot = dict(record.snapshot or {})
    snapshot[MERGE_TIER_KEY] = note
    CustomerMerge.objects.filter(pk=merge_id).update(snapshot=snapshot)


@transaction.atomic
def points_transfer_on_merge(
    *, survivor_id: int, merged_id: int, merge_id: int | None = None
) -> tuple[LedgerEntry, LedgerEntry] | None:
    merged = Account.objects.filter(customer_id=merged_id).first()
    if merged is None:
        return None
    survivor_account = account_for(survivor_id)
    locked = _lock(merged.pk, survivor_account.pk)
    merged, survivor = locked[merged.pk], locked[survivor_account.pk]
    # One transfer per merge: the same pair merged again after an unmerge is a new merge.
    base = f"merge:{merged_id}:into:{survivor_id}" + (f":{merge_id}" if merge_id else "")
    out_key, in_key = f"{base}:out", f"{base}:in"
    digest = payload_hash(
        {"merge": [merged_id, survivor_id], **({"id": merge_id} if merge_id else {})}
    )
    if (done := _replayed(out_key, digest)) is not None:
        return done, LedgerEntry.objects.get(idempotency_key=in_key)
    at = now()
    # Keep the better tier.
    if merged.tier_id and (
        survivor.tier_id is None or merged.tier.rank > survivor.tier.rank  # type: ignore[union-attr]
    ):
        Account.objects.filter(pk=survivor.pk).update(
            tier_id=merged.tier_id, tier_kept_until=merged.tier_kept_until
        )
    if merged.balance == 0:
        return None
    reason = _("Merged customer #%(m)s") % {"m": merged_id}
    if merged.balance > 0:
        lots = list(
            Lot.objects.filter(account=merged, remaining__gt=0).order_by("expires_on", "id")
        )
        out = _debit(
            merged,
            kind=EntryKind.TRANSFER_OUT,
            points=merged.balance,
            key=out_key,
            digest=digest,
            reason=reason,
            source=EntrySource.MERGE,
            source_ref=f"customer:{survivor_id}",
            occurred_at=at,
        )
        inn = _credit(
            survivor,
            kind=EntryKind.TRANSFER_IN,
            lots=[
                LotSpec(lot.remaining, lot.kind, lot.value_per_point, lot.expires_on, lot.earned_at)
                for lot in lots
            ],
            key=in_key,
            digest=digest,
            reason=reason,
            source=EntrySource.MERGE,
            source_ref=f"customer:{merged_id}",
            occurred_at=at,
        )
    else:  # a debt moves too
        debt = -merged.balance
        out = _credit(
            merged,
            kind=EntryKind.TRANSFER_OUT,
            lots=[LotSpec(debt)],
            key=out_key,
            digest=digest,
            reason=reason,
            source=EntrySource.MERGE,
            source_ref=f"customer:{survivor_id}",
            occurred_at=at,
        )
        inn = _debit(
            survivor,
            kind=EntryKind.TRANSFER_IN,
            points=debt,
            key=in_key,
            digest=digest,
            reason=reason,
            source=EntrySource.MERGE,
            source_ref=f"customer:{merged_id}",
            occurred_at=at,
            allow_negative=True,
        )
    return out, inn


def customer_unmerged(event: bus.DomainEvent) -> None:
    """In the unmerge's transaction: the points the merge moved go back to the restored
    customer, the survivor's tier is restored and both tiers are re-evaluated (see
    `points_transfer_on_unmerge`); the coupons and coupon uses it moved go back too, except
    a coupon the survivor has used since (that use is the survivor's)."""
    survivor_id = int(event.properties["survivor_id"])
    merged_id = int(event.properties["merged_id"])
    moved = event.properties.get("moved", {})
    uses = moved.get(MERGE_COUPON_USES_KEY, [])
    Coupon.objects.filter(pk__in=moved.get(MERGE_COUPONS_KEY, []), customer_id=survivor_id).filter(
        Q(use__isnull=True) | Q(use__pk__in=uses)
    ).update(customer_id=merged_id)
    CouponUse.objects.filter(pk__in=uses, customer_id=survivor_id).update(customer_id=merged_id)
    points_transfer_on_unmerge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        merge_id=int(event.properties["merge_id"]),
        entry_ids=list(moved.get(MERGE_ENTRIES_KEY, [])),
    )


@transaction.atomic
def points_transfer_on_unmerge(
    *, survivor_id: int, merged_id: int, merge_id: int, entry_ids: Sequence[int]
) -> tuple[LedgerEntry, LedgerEntry] | None:
    """Undo the points side of merge `merge_id` with compensating entries (posted entries
    are never edited): a transfer_out on the survivor and a transfer_in on the restored
    account of what the merge moved, lot for lot (kind, yen value, expiry), taken first from
    the lots the merge created. When the survivor no longer holds that many points (spent
    since), nothing is written and a ValidationError keyed `loyalty` names the shortfall.
    A merge noted without loyalty entries (nothing moved, or merged before they were noted)
    moves no points. Then the survivor's tier goes back to what it was before the merge
    (unless it changed since) and both tiers are re-evaluated."""
    ids = dict(
        Account.objects.filter(customer_id__in=[survivor_id, merged_id]).values_list(
            "customer_id", "pk"
        )
    )
    if not ids:
        return None
    locked = _lock(*ids.values())
    survivor = locked.get(ids.get(survivor_id, 0))
    merged = locked.get(ids.get(merged_id, 0))
    result = None
    inn = (
        LedgerEntry.objects.filter(
            pk__in=entry_ids, account=survivor, kind=EntryKind.TRANSFER_IN, source=EntrySource.MERGE
        ).first()
        if survivor is not None
        else None
    )
    if inn is not None and survivor is not None and merged is not None:
        result = _transfer_back(survivor, merged, inn, merge_id=merge_id, merged_id=merged_id)
    snapshot = CustomerMerge.objects.filter(pk=merge_id).values_list("snapshot", flat=True).first()
    note = (snapshot or {}).get(MERGE_TIER_KEY)
    if note and survivor is not None:
        adopted, before = note["adopted"], note["before"]
        current = Account.objects.filter(pk=survivor.pk).values_list("tier_id", "tier_kept_until")
        tier_id, kept_until = current.get()
        if [tier_id, _iso(kept_until)] == adopted:
            Account.objects.filter(pk=survivor.pk).update(
                tier_id=before[0],
                tier_kept_until=date.fromisoformat(before[1]) if before[1] else None,
            )
    _tiers_reevaluate(sorted(locked))
    return result


def _transfer_back(
    survivor: Account, merged: Account, inn: LedgerEntry, *, merge_id: int, merged_id: int
) -> tuple[LedgerEntry, LedgerEntry]:
    out_key, in_key = f"unmerge:{merge_id}:out", f"unmerge:{merge_id}:in"
    digest = payload_hash({"unmerge": merge_id})
    if (done := _replayed(out_key, digest)) is not None:
        return done, LedgerEntry.objects.get(idempotency_key=in_key)
    at = now()
    reason = _("Unmerged customer #%(m)s") % {"m": merged_id}
    common: dict[str, Any] = {"digest": digest, "reason": reason, "source": EntrySource.MERGE}
    if inn.points > 0:
        points = inn.points
        if survivor.balance < points:
            raise ValidationError(
                {
                    "loyalty": [
                        _(
                            "The survivor holds %(have)d points but the merge moved %(moved)d "
                            "points to it: %(short)d are missing. Adjust its balance first, "
                            "then undo the merge."
                        )
                        % {
                            "have": survivor.balance,
                            "moved": points,
                            "short": points - survivor.balance,
                        }
                    ]
                }
            )
        taken = _unmerge_allocation(survivor, inn, points)
        lots = {lot.pk: lot for lot in Lot.objects.filter(pk__in=[i for i, _t in taken])}
        out = _debit_lots(
            survivor,
            taken,
            kind=EntryKind.TRANSFER_OUT,
            key=out_key,
            occurred_at=at,
            source_ref=f"customer:{merged.customer_id}",
            **common,
        )
        back = _credit(
            merged,
            kind=EntryKind.TRANSFER_IN,
            lots=[_spec(lots[lot_id], take) for lot_id, take in taken],
            key=in_key,
            source_ref=f"customer:{survivor.customer_id}",
            occurred_at=at,
            **common,
        )
        return out, back
    # The merge moved a debt: the survivor gets back the lots that paid it, the restored
    # customer owes it again.
    debt = -inn.points
    paid = [(lot_id, -delta) for lot_id, delta in inn.allocations if delta < 0]
    lots = {lot.pk: lot for lot in Lot.objects.filter(pk__in=[i for i, _t in paid])}
    specs = [_spec(lots[lot_id], take) for lot_id, take in paid]
    if debt - sum(take for _i, take in paid) > 0:
        specs.append(LotSpec(debt - sum(take for _i, take in paid)))
    out = _credit(
        survivor,
        kind=EntryKind.TRANSFER_OUT,
        lots=specs,
        key=out_key,
        source_ref=f"customer:{merged.customer_id}",
        occurred_at=at,
        **common,
    )
    back = _debit(
        merged,
        kind=EntryKind.TRANSFER_IN,
        points=debt,
        key=in_key,
        source_ref=f"customer:{survivor.customer_id}",
        occurred_at=at,
        allow_negative=True,
        field="loyalty",
        **common,
    )
    return out, back


def _spec(lot: Lot, points: int) -> LotSpec:
    return LotSpec(points, lot.kind, lot.value_per_point, lot.expires_on, lot.earned_at)


def _unmerge_allocation(account: Account, inn: LedgerEntry, points: int) -> list[tuple[int, int]]:
    """Which of the survivor's lots give back `points`: what is left of the lots the merge
    created first, then its other lots in the programme's spending order."""
    created = {lot_id for lot_id, delta in inn.allocations if delta > 0}
    lots = _open_lots(account)
    order = paid_points_order() if any(lot.paid for lot in lots) else PaidPointsOrder.EXPIRY
    first = [lot for lot in lots if lot.id in created]
    from_created = min(points, sum(lot.remaining for lot in first))
    taken = rules.fifo_allocate(first, from_created, order) if from_created else []
    if points > from_created:
        others = [lot for lot in lots if lot.id not in created]
        taken += rules.fifo_allocate(others, points - from_created, order)
    return taken


def _debit_lots(
    account: Account,
    taken: Sequence[tuple[int, int]],
    *,
    kind: str,
    key: str,
    digest: str,
    reason: str,
    source: str,
    source_ref: str,
    occurred_at: datetime,
) -> LedgerEntry:
    """`_debit` from the given lots (account locked by the caller), with the same guards."""
    points = sum(take for _i, take in taken)
    guard = Q(pk=account.pk, balance__gte=points)
    if Account.objects.filter(guard).update(balance=F("balance") - points) != 1:
        raise ValidationError({"loyalty": [_("Not enough points.")]})
    for lot_id, take in taken:
        if (
            Lot.objects.filter(pk=lot_id, account=account, remaining__gte=take).update(
                remaining=F("remaining") - take
            )
            != 1
        ):
            raise ValidationError({"loyalty": [_("Not enough points.")]})
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=-points,
        balance_after=account.balance - points,
        idempotency_key=key,
        payload_hash=digest,
        reason=reason[:200],
        source=source,
        source_ref=source_ref[:100],
        allocations=[[lot_id, -take] for lot_id, take in taken],
        occurred_at=occurred_at,
    )
    account.balance -= points
    return entry


def _tiers_reevaluate(account_ids: Sequence[int]) -> None:
    """`tiers_evaluate` for a few accounts (locked by the caller), today; nothing before a
    programme exists."""
    programme = programme_active()
    if programme is None:
        return
    today = local_date(now())
    tiers = tier_rules(programme)
    by_id = {t.id: t for t in tiers}
    names = {t.pk: t.code for t in programme.tiers.all()}
    for account in Account.objects.filter(pk__in=account_ids).order_by("pk"):
        value = rank_values(programme, today, account.pk).get(account.pk, 0)
        if programme.tier_period == TierPeriod.YEARLY:
            new = rules.qualifying_tier(value, tiers)
            keep = rules.rank_year_end(today, programme.tier_year_start_month) if new else None
        else:
            new, keep = rules.evaluate_tier(
                current=by_id.get(account.tier_id) if account.tier_id else None,
                value=value,
                tiers=tiers,
                kept_until=account.tier_kept_until,
                today=today,
                grace_months=programme.tier_grace_months,
            )
        new_id = new.id if new else None
        Account.objects.filter(pk=account.pk).update(
            tier_id=new_id, tier_value=value, tier_kept_until=keep, tier_evaluated_on=today
        )
        if new_id != account.tier_id:
            event_record(
                type="tier.changed",
                customer=Customer.objects.get(pk=account.customer_id),
                message_id=f"tier.changed:{account.pk}:{today.isoformat()}:"
                f"{names.get(new_id) if new_id else '-'}",
                properties={
                    "from": names.get(account.tier_id) if account.tier_id else None,
                    "to": names.get(new_id) if new_id else None,
                    "value": value,
                },
            )


# --- coupons ------------------------------------------------------------------------------


def new_code(length: int = 10) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(length))


COUPON_FIELDS = {
    "name",
    "kind",
    "value",
    "free_sku",
    "shared_code",
    "min_spend_minor",
    "valid_from",
    "valid_until",
    "valid_days",
    "total_limit",
    "per_customer_limit",
}


@transaction.atomic
def coupon_definition_create(
    *, data: dict[str, Any], actor: AbstractBaseUser | None = None
) -> CouponDefinition:
    errors: dict[str, list[str]] = {}
    for key in sorted(set(data) - COUPON_FIELDS):
        errors[key] = [_("Unknown field %(f)s.") % {"f": key}]
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 100:
        errors["name"] = [_("A name of 1 to 100 characters is required.")]
    kind = data.get("kind")
    value = data.get("value", 0)
    if kind not in CouponKind.values:
        errors["kind"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(CouponKind.values)}]
    elif kind == CouponKind.PERCENT and not (_whole(value) and 1 <= value <= 100):
        errors["value"] = [_("A percentage from 1 to 100 is required.")]
    elif kind == CouponKind.FIXED and not (_whole(value) and value > 0):
        errors["value"] = [_("A positive whole amount is required.")]
    elif (
        kind == CouponKind.FREE_ITEM
        and not Product.objects.filter(sku=data.get("free_sku") or "").exists()
    ):
        errors["free_sku"] = [_("Unknown product SKU.")]
    for field in ("min_spend_minor", "valid_days", "total_limit", "per_customer_limit"):
        v = data.get(field)
        if v is not None and (not _whole(v) or v < 0):
            errors[field] = [_("A whole, non-negative number is required.")]
    if data.get("per_customer_limit") == 0:
        errors["per_customer_limit"] = [_("At least 1.")]
    if (
        data.get("valid_from")
        and data.get("valid_until")
        and data["valid_until"] <= data["valid_from"]
    ):
        errors["valid_until"] = [_("The end must be after the start.")]
    shared = str(data.get("shared_code") or "").strip().upper()
    if shared and (
        len(shared) > 40
        or CouponDefinition.objects.filter(shared_code=shared).exists()
        or Coupon.objects.filter(code=shared).exists()
    ):
        errors["shared_code"] = [_("This code is already used.")]
    _raise(errors)
    with acting_as(actor):
        return CouponDefinition.objects.create(
            **{
                **{k: v for k, v in data.items() if v is not None},
                "name": name,
                "shared_code": shared,
            }
        )


@transaction.atomic
def coupons_issue(
    *,
    definition: CouponDefinition,
    idempotency_key: str,
    customers: Iterable[Customer] = (),
    count: int = 0,
    at: datetime | None = None,
) -> list[Coupon]:
    """Issue single-use codes: one to each customer (only they can use it), or `count`
    bearer codes. Re-issuing under the same key returns the codes issued before."""
    errors: dict[str, list[str]] = {}
    _check_key(idempotency_key, errors)
    customer_list = list(customers)
    if not customer_list and not (_whole(count) and 0 < count <= 100_000):
        errors["count"] = [_("Give customers or a count from 1 to 100000.")]
    if not definition.active:
        errors["definition"] = [_("This coupon is not active.")]
    _raise(errors)
    at = at or now()
    valid_until = definition.valid_until
    if definition.valid_days:
        own = at + timedelta(days=definition.valid_days)
        valid_until = min(own, valid_until) if valid_until else own
    keys = (
        [f"{idempotency_key}:{c.pk}" for c in customer_list]
        if customer_list
        else [f"{idempotency_key}:{i}" for i in range(count)]
    )
    existing = {c.issue_key: c for c in Coupon.objects.filter(issue_key__in=keys)}
    fresh = []
    for i, key in enumerate(keys):
        if key in existing:
            continue
        fresh.append(
            Coupon(
                definition=definition,
                code=new_code(),
                customer=customer_list[i] if customer_list else None,
                issue_key=key,
                issued_at=at,
                valid_until=valid_until,
            )
        )
    Coupon.objects.bulk_create(fresh)
    for coupon in fresh:
        if coupon.customer is not None:
            event_record(
                type="coupon.issued",
                customer=coupon.customer,
                occurred_at=at,
                message_id=f"coupon.issued:{coupon.issue_key}",
                properties={
                    "coupon": definition.name,
                    "definition_id": definition.pk,
                    "code": coupon.code,
                    "valid_until": valid_until.isoformat() if valid_until else None,
                },
            )
    return list(Coupon.objects.filter(issue_key__in=keys).order_by("id"))


def birthday_coupons_issue(*, month: date | None = None) -> int:
    """Issue the programme's birthday coupon to members born in `month` (once a year)."""
    programme = programme_get()
    definition = programme.birthday_coupon
    if definition is None or not definition.active:
        return 0
    month = month or local_date(now())
    customers = Customer.objects.filter(
        birthday__month=month.month, loyalty_account__isnull=False
    ).order_by("pk")
    issued = 0
    key = f"birthday:{month.year}-{month.month:02d}"
    batch: list[Customer] = []
    for customer in customers.iterator(chunk_size=2000):
        batch.append(customer)
        if len(batch) == 500:
            issued += len(
                coupons_issue(definition=definition, idempotency_key=key, customers=batch)
            )
            batch = []
    if batch:
        issued += len(coupons_issue(definition=definition, idempotency_key=key, customers=batch))
    return issued


@transaction.atomic
def coupon_redeem(
    *,
    customer: Customer,
    code: str,
    order_total_minor: int,
    idempotency_key: str,
    order_ref: str = "",
    free_item_price_minor: int = 0,
) -> CouponUse:
    """Use a coupon on an order. Refused: unknown, another customer's, used, expired or not
    yet valid, below the minimum spend, over its total or per-customer limit."""
    errors: dict[str, list[str]] = {}
    _check_key(idempotency_key, errors)
    if not _whole(order_total_minor) or order_total_minor < 0:
        errors["order_total_minor"] = [_("A whole, non-negative amount is required.")]
    code = (code or "").strip().upper()
    if not code or len(code) > 40:
        errors["code"] = [_("A coupon code is required.")]
    _raise(errors)
    digest = payload_hash(
        {"code": code, "customer": customer.pk, "total": order_total_minor, "order": order_ref}
    )
    existing = CouponUse.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.payload_hash != digest:
            raise ValidationError(
                {
                    "idempotency_key": [
                        _("This idempotency key was already used for another request.")
                    ]
                }
            )
        return existing
    at = now()
    coupon = Coupon.objects.filter(code=code).first()
    definition_id = (
        coupon.definition_id
        if coupon
        else (
            CouponDefinition.objects.filter(shared_code=code).values_list("pk", flat=True).first()
        )
    )
    if definition_id is None:
        raise ValidationError({"code": [_("Unknown coupon code.")]})
    definition = CouponDefinition.objects.select_for_update().get(pk=definition_id)
    if coupon is not None:
        coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
        if coupon.customer_id is not None and coupon.customer_id != customer.pk:
            raise ValidationError({"code": [_("This coupon belongs to another customer.")]})
        if coupon.used_at is not None:
            raise ValidationError({"code": [_("This coupon has already been used.")]})
        if coupon.valid_until and at >= coupon.valid_until:
            raise ValidationError({"code": [_("This coupon has expired.")]})
    if not definition.active:
        raise ValidationError({"code": [_("This coupon is no longer valid.")]})
    if definition.valid_from and at < definition.valid_from:
        raise ValidationError({"code": [_("This coupon is not valid yet.")]})
    if definition.valid_until and at >= definition.valid_until:
        raise ValidationError({"code": [_("This coupon has expired.")]})
    if order_total_minor < definition.min_spend_minor:
        raise ValidationError(
            {
                "order_total_minor": [
                    _("This coupon needs a spend of at least ¥%(n)s.")
                    % {"n": f"{definition.min_spend_minor:,}"}
                ]
            }
        )
    used = CouponUse.objects.filter(definition=definition, customer=customer).count()
    if used >= definition.per_customer_limit:
        raise ValidationError({"code": [_("You have already used this coupon.")]})
    limit = Q(pk=definition.pk)
    if definition.total_limit is not None:
        limit &= Q(uses__lt=definition.total_limit)
    if CouponDefinition.objects.filter(limit).update(uses=F("uses") + 1) != 1:
        raise ValidationError({"code": [_("This coupon has run out.")]})
    if (
        coupon is not None
        and Coupon.objects.filter(pk=coupon.pk, used_at__isnull=True).update(used_at=at) != 1
    ):
        raise ValidationError({"code": [_("This coupon has already been used.")]})
    use = CouponUse.objects.create(
        definition=definition,
        coupon=coupon,
        customer=customer,
        order_ref=order_ref[:64],
        order_total_minor=order_total_minor,
        discount_minor=rules.coupon_discount(
            kind=definition.kind,
            value=definition.value,
            order_total=order_total_minor,
            free_item_price=free_item_price_minor,
        ),
        idempotency_key=idempotency_key,
        payload_hash=digest,
    )
    event_record(
        type="coupon.redeemed",
        customer=customer,
        occurred_at=at,
        message_id=f"coupon.redeemed:{use.pk}",
        properties={
            "coupon": definition.name,
            "definition_id": definition.pk,
            "code": code,
            "discount": use.discount_minor,
            "order": order_ref,
        },
    )
    return use


# --- reactions to other domains' events ---------------------------------------------------


def on_order_placed(event: bus.DomainEvent) -> None:
    p = event.properties
    if event.customer_id is None or "order_id" not in p or programme_active() is None:
        return
    points_earn_for_order(
        customer_id=event.customer_id,
        order_id=int(p["order_id"]),
        number=str(p.get("number", "")),
        total=int(p.get("total", 0)),
        currency=str(p.get("currency", "JPY")),
        lines=p.get("lines") or [],
        placed_at=event.occurred_at,
    )


def on_order_refunded(event: bus.DomainEvent) -> None:
    p = event.properties
    if event.customer_id is None or "order_id" not in p:
        return
    points_reverse_for_refund(
        customer_id=event.customer_id,
        order_id=int(p["order_id"]),
        amount=int(p.get("amount", 0)),
        refund_ref=f"event:{event.event_id}",
    )


def on_engagement_events(events: Sequence[bus.DomainEvent]) -> None:
    """`on_engagement_event` for the events of a type the programme gives points for (the
    programme's snapshot looked at once per list)."""
    event_points = programme_event_points()
    if not event_points:
        return
    earning = [kind for kind, points in event_points.items() if points]
    bus.each(bus.of_types(events, earning), on_engagement_event)


def on_engagement_event(event: bus.DomainEvent) -> None:
    """Points for engagement events named in the programme (check-in, review, survey...)."""
    if (
        event.customer_id is None
        or (event.event_id is None and not event.message_id)
        or event.type.startswith(OWN_EVENT_PREFIXES)
    ):
        return
    event_points = programme_event_points()
    points = event_points.get(event.type) if event_points else None
    if not points:
        return
    # Ingested events come with their message id only (the tracking worker inserts in bulk).
    ref = f"event:{event.event_id}" if event.event_id is not None else f"message:{event.message_id}"
    points_award(
        customer=Customer.objects.get(pk=event.customer_id),
        points=int(points),
        idempotency_key=ref[:120],
        reason=event.type,
        source=EntrySource.EVENT,
        source_ref=ref[:100],
        occurred_at=event.occurred_at,
    )
