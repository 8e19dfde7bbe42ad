from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Case, Count, IntegerField, Max, Min, Q, QuerySet, Sum, Value, When

from kizuna.commerce.models import Order
from kizuna.core.errors import NotFound
from kizuna.core.timeutil import JST, now
from kizuna.customers.models import Customer


def order_list(
    *,
    customer: Customer | None = None,
    search: str = "",
    status: str = "",
    since: datetime | None = None,
) -> QuerySet[Order]:
    qs = Order.objects.select_related("customer").order_by("-placed_at", "-id")
    if customer is not None:
        qs = qs.filter(customer=customer)
    if search:
        qs = qs.filter(number__icontains=search)
    if status:
        qs = qs.filter(status=status)
    if since is not None:
        qs = qs.filter(placed_at__gte=since)
    return qs


def order_get(*, order_id: int) -> Order:
    try:
        return (
            Order.objects.select_related("customer")
            .prefetch_related("lines__product", "refunds")
            .get(pk=order_id)
        )
    except Order.DoesNotExist as exc:
        raise NotFound("order", order_id) from exc


def customer_order_stats(*, customer_ids: Iterable[int]) -> dict[int, dict]:
    """Order count, net spend (total less refunds), first and last order per customer."""
    rows = (
        Order.objects.filter(customer_id__in=list(customer_ids))
        .values("customer_id")
        .annotate(
            orders=Count("id"),
            total=Sum("total_minor"),
            refunded=Sum("refunded_minor"),
            first=Min("placed_at"),
            last=Max("placed_at"),
        )
    )
    return {
        r["customer_id"]: {
            "orders": r["orders"],
            "net_spend": (r["total"] or 0) - (r["refunded"] or 0),
            "first_order_at": r["first"],
            "last_order_at": r["last"],
        }
        for r in rows
    }


def sales_summary(*, since: datetime | None = None) -> dict:
    qs = Order.objects.all()
    if since is not None:
        qs = qs.filter(placed_at__gte=since)
    agg = qs.aggregate(
        orders=Count("id"),
        revenue=Sum("total_minor"),
        refunded=Sum("refunded_minor"),
        customers=Count("customer", distinct=True),
    )
    orders = agg["orders"] or 0
    revenue = (agg["revenue"] or 0) - (agg["refunded"] or 0)
    return {
        "orders": orders,
        "net_revenue": revenue,
        "customers": agg["customers"] or 0,
        "aov": revenue // orders if orders else 0,
    }


# --- dashboard KPIs (aggregate-only: fast on hundreds of thousands of orders) ---------------


def _month_bucket(starts: list[datetime], lo: int, hi: int) -> Case | Value:
    """Index i of the month [starts[i], starts[i+1]) holding `placed_at`, as a balanced tree
    of CASE expressions (log2(n) comparisons per row instead of n)."""
    if hi - lo == 1:
        return Value(lo)
    mid = (lo + hi) // 2
    return Case(
        When(placed_at__gte=starts[mid], then=_month_bucket(starts, mid, hi)),
        default=_month_bucket(starts, lo, mid),
        output_field=IntegerField(),
    )


def monthly_revenue(*, months: int = 24, until: datetime | None = None) -> list[dict]:
    """Net revenue and order count per JST calendar month, oldest first, for the `months`
    months ending with the month of `until` (default now); months without orders are zero.

    Orders are bucketed against the months' JST start instants inside the database instead of
    grouping by `TruncMonth(..., tzinfo=JST)`: on SQLite TruncMonth calls a Python function per
    row (about 1.2 s on 200,000 orders; this takes about 0.15 s), and exact instants make the
    JST month boundaries right on every backend."""
    end = (until or now()).astimezone(JST)
    bounds: list[datetime] = []
    year, month = end.year, end.month + 1
    for _ in range(months + 1):
        year, month = (year, month) if month <= 12 else (year + 1, 1)
        bounds.append(datetime(year, month, 1, tzinfo=JST))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    bounds.reverse()  # months + 1 instants: the start of each month and the end of the last
    bucket = Case(
        When(placed_at__lt=bounds[0], then=Value(-1)),
        When(placed_at__gte=bounds[-1], then=Value(-1)),
        default=_month_bucket(bounds, 0, months),
        output_field=IntegerField(),
    )
    rows = (
        Order.objects.annotate(bucket=bucket)
        .values("bucket")
        .annotate(orders=Count("id"), total=Sum("total_minor"), refunded=Sum("refunded_minor"))
        .order_by()
    )
    found = {r["bucket"]: (r["orders"], (r["total"] or 0) - (r["refunded"] or 0)) for r in rows}
    return [
        {
            "month": bounds[i].date(),
            "orders": found.get(i, (0, 0))[0],
            "net_revenue": found.get(i, (0, 0))[1],
        }
        for i in range(months)
    ]


def repeat_purchase_rate() -> dict:
    """Buyers (customers with an order), repeaters (2+ orders) and their share."""
    per_customer = Order.objects.values("customer_id").annotate(n=Count("id"))
    agg = per_customer.aggregate(
        buyers=Count("customer_id"), repeaters=Count("customer_id", filter=Q(n__gte=2))
    )
    buyers = agg["buyers"] or 0
    repeaters = agg["repeaters"] or 0
    return {"buyers": buyers, "repeaters": repeaters, "rate": repeaters / buyers if buyers else 0.0}
