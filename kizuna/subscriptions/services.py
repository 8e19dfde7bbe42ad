"""Writes of subscriptions: plans, the life of each subscription (start, renew, pause,
resume, payment failure, cancel), the daily "renewing soon" notices and CSV import.

Each change of a subscription locks its row, appends a `SubscriptionEvent` and records a
domain event on the customer's stream (`subscription.started`, `.renewed`, `.paused`,
`.resumed`, `.payment_failed`, `.cancelled`, `.renewing_soon`) in the same transaction;
journeys subscribe to those event types on the bus.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify
from django.utils.translation import gettext as _

from kizuna.core.audit import acting_as
from kizuna.core.timeutil import JST, local_date, now
from kizuna.customers.models import Customer, Identity
from kizuna.customers.services import event_record
from kizuna.subscriptions.models import (
    EventKind,
    Interval,
    Plan,
    Status,
    Subscription,
    SubscriptionEvent,
)
from kizuna.subscriptions.periods import add_interval

MAX_PRICE_YEN = 10**10
MAX_TRIAL_DAYS = 365
LIVE = (Status.TRIAL, Status.ACTIVE, Status.PAUSED, Status.PAST_DUE)
Errors = dict[str, list[str]]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


# --- plans ---------------------------------------------------------------------------------


def plan_errors(data: dict[str, Any]) -> Errors:
    errors: Errors = {}
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 100:
        _add(errors, "name", _("A name of 1 to 100 characters is required."))
    code = str(data.get("code") or slugify(name) or "")
    if not code or len(code) > 50 or slugify(code) != code:
        _add(errors, "code", _("A code of letters, digits and hyphens (at most 50) is required."))
    price: Any = data.get("price_yen")
    if not _whole(price) or price < 0 or price > MAX_PRICE_YEN:
        _add(errors, "price_yen", _("The price must be a whole, non-negative number of yen."))
    if data.get("interval", Interval.MONTH) not in Interval.values:
        _add(
            errors,
            "interval",
            _("Choose one of: %(c)s.") % {"c": ", ".join(Interval.values)},
        )
    trial: Any = data.get("trial_days", 0)
    if not _whole(trial) or not 0 <= trial <= MAX_TRIAL_DAYS:
        _add(errors, "trial_days", _("Trial days must be a whole number from 0 to 365."))
    return errors


@transaction.atomic
def plan_create(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Plan:
    unknown = set(data) - {"code", "name", "price_yen", "interval", "trial_days", "active"}
    errors = plan_errors(data)
    for key in sorted(unknown):
        _add(errors, key, _("Unknown field %(f)s.") % {"f": key})
    code = str(data.get("code") or slugify(str(data.get("name") or "")))
    if not errors and Plan.objects.filter(code=code).exists():
        _add(errors, "code", _("A plan with this code already exists."))
    if errors:
        raise ValidationError(errors)
    with acting_as(actor):
        return Plan.objects.create(
            code=code,
            name=str(data["name"]).strip(),
            price_yen=data["price_yen"],
            interval=data.get("interval", Interval.MONTH),
            trial_days=data.get("trial_days", 0),
            active=bool(data.get("active", True)),
        )


# --- the life of a subscription ------------------------------------------------------------


def _record(
    subscription: Subscription,
    kind: str,
    at: datetime,
    *,
    reason: str = "",
    amount_yen: int = 0,
    source: str = "kizuna",
) -> SubscriptionEvent:
    entry = SubscriptionEvent.objects.create(
        subscription=subscription,
        kind=kind,
        occurred_at=at,
        reason=reason,
        amount_yen=amount_yen,
        period_end=subscription.current_period_end,
    )
    event_record(
        type=f"subscription.{kind}",
        customer=subscription.customer,
        occurred_at=at,
        source=source,
        message_id=f"subscription.{kind}:{entry.pk}",
        properties={
            "subscription_id": subscription.pk,
            "plan": subscription.plan.code,
            "status": subscription.status,
            "reason": reason,
            "amount": amount_yen,
            "period_end": subscription.current_period_end.isoformat(),
        },
    )
    return entry


def _locked(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update()
        .select_related("plan", "customer")
        .get(pk=subscription.pk)
    )


def _refuse(field: str, message: str) -> None:
    raise ValidationError({field: [message]})


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > 200:
        _refuse("reason", _("A reason has at most 200 characters."))
    return reason


@transaction.atomic
def subscription_start(
    *,
    customer: Customer,
    plan: Plan,
    started_at: datetime | None = None,
    external_id: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    """Subscribe `customer` to `plan`: a trial first when the plan has one, else active
    with the first period paid."""
    if not plan.active:
        _refuse("plan", _("This plan is no longer offered."))
    # Validated here, not by the database (a duplicate was a 500: found by the API fuzz run).
    if external_id and len(external_id) > 100:
        _refuse("external_id", _("An external id has at most 100 characters."))
    if external_id and Subscription.objects.filter(external_id=external_id).exists():
        _refuse("external_id", _("A subscription with this external id already exists."))
    start = started_at or now()
    trial_end = start + timedelta(days=plan.trial_days) if plan.trial_days else None
    with acting_as(actor):
        subscription = Subscription.objects.create(
            customer=customer,
            plan=plan,
            status=Status.TRIAL if trial_end else Status.ACTIVE,
            started_at=start,
            trial_ends_at=trial_end,
            current_period_start=start,
            current_period_end=trial_end or add_interval(start, plan.interval),
            external_id=external_id or None,
        )
        _record(
            subscription,
            EventKind.STARTED,
            start,
            amount_yen=0 if trial_end else plan.price_yen,
        )
    return subscription


@transaction.atomic
def subscription_renew(
    *,
    subscription: Subscription,
    at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    """A paid renewal: the next period starts where the current one ends (or now, for a
    past-due subscription that finally paid)."""
    sub = _locked(subscription)
    if sub.status not in (Status.TRIAL, Status.ACTIVE, Status.PAST_DUE):
        _refuse(
            "status",
            _("A %(status)s subscription cannot be renewed.")
            % {"status": sub.get_status_display()},
        )
    at = at or now()
    start = (
        sub.current_period_end if sub.status != Status.PAST_DUE else max(at, sub.current_period_end)
    )
    with acting_as(actor):
        sub.status = Status.ACTIVE
        sub.current_period_start = start
        sub.current_period_end = add_interval(start, sub.plan.interval)
        sub.save(
            update_fields=["status", "current_period_start", "current_period_end", "updated_at"]
        )
        _record(sub, EventKind.RENEWED, at, amount_yen=sub.plan.price_yen)
    return sub


@transaction.atomic
def subscription_pause(
    *,
    subscription: Subscription,
    at: datetime | None = None,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    sub = _locked(subscription)
    if sub.status not in (Status.TRIAL, Status.ACTIVE, Status.PAST_DUE):
        _refuse(
            "status",
            _("A %(status)s subscription cannot be paused.") % {"status": sub.get_status_display()},
        )
    with acting_as(actor):
        sub.status = Status.PAUSED
        sub.save(update_fields=["status", "updated_at"])
        _record(sub, EventKind.PAUSED, at or now(), reason=_reason(reason))
    return sub


@transaction.atomic
def subscription_resume(
    *,
    subscription: Subscription,
    at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    """Resume a paused subscription: a new period starts now."""
    sub = _locked(subscription)
    if sub.status != Status.PAUSED:
        _refuse("status", _("Only a paused subscription can be resumed."))
    at = at or now()
    with acting_as(actor):
        sub.status = Status.ACTIVE
        sub.current_period_start = at
        sub.current_period_end = add_interval(at, sub.plan.interval)
        sub.save(
            update_fields=["status", "current_period_start", "current_period_end", "updated_at"]
        )
        _record(sub, EventKind.RESUMED, at, amount_yen=sub.plan.price_yen)
    return sub


@transaction.atomic
def subscription_payment_failed(
    *,
    subscription: Subscription,
    at: datetime | None = None,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    """The card was declined: the subscription is past due until a renewal succeeds."""
    sub = _locked(subscription)
    if sub.status not in (Status.TRIAL, Status.ACTIVE, Status.PAST_DUE):
        _refuse(
            "status",
            _("A payment cannot fail on a %(status)s subscription.")
            % {"status": sub.get_status_display()},
        )
    with acting_as(actor):
        sub.status = Status.PAST_DUE
        sub.save(update_fields=["status", "updated_at"])
        _record(sub, EventKind.PAYMENT_FAILED, at or now(), reason=_reason(reason))
    return sub


@transaction.atomic
def subscription_cancel(
    *,
    subscription: Subscription,
    reason: str,
    at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    """End a subscription now (or at `at`), with the customer's reason."""
    sub = _locked(subscription)
    if sub.status == Status.CANCELLED:
        _refuse("status", _("This subscription is already cancelled."))
    at = at or now()
    if at < sub.started_at:
        _refuse("ended_at", _("A subscription cannot end before it started."))
    reason = _reason(reason)
    if not reason:
        _refuse("reason", _("Give the reason for the cancellation."))
    with acting_as(actor):
        sub.status = Status.CANCELLED
        sub.ended_at = at
        sub.cancel_reason = reason
        sub.current_period_end = max(min(sub.current_period_end, at), sub.current_period_start)
        sub.save(
            update_fields=[
                "status",
                "ended_at",
                "cancel_reason",
                "current_period_end",
                "updated_at",
            ]
        )
        _record(sub, EventKind.CANCELLED, at, reason=reason)
    return sub


ACTIONS = {
    "renew": subscription_renew,
    "pause": subscription_pause,
    "resume": subscription_resume,
    "payment_failed": subscription_payment_failed,
    "cancel": subscription_cancel,
}


def subscription_act(
    *,
    subscription: Subscription,
    action: str,
    reason: str = "",
    at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> Subscription:
    """One of ACTIONS by name (the console's and the API's single entry point)."""
    if action not in ACTIONS:
        _refuse("action", _("Choose one of: %(c)s.") % {"c": ", ".join(ACTIONS)})
    kwargs: dict[str, Any] = {"subscription": subscription, "at": at, "actor": actor}
    if action in ("pause", "payment_failed", "cancel"):
        kwargs["reason"] = reason
    return ACTIONS[action](**kwargs)  # type: ignore[operator]


# --- renewing soon -------------------------------------------------------------------------


def renewing_soon_notify(*, days: int = 3, today: date | None = None) -> int:
    """Record `subscription.renewing_soon` for every running subscription whose period ends
    `days` days after `today` (business dates, JST). Idempotent per subscription and period:
    running it twice a day notifies once. Returns the number of new notices."""
    today = today or local_date(now())
    target = today + timedelta(days=days)
    start = datetime.combine(target, datetime.min.time(), tzinfo=JST)
    due = (
        Subscription.objects.filter(
            status__in=(Status.TRIAL, Status.ACTIVE),
            current_period_end__gte=start,
            current_period_end__lt=start + timedelta(days=1),
        )
        .select_related("plan", "customer")
        .order_by("pk")
    )
    created = 0
    for sub in due.iterator(chunk_size=500):
        with transaction.atomic():
            _event, new = event_record(
                type="subscription.renewing_soon",
                customer=sub.customer,
                message_id=f"subscription.renewing_soon:{sub.pk}:{sub.current_period_end:%Y%m%d}",
                properties={
                    "subscription_id": sub.pk,
                    "plan": sub.plan.code,
                    "status": sub.status,
                    "renews_at": sub.current_period_end.isoformat(),
                    "amount": sub.plan.price_yen,
                    "days": days,
                },
            )
        created += int(new)
    return created


# --- CSV import ----------------------------------------------------------------------------

IMPORT_COLUMNS = (
    "external_id",
    "customer_id",
    "customer_email",
    "plan",
    "status",
    "started_at",
    "current_period_end",
    "ended_at",
    "cancel_reason",
)
MAX_IMPORT_ROWS = 100_000


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    unchanged: int


def _moment(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        parsed = datetime.combine(day, datetime.min.time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=JST)
    return parsed


@transaction.atomic
def subscriptions_import(*, text: str, actor: AbstractBaseUser | None = None) -> ImportResult:
    """Import subscriptions from CSV (header row; columns in IMPORT_COLUMNS, `plan` by code,
    the customer by `customer_id` or `customer_email`). Every row is checked first; any
    bad row is reported as `rows[<n>].<field>` (n = 1-based data row) and nothing is
    written. Rows whose `external_id` is already stored are left unchanged (re-importing a
    file adds nothing)."""
    # newline="": a carriage return inside the text is a line end, not a csv.Error (500).
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [h.strip() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise ValidationError({"file": [str(exc)]}) from exc
    errors: Errors = {}
    if (
        "plan" not in header
        or "started_at" not in header
        or not ({"customer_id", "customer_email"} & set(header))
    ):
        raise ValidationError(
            {"file": [_("The header needs plan, started_at and customer_id or customer_email.")]}
        )
    for column in header:
        if column not in IMPORT_COLUMNS:
            _add(errors, "file", _("Unknown column %(c)s.") % {"c": column})
    rows: list[dict[str, str]] = []
    try:
        for n, raw in enumerate(reader, start=1):
            if None in raw:  # more cells than header columns
                _add(errors, f"rows[{n}]", _("This row has more cells than the header."))
                continue
            rows.append({(k or "").strip(): (v or "").strip() for k, v in raw.items()})
    except csv.Error as exc:
        raise ValidationError({"file": [str(exc)]}) from exc
    if len(rows) > MAX_IMPORT_ROWS:
        _add(errors, "file", _("At most %(n)d rows per file.") % {"n": MAX_IMPORT_ROWS})
    if errors:
        raise ValidationError(errors)
    plans = {p.code: p for p in Plan.objects.all()}
    ids = {int(r["customer_id"]) for r in rows if r.get("customer_id", "").isdigit()}
    by_id = {c.pk: c for c in Customer.objects.filter(pk__in=ids, merged_into__isnull=True)}
    emails = {r["customer_email"].lower() for r in rows if r.get("customer_email")}
    by_email = {
        i.value: i.customer
        for i in Identity.objects.filter(kind="email", value__in=emails).select_related("customer")
    }
    ext_ids = [r["external_id"] for r in rows if r.get("external_id")]
    known = set(
        Subscription.objects.filter(external_id__in=ext_ids).values_list("external_id", flat=True)
    )
    seen: set[str] = set()
    built: list[tuple[Subscription, str]] = []
    unchanged = 0
    for n, row in enumerate(rows, start=1):

        def bad(field: str, message: str, n: int = n) -> None:
            _add(errors, f"rows[{n}].{field}", message)

        ext = row.get("external_id") or None
        if ext and len(ext) > 100:
            bad("external_id", _("An external id has at most 100 characters."))
        if ext and ext in seen:
            bad("external_id", _("This external id appears twice in the file."))
        if ext:
            seen.add(ext)
        customer = None
        if row.get("customer_id"):
            if not row["customer_id"].isdigit() or int(row["customer_id"]) not in by_id:
                bad("customer_id", _("No customer with id %(v)s.") % {"v": row["customer_id"]})
            else:
                customer = by_id[int(row["customer_id"])]
        elif row.get("customer_email"):
            customer = by_email.get(row["customer_email"].lower())
            if customer is None:
                bad(
                    "customer_email",
                    _("No customer with email %(v)s.") % {"v": row["customer_email"]},
                )
        else:
            bad("customer_id", _("Name the customer by customer_id or customer_email."))
        plan = plans.get(row.get("plan", ""))
        if plan is None:
            bad("plan", _("Unknown plan %(v)s.") % {"v": row.get("plan", "")})
        status = row.get("status") or Status.ACTIVE
        if status not in Status.values:
            bad("status", _("Choose one of: %(c)s.") % {"c": ", ".join(Status.values)})
        moments: dict[str, datetime | None] = {}
        for field in ("started_at", "current_period_end", "ended_at"):
            try:
                moments[field] = _moment(row.get(field, ""))
            except ValueError:
                bad(field, _("Not a date or date-time: %(v)s.") % {"v": row.get(field)})
                moments[field] = None
        started, ended = moments["started_at"], moments["ended_at"]
        if started is None and f"rows[{n}].started_at" not in errors:
            bad("started_at", _("A start date is required."))
        if started and ended and ended < started:
            bad("ended_at", _("A subscription cannot end before it started."))
        if status == Status.CANCELLED and ended is None:
            bad("ended_at", _("A cancelled subscription needs its end date."))
        if status != Status.CANCELLED and ended is not None:
            bad("status", _("A subscription with an end date must be cancelled."))
        reason = row.get("cancel_reason", "")
        if len(reason) > 200:
            bad("cancel_reason", _("A reason has at most 200 characters."))
        if any(key.startswith(f"rows[{n}].") for key in errors):
            continue
        if ext and ext in known:
            unchanged += 1
            continue
        assert customer is not None and plan is not None and started is not None
        period_end = moments["current_period_end"] or add_interval(started, plan.interval)
        if ended is not None:
            period_end = max(min(period_end, ended), started)
        if period_end < started:
            bad("current_period_end", _("The current period cannot end before the start."))
            continue
        period_start = started
        built.append(
            (
                Subscription(
                    customer=customer,
                    plan=plan,
                    status=status,
                    started_at=started,
                    current_period_start=period_start,
                    current_period_end=period_end,
                    ended_at=ended,
                    cancel_reason=reason,
                    external_id=ext,
                ),
                reason,
            )
        )
    if errors:
        raise ValidationError(errors)
    with acting_as(actor):
        for sub, reason in built:
            sub.save()
            SubscriptionEvent.objects.create(
                subscription=sub,
                kind=EventKind.STARTED,
                occurred_at=sub.started_at,
                period_end=sub.current_period_end,
                reason=_("imported"),
            )
            if sub.ended_at is not None:
                SubscriptionEvent.objects.create(
                    subscription=sub,
                    kind=EventKind.CANCELLED,
                    occurred_at=sub.ended_at,
                    reason=reason,
                )
    return ImportResult(rows=len(rows), created=len(built), unchanged=unchanged)
