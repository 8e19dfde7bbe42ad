"""Campaigns: a broadcast to an audience of segments, with variants (A/B and multivariate
tests), an optional holdout group, and one row per recipient saying what they get and when.

A campaign's messages are messaging deliveries whose `source` is `campaign:<id>:<variant>`;
the recipient rows are the campaign's own record of who was chosen, in which group and
segment, and when each was handed to messaging (exactly once: `status` moves from pending to
enqueued in the same transaction that creates the deliveries, whose idempotency keys make a
retry harmless)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.campaigns.choices import (
    AttributionModel,
    CampaignStatus,
    ChannelMode,
    Metric,
    RecipientGroup,
    RecipientStatus,
    ScheduleKind,
)
from kizuna.customers.models import Customer
from kizuna.messaging.models import Channel, Template
from kizuna.segments.models import Segment


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=150)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=CampaignStatus.choices,
        default=CampaignStatus.DRAFT,
        db_index=True,
    )
    include_segments = models.ManyToManyField(
        Segment, related_name="+", verbose_name=_("audience segments")
    )
    exclude_segments = models.ManyToManyField(
        Segment, related_name="+", blank=True, verbose_name=_("excluded segments")
    )
    channel_mode = models.CharField(
        _("channels"), max_length=12, choices=ChannelMode.choices, default=ChannelMode.EMAIL
    )
    email_channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("email channel"),
    )
    line_channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("LINE channel"),
    )
    schedule = models.CharField(
        _("schedule"), max_length=10, choices=ScheduleKind.choices, default=ScheduleKind.NOW
    )
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    default_hour = models.PositiveSmallIntegerField(
        _("hour for customers without opens"),
        default=10,
        help_text=_("Local hour used by best-hour scheduling when a customer never opened."),
    )
    throttle_per_minute = models.PositiveIntegerField(
        _("at most per minute"), null=True, blank=True
    )
    holdout_percent = models.PositiveSmallIntegerField(_("holdout %"), default=0)
    test_percent = models.PositiveSmallIntegerField(
        _("test %"),
        default=100,
        help_text=_("Share of the audience in the test; the rest gets the winner afterwards."),
    )
    test_hours = models.PositiveSmallIntegerField(_("test window (hours)"), default=4)
    metric = models.CharField(
        _("winner metric"), max_length=12, choices=Metric.choices, default=Metric.OPEN
    )
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=7)
    attribution_model = models.CharField(
        _("attribution"),
        max_length=12,
        choices=AttributionModel.choices,
        default=AttributionModel.LAST_TOUCH,
    )
    audience_size = models.PositiveIntegerField(_("audience"), default=0)
    winner = models.ForeignKey(
        "Variant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    winner_decision = models.JSONField(_("winner decision"), default=dict, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    paused_from = models.CharField(max_length=20, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    start_at = models.DateTimeField(_("starts at"), null=True, blank=True, db_index=True)
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    test_ends_at = models.DateTimeField(_("test ends at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        permissions = [("send_campaign", "Can schedule and approve campaigns")]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=50), name="campaign_holdout_lte_50"
            ),
            models.CheckConstraint(
                condition=Q(test_percent__gte=1) & Q(test_percent__lte=100),
                name="campaign_test_percent_1_100",
            ),
            models.CheckConstraint(
                condition=Q(default_hour__lte=23), name="campaign_default_hour_lte_23"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One version of the message. A subject given here replaces the template's subject (in
    every language) for this variant; `send_hour` sends it in that local hour instead."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    key = models.CharField(_("key"), max_length=8)
    name = models.CharField(_("name"), max_length=100, blank=True)
    email_template = models.ForeignKey(
        Template,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("email template"),
    )
    line_template = models.ForeignKey(
        Template,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("LINE template"),
    )
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    send_hour = models.PositiveSmallIntegerField(_("send hour (local)"), null=True, blank=True)
    weight = models.PositiveSmallIntegerField(_("split weight"), default=1)
    # The email template actually sent: the chosen one, or its copy with this subject.
    sent_email_template = models.ForeignKey(
        Template, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("variant")
        ordering = ["campaign", "key"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "key"], name="variant_unique_key"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="variant_weight_gte_1"),
            models.CheckConstraint(
                condition=Q(send_hour__isnull=True) | Q(send_hour__lte=23),
                name="variant_send_hour_lte_23",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.key}"


class Recipient(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    group = models.CharField(_("group"), max_length=10, choices=RecipientGroup.choices)
    variant = models.ForeignKey(
        Variant, on_delete=models.CASCADE, null=True, blank=True, related_name="recipients"
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    channel_kind = models.CharField(_("channel"), max_length=10)
    status = models.CharField(_("status"), max_length=10, choices=RecipientStatus.choices)
    scheduled_at = models.DateTimeField(_("scheduled at"), null=True, blank=True)
    enqueued_at = models.DateTimeField(_("handed over at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recipient")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer"], name="campaign_recipient_unique"
            )
        ]
        indexes = [models.Index(fields=["campaign", "status", "scheduled_at"])]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.customer_id}"
