"""Writes of orders and refunds. Each records its domain event in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from kizuna.catalog.models import Product
from kizuna.commerce.models import Order, OrderLine, OrderStatus, Refund, SalesChannel
from kizuna.core.audit import acting_as
from kizuna.core.money import CURRENCY_EXPONENTS, DEFAULT_CURRENCY
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.customers.services import event_record

MAX_LINES = 500
MAX_AMOUNT = 10**12  # a trillion minor units: far above any real order, below int64 overflow


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@transaction.atomic
def order_place(
    *,
    customer: Customer,
    number: str,
    lines: list[dict[str, Any]],
    placed_at: datetime | None = None,
    currency: str = DEFAULT_CURRENCY,
    discount_minor: int = 0,
    channel: str = SalesChannel.STORE,
    store: str = "",
    source: str = "kizuna",
    actor: AbstractBaseUser | None = None,
) -> Order:
    """Record a purchase. Lines name a product by `sku`; the unit price defaults to the
    product's. Placing an existing order number again returns that order unchanged
    (a retried import adds nothing) if it is for the same customer."""
    errors: dict[str, list[str]] = {}

    def err(field: str, msg: str) -> None:
        errors.setdefault(field, []).append(msg)

    if not number or len(number) > 64:
        err("number", _("An order number of 1 to 64 characters is required."))
    existing = Order.objects.filter(number=number).first() if number else None
    if existing is not None:
        if existing.customer_id != customer.pk:
            err("number", _("This order number is already used by another customer's order."))
            raise ValidationError(errors)
        return existing
    if currency not in CURRENCY_EXPONENTS:
        err("currency", _("Unsupported currency."))
    if channel not in SalesChannel.values:
        err("channel", _("Choose one of: %(c)s.") % {"c": ", ".join(SalesChannel.values)})
    if not _whole(discount_minor) or discount_minor < 0:
        err("discount_minor", _("A discount must be a whole, non-negative amount."))
    if not isinstance(lines, list) or not lines:
        err("lines", _("An order needs at least one line."))
        raise ValidationError(errors)
    if len(lines) > MAX_LINES:
        err("lines", _("At most %(n)d lines per order.") % {"n": MAX_LINES})
        raise ValidationError(errors)
    skus = {line.get("sku") for line in lines if isinstance(line, dict)}
    products = {p.sku: p for p in Product.objects.filter(sku__in=[s for s in skus if s])}
    built: list[OrderLine] = []
    for i, line in enumerate(lines):
        prefix = f"lines[{i}]"
        if not isinstance(line, dict):
            err(prefix, _("Each line must be an object."))
            continue
        unknown = set(line) - {"sku", "quantity", "unit_price_minor", "name"}
        for key in sorted(unknown):
            err(f"{prefix}.{key}", _("Unknown field %(f)s.") % {"f": key})
        product = products.get(line.get("sku", ""))
        if product is None:
            err(f"{prefix}.sku", _("Unknown product SKU %(s)s.") % {"s": line.get("sku")})
            continue
        quantity = line.get("quantity", 1)
        if not _whole(quantity) or quantity <= 0 or quantity > 10_000:
            err(f"{prefix}.quantity", _("Quantity must be a whole number from 1 to 10000."))
            continue
        unit = line.get("unit_price_minor", product.price_minor)
        if not _whole(unit) or unit < 0 or unit > MAX_AMOUNT:
            err(f"{prefix}.unit_price_minor", _("A price must be a whole, non-negative amount."))
            continue
        built.append(
            OrderLine(
                product=product,
                sku=product.sku,
                name=str(line.get("name") or product.name)[:200],
                quantity=quantity,
                unit_price_minor=unit,
                total_minor=unit * quantity,
            )
        )
    subtotal = sum(line.total_minor for line in built)
    if not errors and discount_minor > subtotal:
        err("discount_minor", _("The discount is larger than the subtotal."))
    if subtotal > MAX_AMOUNT:
        err("lines", _("The order total is too large."))
    if errors:
        raise ValidationError(errors)
    with acting_as(actor):
        order = Order.objects.create(
            number=number,
            customer=customer,
            placed_at=placed_at or now(),
            currency=currency,
            subtotal_minor=subtotal,
            discount_minor=discount_minor,
            total_minor=subtotal - discount_minor,
            channel=channel,
            store=store,
            source=source,
        )
        for built_line in built:
            built_line.order = order
        OrderLine.objects.bulk_create(built)
    event_record(
        type="order.placed",
        customer=customer,
        occurred_at=order.placed_at,
        source=source,
        message_id=f"order.placed:{order.number}",
        properties={
            "order_id": order.pk,
            "number": order.number,
            "total": order.total_minor,
            "currency": order.currency,
            "channel": order.channel,
            "store": order.store,
            "skus": [line.sku for line in built],
            "lines": [
                {"sku": line.sku, "quantity": line.quantity, "total": line.total_minor}
                for line in built
            ],
        },
    )
    return order


@transaction.atomic
def refund_create(
    *,
    order: Order,
    amount_minor: int,
    idempotency_key: str,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> Refund:
    """Refund part or all of an order. Retrying with the same key returns the same refund;
    the same key with another amount or order is an error. Refunds never exceed the total."""
    errors: dict[str, list[str]] = {}
    if not idempotency_key or len(idempotency_key) > 100:
        errors["idempotency_key"] = [_("An idempotency key of 1 to 100 characters is required.")]
    if not _whole(amount_minor) or amount_minor <= 0:
        errors["amount_minor"] = [_("A refund must be a whole, positive amount.")]
    if errors:
        raise ValidationError(errors)
    # Lock the order first so concurrent refunds serialise on it.
    locked = Order.objects.select_for_update().get(pk=order.pk)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.order_id != locked.pk or existing.amount_minor != amount_minor:
            raise ValidationError(
                {
                    "idempotency_key": [
                        _("This idempotency key was already used for a different refund.")
                    ]
                }
            )
        return existing
    remaining = locked.total_minor - locked.refunded_minor
    if amount_minor > remaining:
        raise ValidationError(
            {"amount_minor": [_("Only %(n)d is left to refund on this order.") % {"n": remaining}]}
        )
    with acting_as(actor):
        refund = Refund.objects.create(
            order=locked,
            amount_minor=amount_minor,
            reason=reason[:200],
            idempotency_key=idempotency_key,
        )
        Order.objects.filter(pk=locked.pk).update(refunded_minor=F("refunded_minor") + amount_minor)
        locked.refresh_from_db()
        locked.status = (
            OrderStatus.REFUNDED
            if locked.refunded_minor == locked.total_minor
            else OrderStatus.PARTIALLY_REFUNDED
        )
        locked.save(update_fields=["status"])
    event_record(
        type="order.refunded",
        customer=locked.customer,
        source="kizuna",
        message_id=f"order.refunded:{idempotency_key}",
        properties={
            "order_id": locked.pk,
            "number": locked.number,
            "amount": amount_minor,
            "currency": locked.currency,
            "reason": reason[:200],
        },
    )
    return refund
