from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kizuna.catalog.models import Product
from kizuna.core.money import CURRENCY_CHOICES, DEFAULT_CURRENCY
from kizuna.customers.models import Customer


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("Placed")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")


class SalesChannel(models.TextChoices):
    STORE = "store", _("Store")
    ONLINE = "online", _("Online shop")
    APP = "app", _("App")


class Order(models.Model):
    """A purchase. Amounts are integer minor units of `currency` (yen have none)."""

    number = models.CharField(_("order number"), max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    placed_at = models.DateTimeField(_("placed at"), db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.PLACED
    )
    currency = models.CharField(
        _("currency"), max_length=3, choices=CURRENCY_CHOICES, default=DEFAULT_CURRENCY
    )
    subtotal_minor = models.BigIntegerField(_("subtotal"))
    discount_minor = models.BigIntegerField(_("discount"), default=0)
    total_minor = models.BigIntegerField(_("total"))
    refunded_minor = models.BigIntegerField(_("refunded"), default=0)
    channel = models.CharField(
        _("channel"), max_length=10, choices=SalesChannel.choices, default=SalesChannel.STORE
    )
    store = models.CharField(_("store"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=50, default="kizuna")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at", "-id"]
        indexes = [models.Index(fields=["customer", "-placed_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(subtotal_minor__gte=0), name="order_subtotal_gte_0"),
            models.CheckConstraint(condition=Q(discount_minor__gte=0), name="order_discount_gte_0"),
            models.CheckConstraint(condition=Q(total_minor__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=F("total_minor")),
                name="order_refunded_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="order_lines"
    )
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price_minor = models.BigIntegerField(_("unit price"))
    total_minor = models.BigIntegerField(_("line total"))

    class Meta:
        verbose_name = _("order line")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price_minor__gte=0), name="line_price_gte_0"),
            models.CheckConstraint(condition=Q(total_minor__gte=0), name="line_total_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class Refund(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField(_("amount"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_gt_0")
        ]

    def __str__(self) -> str:
        return f"{self.order.number}: {self.amount_minor}"
