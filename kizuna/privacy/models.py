"""Data-subject requests (export, erasure), the record of each erasure (without the data),
hashes of erased identifiers (so an erased person is not re-contacted) and versioned
purpose-of-use notices. See docs/privacy.md."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from kizuna.customers.choices import ConsentPurpose
from kizuna.customers.models import Customer


class RequestKind(models.TextChoices):
    EXPORT = "export", _("Export (access)")
    ERASE = "erase", _("Erasure")


class RequestStatus(models.TextChoices):
    OPEN = "open", _("Open")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")


class DataSubjectRequest(models.Model):
    """A customer's request to see (export) or erase their data, with a due date and a log."""

    kind = models.CharField(_("kind"), max_length=10, choices=RequestKind.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN
    )
    due_on = models.DateField(_("due on"))
    # Staff's note on how the request arrived (no personal data: it is scrubbed on erasure).
    note = models.CharField(_("note"), max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("completed by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("erase_customer", "Can erase a customer's personal data"),
            ("export_customer", "Can export a customer's personal data"),
        ]
        indexes = [models.Index(fields=["status", "due_on"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class RequestLog(models.Model):
    """One step of a request (created, exported, erased, rejected): no personal data."""

    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.CASCADE, related_name="log_entries"
    )
    at = models.DateTimeField(_("at"), auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(_("action"), max_length=30)
    message = models.CharField(_("message"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("request log entry")
        verbose_name_plural = _("request log entries")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.action}"


class ErasureRecord(models.Model):
    """That a customer was erased: which kinds and how many rows, when, by whom. It keeps
    the customer's id (the row stays, scrubbed, for the aggregates) and nothing personal."""

    customer_ref = models.PositiveBigIntegerField(_("customer id"), db_index=True)
    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pseudonym = models.CharField(_("pseudonym"), max_length=40)
    kinds = models.JSONField(_("kinds erased"), default=dict)  # {"customers.profile": 1, ...}
    customer_ids = models.JSONField(_("profiles erased"), default=list)  # with merged profiles
    erased_at = models.DateTimeField(_("erased at"), auto_now_add=True)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("erased by"),
    )

    class Meta:
        verbose_name = _("erasure record")
        verbose_name_plural = _("erasure records")
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return self.pseudonym


class ErasedIdentifier(models.Model):
    """A keyed hash (HMAC-SHA256) of an erased person's normalised email, phone or LINE user
    id: ingestion checks new profiles against it, so the person is never re-contacted."""

    kind = models.CharField(_("kind"), max_length=12)
    digest = models.CharField(_("digest"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("erased identifier")
        verbose_name_plural = _("erased identifiers")
        constraints = [
            models.UniqueConstraint(fields=["kind", "digest"], name="privacy_erased_id_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.digest[:12]}"


class PurposeNotice(models.Model):
    """One version of the purpose-of-use text shown to customers for a purpose. Versions are
    append-only; the newest effective one is current, and consent entries name the version
    they were given under (`ConsentEntry.notice_version`)."""

    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    version = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("text"))
    text_en = models.TextField(_("text (English)"), blank=True)
    effective_from = models.DateTimeField(_("effective from"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("purpose notice")
        verbose_name_plural = _("purpose notices")
        ordering = ["purpose", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version"], name="privacy_notice_version")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.purpose}-v{self.version}"


class EventAggregate(models.Model):
    """Counts of raw events kept after retention deleted them: per type and month."""

    type = models.CharField(_("type"), max_length=100)
    month = models.DateField(_("month"))  # the first day of the month (local time)
    count = models.PositiveBigIntegerField(_("events"), default=0)
    customers = models.PositiveBigIntegerField(_("customers"), default=0)

    class Meta:
        verbose_name = _("event aggregate")
        verbose_name_plural = _("event aggregates")
        ordering = ["-month", "type"]
        constraints = [
            models.UniqueConstraint(fields=["type", "month"], name="privacy_event_agg_unique")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.month:%Y-%m}: {self.count}"


class RetentionRun(models.Model):
    """One run of the retention policies: what each policy did (or would do, dry run), how
    long it took and which policies failed (the others still ran)."""

    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    dry_run = models.BooleanField(_("dry run"), default=False)
    trigger = models.CharField(_("trigger"), max_length=20, blank=True)  # worker, command
    # {"events": {"cutoff": …, "rows": n, "aggregates": n, "seconds": s}, ...}
    report = models.JSONField(_("report"), default=dict)
    errors = models.JSONField(_("errors"), default=dict, blank=True)  # {"events": "message"}
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)

    class Meta:
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M}"


class ConfirmationStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for confirmation")
    CONFIRMED = "confirmed", _("Confirmed")
    EXPIRED = "expired", _("Expired")


class EmailConfirmation(models.Model):
    """Double opt-in for marketing email (docs/privacy.md): a subscription that waits for
    the customer to confirm by the signed, expiring link sent to `email`. The consent ledger
    gets its granted entry only on confirmation (naming this request and both times); until
    then no marketing email is sent."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    email = models.EmailField(_("email"))
    source = models.CharField(_("source"), max_length=50)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=ConfirmationStatus.choices,
        default=ConfirmationStatus.PENDING,
    )
    notice_version = models.CharField(_("notice version"), max_length=50, blank=True)
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    delivery_id = models.PositiveBigIntegerField(_("confirmation message"), null=True, blank=True)
    consent_entry_id = models.PositiveBigIntegerField(_("consent entry"), null=True, blank=True)

    class Meta:
        verbose_name = _("email confirmation")
        verbose_name_plural = _("email confirmations")
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.status}"
