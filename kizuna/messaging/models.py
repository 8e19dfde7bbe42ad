"""Channels, templates, deliveries (with an append-only status history), the suppression
list, LINE contacts and webhook receipts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.choices import Locale
from kizuna.customers.models import Customer
from kizuna.messaging.choices import (
    BodyFormat,
    BounceKind,
    BreakerState,
    ChannelKind,
    EngagementKind,
    Frequency,
    Lane,
    Purpose,
    Status,
    SuppressionReason,
)


class Channel(models.Model):
    """One way out: an SMTP sender, a LINE official account, or a webhook receiver.

    `settings` holds what may be shown (host, sender, selector); `credentials_encrypted` holds
    the secrets (SMTP password, DKIM key, LINE token and channel secret, webhook secret) as a
    Fernet token: they are never shown again once saved.
    """

    kind = models.CharField(_("kind"), max_length=10, choices=ChannelKind.choices)
    name = models.CharField(_("name"), max_length=100, unique=True)
    active = models.BooleanField(_("active"), default=True)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    credentials_encrypted = models.TextField(_("credentials (encrypted)"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Template(models.Model):
    """A message authored by staff, with one variant per locale."""

    slug = models.SlugField(_("key"), max_length=80, unique=True)
    name = models.CharField(_("name"), max_length=150)
    channel_kind = models.CharField(_("channel"), max_length=10, choices=ChannelKind.choices)
    purpose = models.CharField(
        _("purpose"), max_length=15, choices=Purpose.choices, default=Purpose.MARKETING
    )
    body_format = models.CharField(_("format"), max_length=10, choices=BodyFormat.choices)
    topic = models.CharField(_("topic"), max_length=50, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateVariant(models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="variants")
    locale = models.CharField(_("language"), max_length=5, choices=Locale.choices)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    body = models.TextField(_("body"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("template variant")
        constraints = [
            models.UniqueConstraint(fields=["template", "locale"], name="variant_unique_locale")
        ]

    def __str__(self) -> str:
        return f"{self.template_id}/{self.locale}"


class Delivery(models.Model):
    """One message to one customer on one channel: (source, customer, channel, variant) is
    unique through `idempotency_key`, so a retried enqueue never makes a second row."""

    idempotency_key = models.CharField(_("idempotency key"), max_length=120, unique=True)
    source = models.CharField(_("source"), max_length=120)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="deliveries")
    template = models.ForeignKey(
        Template, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    locale = models.CharField(_("language"), max_length=5, blank=True)
    variant = models.CharField(_("variant"), max_length=40, blank=True)
    purpose = models.CharField(_("purpose"), max_length=15, choices=Purpose.choices)
    topic = models.CharField(_("topic"), max_length=50, blank=True)
    lane = models.CharField(_("lane"), max_length=15, choices=Lane.choices, default=Lane.BULK)
    extra_context = models.JSONField(_("extra context"), default=dict, blank=True)
    to_address = models.CharField(_("to"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=15, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=255, blank=True, db_index=True)
    rendered = models.JSONField(_("rendered content"), default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "channel", "-sent_at"]),
            models.Index(fields=["status", "claimed_at"]),
            models.Index(fields=["lane", "status"]),
            models.Index(fields=["lane", "sent_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"


class DeliveryStatus(models.Model):
    """Append-only history of a delivery: what happened, when, and why."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="history")
    status = models.CharField(_("status"), max_length=15, choices=Status.choices)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("delivery status")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id}: {self.status}"


class Suppression(models.Model):
    """Addresses never to send to again. Hashed (SHA-256 of the normalised address) so the
    list survives a customer's erasure without keeping the address itself. Append-only."""

    channel_kind = models.CharField(_("channel"), max_length=10, choices=ChannelKind.choices)
    address_hash = models.CharField(_("address hash"), max_length=64)
    reason = models.CharField(_("reason"), max_length=15, choices=SuppressionReason.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppression list")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel_kind", "address_hash", "reason"], name="suppression_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_kind}:{self.address_hash[:12]} ({self.reason})"


class LineContact(models.Model):
    """A LINE user of one of our official accounts; following = we may push to them."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="line_contacts")
    line_user_id = models.CharField(_("LINE user ID"), max_length=64)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    following = models.BooleanField(_("following"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("LINE contact")
        constraints = [
            models.UniqueConstraint(fields=["channel", "line_user_id"], name="line_contact_unique")
        ]

    def __str__(self) -> str:
        return self.line_user_id


class LineLinkCode(models.Model):
    """A one-time code a customer sends to the LINE account (or the account-link nonce) to
    connect their LINE user id to their profile."""

    code = models.CharField(_("code"), max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("LINE link code")

    def __str__(self) -> str:
        return f"{self.code} → #{self.customer_id}"


class WebhookReceipt(models.Model):
    """Each inbound LINE webhook event once: a replayed `webhookEventId` is ignored."""

    event_id = models.CharField(max_length=100, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.event_id


class Preference(models.Model):
    """The customer's choices from the preference centre (consent itself is in the ledger)."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="message_preference"
    )
    topics = models.JSONField(_("topics"), default=list, blank=True)
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, default=Frequency.NORMAL
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message preference")
        constraints = [
            models.CheckConstraint(
                condition=Q(frequency__in=Frequency.values), name="preference_frequency_valid"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.customer_id}: {self.frequency}"


class Breaker(models.Model):
    """The circuit breaker of one channel, shared by every worker process: closed (sending),
    open (every delivery on the channel deferred until `retry_at`), half-open (one probe
    batch may try; its outcome closes or re-opens the breaker)."""

    channel = models.OneToOneField(
        Channel, on_delete=models.CASCADE, primary_key=True, related_name="breaker"
    )
    state = models.CharField(
        _("state"), max_length=10, choices=BreakerState.choices, default=BreakerState.CLOSED
    )
    failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    opened_count = models.PositiveIntegerField(_("times opened in a row"), default=0)
    retry_at = models.DateTimeField(_("retry at"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("circuit breaker")

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.state}"


class RateBucket(models.Model):
    """A token bucket shared by every worker (per channel, per recipient domain): `tokens`
    as of `refilled_at` (epoch seconds); refilled at the configured rate when taken from."""

    key = models.CharField(max_length=200, primary_key=True)
    tokens = models.FloatField(default=0)
    refilled_at = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.tokens:.1f}"


class SendHold(models.Model):
    """A pause: a whole lane (`lane:bulk`) or one source prefix (`source:campaign:12:`).
    Held deliveries stay queued, untouched, until the hold is lifted."""

    key = models.CharField(max_length=160, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.key


class Engagement(models.Model):
    """Every open and click as it came (repeats included), classified human or machine
    with the rule that decided (`kizuna.messaging.engagement`)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="engagements")
    kind = models.CharField(_("kind"), max_length=5, choices=EngagementKind.choices)
    machine = models.BooleanField(_("machine"), default=False)
    rule = models.CharField(_("rule"), max_length=40, blank=True)
    url = models.CharField(_("URL"), max_length=500, blank=True)
    method = models.CharField(max_length=8, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("open or click")
        indexes = [models.Index(fields=["delivery", "kind"])]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.kind} {'machine' if self.machine else 'human'}"


class BounceEvent(models.Model):
    """Every bounce, complaint and auto-reply report as received, normalised; `key` makes a
    replayed report (the same DSN, the same complaint webhook) a no-op. A report naming no
    delivery of ours is kept with its reason."""

    key = models.CharField(max_length=120, unique=True)
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=BounceKind.choices)
    status_code = models.CharField(_("status code"), max_length=20, blank=True)
    diagnostic = models.CharField(_("diagnostic"), max_length=300, blank=True)
    address_hash = models.CharField(max_length=64, blank=True, db_index=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    source = models.CharField(_("source"), max_length=20, blank=True)
    received_at = models.DateTimeField(_("received at"), db_index=True)

    class Meta:
        verbose_name = _("bounce or complaint")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.status_code}"
