"""Commerce's part of the per-customer privacy export: orders with their lines and refunds."""

from __future__ import annotations

from typing import Any

from kizuna.commerce.models import Order
from kizuna.customers.export_providers import json_rows, json_value, register_export_provider
from kizuna.customers.models import Customer


def orders_for_export(customer: Customer) -> list[dict[str, Any]]:
    orders = (
        Order.objects.filter(customer=customer)
        .order_by("placed_at", "pk")
        .prefetch_related("lines", "refunds")
    )
    return [
        {
            "number": o.number,
            "placed_at": json_value(o.placed_at),
            "status": o.status,
            "currency": o.currency,
            "total_minor": o.total_minor,
            "refunded_minor": o.refunded_minor,
            "lines": json_rows(o.lines.all(), ["sku", "name", "quantity", "total_minor"]),
            "refunds": json_rows(o.refunds.all(), ["amount_minor", "reason", "created_at"]),
        }
        for o in orders
    ]


def register() -> None:
    register_export_provider("orders", orders_for_export)
