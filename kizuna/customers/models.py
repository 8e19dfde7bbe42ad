from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.core.dbfunctions import UTCDate
from kizuna.customers.choices import (
    PREFECTURE_CHOICES,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Gender,
    IdentityKind,
    LegalBasis,
    Locale,
    TraitType,
)


class Customer(models.Model):
    """One person the business has a relationship with: the customer 360's anchor."""

    family_name = models.CharField(_("family name"), max_length=100, blank=True)
    given_name = models.CharField(_("given name"), max_length=100, blank=True)
    family_name_kana = models.CharField(_("family name (kana)"), max_length=100, blank=True)
    given_name_kana = models.CharField(_("given name (kana)"), max_length=100, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True, db_index=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    gender = models.CharField(
        _("gender"), max_length=12, choices=Gender.choices, default=Gender.UNSPECIFIED
    )
    postal_code = models.CharField(_("postal code"), max_length=8, blank=True)
    prefecture = models.CharField(
        _("prefecture"), max_length=5, choices=PREFECTURE_CHOICES, blank=True, db_index=True
    )
    city = models.CharField(_("city"), max_length=100, blank=True)
    address_line = models.CharField(_("address"), max_length=200, blank=True)
    locale = models.CharField(_("language"), max_length=5, choices=Locale.choices, default="ja")
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Tokyo")
    traits = models.JSONField(_("traits"), default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_customers",
        verbose_name=_("merged into"),
        help_text=_("Set when this profile was merged into another one (the survivor)."),
    )
    first_seen_at = models.DateTimeField(_("first seen"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    # The UTC day of last_seen_at, indexed in its stead (sorting and ranges by last seen
    # start from it). Event ingestion rewrites first/last seen of every customer with new
    # events; with last_seen_at itself indexed, PostgreSQL could never make that a
    # heap-only update and wrote an entry in each of the table's indexes per rewrite (half
    # of that UPDATE's cost). The day changes at most once a day.
    last_seen_on = models.GeneratedField(
        expression=UTCDate("last_seen_at"),
        output_field=models.DateField(),
        db_persist=True,
        db_index=True,
        verbose_name=_("last seen (UTC day)"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        indexes = [models.Index(fields=["family_name_kana", "given_name_kana"])]

    def __str__(self) -> str:
        return self.display_name or f"#{self.pk}"

    @property
    def display_name(self) -> str:
        if self.locale == "en" and self.given_name:
            return f"{self.given_name} {self.family_name}".strip()
        return f"{self.family_name} {self.given_name}".strip()

    @property
    def kana_name(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}".strip()


class Identity(models.Model):
    """An identifier that points to one customer; unique per kind across the installation."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=12, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=255)
    source = models.CharField(_("source"), max_length=50, default="kizuna")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="identity_unique_kind_value")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ConsentEntry(models.Model):
    """Append-only consent ledger: the latest entry per (purpose, channel) is the state."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    status = models.CharField(_("status"), max_length=10, choices=ConsentStatus.choices)
    legal_basis = models.CharField(
        _("legal basis"), max_length=20, choices=LegalBasis.choices, default=LegalBasis.CONSENT
    )
    source = models.CharField(_("source"), max_length=50)
    notice_version = models.CharField(_("notice version"), max_length=50, blank=True)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), db_index=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("consent entry")
        verbose_name_plural = _("consent ledger")
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["customer", "purpose", "channel", "-recorded_at"])]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.channel}: {self.status}"


class TraitDefinition(models.Model):
    """Declares a custom trait: only declared keys with values of the declared type are stored."""

    key = models.SlugField(_("key"), max_length=64, unique=True)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=10, choices=TraitType.choices)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("trait definition")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    """The append-only event stream: each customer's timeline and the domain-event record."""

    message_id = models.CharField(_("message id"), max_length=100, unique=True)
    # No single-column indexes on type or customer: the composite indexes below start with
    # them, and every index costs each of the stream's inserts (ingestion, imports).
    type = models.CharField(_("type"), max_length=100)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=100, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    source = models.CharField(_("source"), max_length=50, default="kizuna")
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"]),
            models.Index(fields=["type", "-occurred_at"]),
            # Anonymous-only events, stitched to their customer when an identify links the
            # anonymous id (partial: events with a customer are not in it, so the stream's
            # usual inserts do not maintain it).
            models.Index(
                fields=["anonymous_id"],
                condition=Q(customer__isnull=True),
                name="event_anonymous_unlinked",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | ~Q(anonymous_id=""),
                name="event_has_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class CustomerMerge(models.Model):
    """One merge of a duplicate profile into a survivor, with the snapshot that undoes it."""

    survivor = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_survived")
    merged = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_absorbed")
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    snapshot = models.JSONField(_("snapshot"), default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    merged_at = models.DateTimeField(_("merged at"), auto_now_add=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(survivor=models.F("merged")), name="merge_distinct_customers"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.merged_id} → #{self.survivor_id}"
