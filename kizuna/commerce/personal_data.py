"""Orders and refunds for data-subject export and erasure (kizuna/core/personal_data.py).
Erasure keeps every amount (sales totals stay right) and scrubs the refund reasons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.commerce.models import Order, Refund
from kizuna.core.personal_data import register, row_dict


def _order_export(customer_id: int) -> Iterable[dict[str, Any]]:
    orders = Order.objects.filter(customer_id=customer_id).prefetch_related("lines", "refunds")
    for order in orders.order_by("placed_at", "pk"):
        row = row_dict(order)
        row["lines"] = [row_dict(line) for line in order.lines.all()]
        row["refunds"] = [row_dict(refund) for refund in order.refunds.all()]
        yield row


def _order_erase(customer_id: int, *, pseudonym: str) -> int:
    return (
        Refund.objects.filter(order__customer_id=customer_id).exclude(reason="").update(reason="")
    )


register("commerce.order", export=_order_export, erase=_order_erase, label=_("Orders"))
