"""Reads of subscriptions: lists, recurring revenue (MRR/ARR normalised by interval), churn
by month and retention by start-month cohort."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, QuerySet, Sum

from kizuna.core.errors import NotFound
from kizuna.core.timeutil import local_date, now
from kizuna.customers.models import Customer
from kizuna.subscriptions.models import Plan, Status, Subscription, SubscriptionEvent
from kizuna.subscriptions.periods import (
    ChurnMonth,
    CohortRow,
    Span,
    add_months,
    cohort_retention,
    month_start,
    monthly_churn,
    monthly_yen,
)

# What counts as recurring revenue: paying subscriptions, past-due ones included (they are
# still expected to pay); trials and paused ones are not revenue.
REVENUE_STATUSES = (Status.ACTIVE, Status.PAST_DUE)


def plan_list(*, active_only: bool = False) -> QuerySet[Plan]:
    plans = Plan.objects.all()
    return plans.filter(active=True) if active_only else plans


def _valid_id(value: int) -> bool:
    return 0 < value < 2**62


def plan_get(*, plan_id: int) -> Plan:
    plan = Plan.objects.filter(pk=plan_id).first() if _valid_id(plan_id) else None
    if plan is None:
        raise NotFound("plan", plan_id)
    return plan


def subscription_list(
    *,
    status: str | None = None,
    plan_id: int | None = None,
    customer_id: int | None = None,
) -> QuerySet[Subscription]:
    subs = Subscription.objects.select_related("plan", "customer")
    if status:
        subs = subs.filter(status=status)
    if plan_id:
        subs = subs.filter(plan_id=plan_id)
    if customer_id:
        subs = subs.filter(customer_id=customer_id)
    return subs.order_by("-started_at", "-id")


def subscription_get(*, subscription_id: int) -> Subscription:
    subs = Subscription.objects.select_related("plan", "customer")
    sub = subs.filter(pk=subscription_id).first() if _valid_id(subscription_id) else None
    if sub is None:
        raise NotFound("subscription", subscription_id)
    return sub


def subscriptions_of(*, customer: Customer) -> QuerySet[Subscription]:
    return subscription_list(customer_id=customer.pk)


def event_list(*, subscription: Subscription) -> QuerySet[SubscriptionEvent]:
    return subscription.events.order_by("-occurred_at", "-id")


@dataclass(frozen=True)
class Revenue:
    mrr_yen: int
    arr_yen: int
    paying: int
    by_status: dict[str, int]
    by_plan: list[dict[str, object]]


def revenue() -> Revenue:
    """MRR and ARR now: each paying subscription's plan price normalised to a month (a week
    is 52/12 per month, a year 1/12), summed in SQL per plan and interval."""
    per_plan = (
        Subscription.objects.filter(status__in=REVENUE_STATUSES)
        .values("plan_id", "plan__code", "plan__name", "plan__interval", "plan__price_yen")
        .annotate(n=Count("id"), total=Sum("plan__price_yen"))
        .order_by("plan__price_yen", "plan__code")
    )
    by_plan = []
    mrr = 0.0
    paying = 0
    for row in per_plan:
        plan_mrr = monthly_yen(int(row["total"] or 0), row["plan__interval"])
        mrr += plan_mrr
        paying += row["n"]
        by_plan.append(
            {
                "plan_id": row["plan_id"],
                "code": row["plan__code"],
                "name": row["plan__name"],
                "interval": row["plan__interval"],
                "subscriptions": row["n"],
                "mrr_yen": round(plan_mrr),
            }
        )
    counts = dict(Subscription.objects.values_list("status").annotate(n=Count("id")).order_by())
    return Revenue(
        mrr_yen=round(mrr),
        arr_yen=round(mrr * 12),
        paying=paying,
        by_status={s: counts.get(s, 0) for s in Status.values},
        by_plan=by_plan,
    )


def _spans() -> list[Span]:
    rows = Subscription.objects.values_list("started_at", "ended_at").order_by()
    return [
        Span(start=local_date(start), end=local_date(end) if end else None)
        for start, end in rows.iterator(chunk_size=5000)
    ]


def churn_by_month(*, months: int = 12, today: date | None = None) -> list[ChurnMonth]:
    """Monthly churn of the last `months` months, this one included."""
    today = today or local_date(now())
    first = add_months(month_start(today), -(months - 1))
    return monthly_churn(_spans(), months=[add_months(first, k) for k in range(months)])


def retention_by_cohort(*, max_months: int = 12, today: date | None = None) -> list[CohortRow]:
    return cohort_retention(_spans(), today=today or local_date(now()), max_months=max_months)


def mrr_by_month(*, months: int = 12, today: date | None = None) -> list[dict[str, object]]:
    """MRR at the end of each of the last `months` months, from each subscription's start
    and end dates and its plan's normalised price (pauses and past-due spells are not
    replayed: a paused subscription counts until it ends)."""
    today = today or local_date(now())
    first = add_months(month_start(today), -(months - 1))
    rows = [
        (local_date(start), local_date(end) if end else None, monthly_yen(price, interval))
        for start, end, price, interval in Subscription.objects.exclude(status=Status.TRIAL)
        .values_list("started_at", "ended_at", "plan__price_yen", "plan__interval")
        .order_by()
        .iterator(chunk_size=5000)
    ]
    out = []
    for k in range(months):
        month = add_months(first, k)
        cut = min(add_months(month, 1), today)
        mrr = sum(m for start, end, m in rows if start < cut and (end is None or end >= cut))
        out.append({"month": month, "mrr_yen": round(mrr)})
    return out
