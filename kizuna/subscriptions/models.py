"""Subscription plans, each customer's subscriptions and their append-only history.

A subscription's status and current period are a projection of its events
(`SubscriptionEvent`), written in the same transaction as each event by the services.
Prices are whole yen; MRR normalises every interval to a month (see selectors.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.models import Customer


class Interval(models.TextChoices):
    WEEK = "week", _("Weekly")
    MONTH = "month", _("Monthly")
    YEAR = "year", _("Yearly")


class Status(models.TextChoices):
    TRIAL = "trial", _("Trial")
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    PAST_DUE = "past_due", _("Past due")
    CANCELLED = "cancelled", _("Cancelled")


class EventKind(models.TextChoices):
    STARTED = "started", _("Started")
    RENEWED = "renewed", _("Renewed")
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    CANCELLED = "cancelled", _("Cancelled")


class Plan(models.Model):
    """What a customer subscribes to: a price per interval, with an optional free trial."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    price_yen = models.BigIntegerField(_("price (yen)"))
    interval = models.CharField(
        _("interval"), max_length=5, choices=Interval.choices, default=Interval.MONTH
    )
    trial_days = models.PositiveSmallIntegerField(_("trial days"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["price_yen", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(price_yen__gte=0), name="plan_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="subscriptions", verbose_name=_("customer")
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("plan")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    started_at = models.DateTimeField(_("started at"))
    trial_ends_at = models.DateTimeField(_("trial ends at"), null=True, blank=True)
    current_period_start = models.DateTimeField(_("current period start"))
    current_period_end = models.DateTimeField(_("current period end"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    cancel_reason = models.CharField(_("cancellation reason"), max_length=200, blank=True)
    external_id = models.CharField(_("external id"), max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "current_period_end"]),
            models.Index(fields=["started_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="subscription_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(current_period_end__gte=F("current_period_start")),
                name="subscription_period_ordered",
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="subscription_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} #{self.pk}"


class SubscriptionEvent(models.Model):
    """Append-only history of a subscription (renewals, pauses, failures, cancellations)."""

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    amount_yen = models.BigIntegerField(_("amount (yen)"), default=0)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription event")
        verbose_name_plural = _("subscription events")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["kind", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.occurred_at:%Y-%m-%d}"
