"""Bulk loading of orders and refunds (imports of purchase history, the demo business).

Each order is checked with the rules of `order_place` (known SKUs, whole non-negative
amounts, 1 to 500 lines, a discount no larger than the subtotal, a known channel and
currency), each refund with those of `refund_create` (positive, never beyond what is left
on the order). The whole input is checked first and written in one transaction, with the
same `order.placed` / `order.refunded` events the services record. Events are not
published on the bus (see `kizuna.customers.bulk`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.catalog.models import Product
from kizuna.commerce.models import Order, OrderLine, OrderStatus, Refund, SalesChannel
from kizuna.commerce.services import MAX_AMOUNT, MAX_LINES
from kizuna.core.bulk import BATCH_SIZE, Progress, allocate_ids, batched, table_insert
from kizuna.core.money import CURRENCY_EXPONENTS, DEFAULT_CURRENCY
from kizuna.core.timeutil import now
from kizuna.customers.bulk import (
    EventRow,
    customers_seen_widen,
    events_bulk_check,
    events_bulk_record,
    events_insert,
)
from kizuna.customers.models import Customer


@dataclass(frozen=True)
class LineRow:
    sku: str
    quantity: int = 1
    unit_price_minor: int | None = None  # the product's price when None


@dataclass(frozen=True)
class OrderRow:
    number: str
    customer_id: int
    placed_at: datetime
    lines: list[LineRow]
    discount_minor: int = 0
    channel: str = SalesChannel.STORE.value
    store: str = ""
    currency: str = DEFAULT_CURRENCY
    source: str = "kizuna"


@dataclass(frozen=True)
class RefundRow:
    order_number: str
    amount_minor: int
    idempotency_key: str
    created_at: datetime
    reason: str = ""


ORDER_FIELDS = [
    "id",
    "number",
    "customer",
    "placed_at",
    "status",
    "currency",
    "subtotal_minor",
    "discount_minor",
    "total_minor",
    "refunded_minor",
    "channel",
    "store",
    "source",
    "created_at",
]


@dataclass
class _Built:
    subtotal: int = 0
    lines: list[tuple[int, str, str, int, int, int]] = field(default_factory=list)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def orders_bulk_place(
    *,
    rows: Sequence[OrderRow],
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Record many past purchases; returns order ids by number.

    An order number that is already stored (or repeated in `rows`) is an error: unlike
    `order_place`, a bulk load does not silently skip rows.
    """
    products = {p.sku: p for p in Product.objects.only("id", "sku", "name", "price_minor")}
    errors: dict[str, list[str]] = {}
    built: list[_Built] = []
    numbers: set[str] = set()
    latest = now()
    channels = set(SalesChannel.values)

    def err(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    for i, row in enumerate(rows):
        prefix = f"rows[{i}]"
        if not row.number or len(row.number) > 64:
            err(f"{prefix}.number", _("An order number of 1 to 64 characters is required."))
        elif row.number in numbers:
            err(f"{prefix}.number", _("This order number is repeated."))
        numbers.add(row.number)
        if row.currency not in CURRENCY_EXPONENTS:
            err(f"{prefix}.currency", _("Unsupported currency."))
        if row.channel not in channels:
            err(
                f"{prefix}.channel",
                _("Choose one of: %(c)s.") % {"c": ", ".join(SalesChannel.values)},
            )
        if not _whole(row.discount_minor) or row.discount_minor < 0:
            err(f"{prefix}.discount_minor", _("A discount must be a whole, non-negative amount."))
        if row.placed_at > latest:
            err(f"{prefix}.placed_at", _("An order cannot be placed in the future."))
        if not row.lines or len(row.lines) > MAX_LINES:
            err(f"{prefix}.lines", _("An order needs 1 to %(n)d lines.") % {"n": MAX_LINES})
        result = _Built()
        for j, line in enumerate(row.lines):
            product = products.get(line.sku)
            if product is None:
                err(f"{prefix}.lines[{j}].sku", _("Unknown product SKU %(s)s.") % {"s": line.sku})
                continue
            if not _whole(line.quantity) or not 0 < line.quantity <= 10_000:
                err(
                    f"{prefix}.lines[{j}].quantity",
                    _("Quantity must be a whole number from 1 to 10000."),
                )
                continue
            unit = product.price_minor if line.unit_price_minor is None else line.unit_price_minor
            if not _whole(unit) or not 0 <= unit <= MAX_AMOUNT:
                err(
                    f"{prefix}.lines[{j}].unit_price_minor",
                    _("A price must be a whole, non-negative amount."),
                )
                continue
            result.lines.append(
                (
                    product.pk,
                    product.sku,
                    product.name[:200],
                    line.quantity,
                    unit,
                    unit * line.quantity,
                )
            )
            result.subtotal += unit * line.quantity
        if _whole(row.discount_minor) and row.discount_minor > result.subtotal:
            err(f"{prefix}.discount_minor", _("The discount is larger than the subtotal."))
        if result.subtotal > MAX_AMOUNT:
            err(f"{prefix}.lines", _("The order total is too large."))
        built.append(result)
    for chunk in batched(sorted(numbers), 500):
        for number in Order.objects.filter(number__in=chunk).values_list("number", flat=True):
            err("number", _("Order %(n)s already exists.") % {"n": number})
    wanted = {row.customer_id for row in rows}
    found: set[int] = set()
    for id_chunk in batched(sorted(wanted), 900):
        found.update(Customer.objects.filter(pk__in=id_chunk).values_list("pk", flat=True))
    if wanted - found:
        err(
            "customer",
            _("Unknown customer ids: %(ids)s.")
            % {"ids": ", ".join(map(str, sorted(wanted - found)[:20]))},
        )
    if errors:
        raise ValidationError(dict(list(errors.items())[:50]))

    with transaction.atomic():
        order_ids = allocate_ids(Order, len(rows))
        events = [
            EventRow(
                type="order.placed",
                customer_id=row.customer_id,
                occurred_at=row.placed_at,
                source=row.source,
                message_id=f"order.placed:{row.number}",
                properties={
                    "order_id": oid,
                    "number": row.number,
                    "total": b.subtotal - row.discount_minor,
                    "currency": row.currency,
                    "channel": row.channel,
                    "store": row.store,
                    "skus": [line[1] for line in b.lines],
                },
            )
            for oid, row, b in zip(order_ids, rows, built, strict=True)
        ]
        span = events_bulk_check(events)
        # Chunk by chunk, so progress covers the orders, their lines and their events.
        for chunk in batched(range(len(rows)), batch_size):
            table_insert(
                Order,
                ORDER_FIELDS,
                [
                    (
                        order_ids[i],
                        rows[i].number,
                        rows[i].customer_id,
                        rows[i].placed_at,
                        OrderStatus.PLACED.value,
                        rows[i].currency,
                        built[i].subtotal,
                        rows[i].discount_minor,
                        built[i].subtotal - rows[i].discount_minor,
                        0,
                        rows[i].channel,
                        rows[i].store,
                        rows[i].source,
                        rows[i].placed_at,
                    )
                    for i in chunk
                ],
                batch_size=batch_size,
            )
            table_insert(
                OrderLine,
                ["order", "product", "sku", "name", "quantity", "unit_price_minor", "total_minor"],
                [(order_ids[i], *line) for i in chunk for line in built[i].lines],
                batch_size=batch_size,
            )
            events_insert([events[i] for i in chunk], batch_size=batch_size)
            if progress is not None:
                progress(len(chunk))
        customers_seen_widen(span)
    return dict(zip((row.number for row in rows), order_ids, strict=True))


@transaction.atomic
def refunds_bulk_create(
    *, rows: Sequence[RefundRow], batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> int:
    """Record refunds of stored orders; each order's `refunded_minor` and status follow, and
    an `order.refunded` event is recorded at the refund's time."""
    errors: dict[str, list[str]] = {}
    orders: dict[str, Order] = {}
    for chunk in batched(sorted({row.order_number for row in rows}), 500):
        # Locked, as refund_create locks, so concurrent refunds cannot overdraw an order.
        for order in (
            Order.objects.select_for_update()
            .filter(number__in=chunk)
            .only(
                "id",
                "number",
                "customer_id",
                "placed_at",
                "total_minor",
                "refunded_minor",
                "currency",
            )
        ):
            orders[order.number] = order
    refunded: dict[str, int] = defaultdict(int)
    keys: set[str] = set()
    latest = now()
    for i, row in enumerate(rows):
        prefix = f"rows[{i}]"
        if not row.idempotency_key or len(row.idempotency_key) > 100 or row.idempotency_key in keys:
            errors[f"{prefix}.idempotency_key"] = [
                _("A unique idempotency key of 1 to 100 characters is required.")
            ]
        keys.add(row.idempotency_key)
        if not _whole(row.amount_minor) or row.amount_minor <= 0:
            errors[f"{prefix}.amount_minor"] = [_("A refund must be a whole, positive amount.")]
            continue
        found = orders.get(row.order_number)
        if found is None:
            errors[f"{prefix}.order"] = [_("Unknown order %(n)s.") % {"n": row.order_number}]
            continue
        order = found
        if not order.placed_at <= row.created_at <= latest:
            errors[f"{prefix}.created_at"] = [
                _("A refund happens after its order and not in the future.")
            ]
        refunded[row.order_number] += row.amount_minor
        if order.refunded_minor + refunded[row.order_number] > order.total_minor:
            errors[f"{prefix}.amount_minor"] = [
                _("Only %(n)d is left to refund on this order.")
                % {
                    "n": order.total_minor
                    - order.refunded_minor
                    - refunded[row.order_number]
                    + row.amount_minor
                }
            ]
    for chunk in batched(sorted(keys), 500):
        for key in Refund.objects.filter(idempotency_key__in=chunk).values_list(
            "idempotency_key", flat=True
        ):
            errors.setdefault("idempotency_key", []).append(
                _("Idempotency key %(k)s was already used.") % {"k": key}
            )
    if errors:
        raise ValidationError(dict(list(errors.items())[:50]))

    with transaction.atomic():
        written = table_insert(
            Refund,
            ["order", "amount_minor", "reason", "idempotency_key", "created_at"],
            (
                (
                    orders[row.order_number].pk,
                    row.amount_minor,
                    row.reason[:200],
                    row.idempotency_key,
                    row.created_at,
                )
                for row in rows
            ),
            batch_size=batch_size,
            progress=progress,
        )
        for number, amount in refunded.items():
            order = orders[number]
            total_refunded = order.refunded_minor + amount
            status = (
                OrderStatus.REFUNDED
                if total_refunded == order.total_minor
                else OrderStatus.PARTIALLY_REFUNDED
            )
            Order.objects.filter(pk=order.pk).update(refunded_minor=total_refunded, status=status)
        events_bulk_record(
            rows=[
                EventRow(
                    type="order.refunded",
                    customer_id=orders[row.order_number].customer_id,
                    occurred_at=row.created_at,
                    message_id=f"order.refunded:{row.idempotency_key}",
                    properties={
                        "order_id": orders[row.order_number].pk,
                        "number": row.order_number,
                        "amount": row.amount_minor,
                        "currency": orders[row.order_number].currency,
                        "reason": row.reason[:200],
                    },
                )
                for row in rows
            ],
            batch_size=batch_size,
        )
    return written
