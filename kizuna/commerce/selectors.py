from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Max, Min, QuerySet, Sum

from kizuna.commerce.models import Order
from kizuna.core.errors import NotFound
from kizuna.customers.models import Customer


def order_list(*, customer: Customer | None = None, search: str = "", status: str = "",
               since: datetime | None = None) -> QuerySet[Order]:
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
        return (Order.objects.select_related("customer")
                .prefetch_related("lines__product", "refunds").get(pk=order_id))
    except Order.DoesNotExist as exc:
        raise NotFound("order", order_id) from exc


def customer_order_stats(*, customer_ids: Iterable[int]) -> dict[int, dict]:
    """Order count, net spend (total less refunds), first and last order per customer."""
    rows = (
        Order.objects.filter(customer_id__in=list(customer_ids))
        .values("customer_id")
        .annotate(orders=Count("id"), total=Sum("total_minor"), refunded=Sum("refunded_minor"),
                  first=Min("placed_at"), last=Max("placed_at"))
    )
    return {
        r["customer_id"]: {"orders": r["orders"], "net_spend": (r["total"] or 0) - (r["refunded"] or 0),
                           "first_order_at": r["first"], "last_order_at": r["last"]}
        for r in rows
    }


def sales_summary(*, since: datetime | None = None) -> dict:
    qs = Order.objects.all()
    if since is not None:
        qs = qs.filter(placed_at__gte=since)
    agg = qs.aggregate(orders=Count("id"), revenue=Sum("total_minor"),
                       refunded=Sum("refunded_minor"), customers=Count("customer", distinct=True))
    orders = agg["orders"] or 0
    revenue = (agg["revenue"] or 0) - (agg["refunded"] or 0)
    return {"orders": orders, "net_revenue": revenue, "customers": agg["customers"] or 0,
            "aov": revenue // orders if orders else 0}
