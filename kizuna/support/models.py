"""Support inquiries (tickets) with their message thread and attachments, SLA policies,
canned answers, and the FAQ knowledge base."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.choices import Locale
from kizuna.customers.models import Customer
from kizuna.support.choices import Direction, InquiryStatus, Origin, Priority


class SlaPolicy(models.Model):
    """How soon an inquiry of one priority must get its first reply and be resolved."""

    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(_("first response within (minutes)"))
    resolution_minutes = models.PositiveIntegerField(_("resolution within (minutes)"))

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(first_response_minutes__gt=0)
                & Q(resolution_minutes__gte=models.F("first_response_minutes")),
                name="sla_minutes_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.priority}: {self.first_response_minutes}/{self.resolution_minutes} min"


class Inquiry(models.Model):
    """One support case: a known customer or an anonymous contact, its status, priority,
    assignee and SLA due times (fixed when it is opened or its priority changes)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="inquiries"
    )
    contact_name = models.CharField(_("contact name"), max_length=150, blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_line_user_id = models.CharField(_("LINE user ID"), max_length=64, blank=True)
    line_channel_id = models.PositiveIntegerField(_("LINE channel"), null=True, blank=True)
    origin = models.CharField(_("origin"), max_length=10, choices=Origin.choices)
    subject = models.CharField(_("subject"), max_length=200)
    locale = models.CharField(_("language"), max_length=5, choices=Locale.choices, default="ja")
    status = models.CharField(
        _("status"), max_length=10, choices=InquiryStatus.choices, default=InquiryStatus.OPEN
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_inquiries",
        verbose_name=_("assignee"),
    )
    # Threads inbound email replies ("support+<token>@..." or "[#<token>]" in the subject).
    reply_token = models.CharField(_("reference"), max_length=20, unique=True)
    # What opened it, for intake that may be retried (a LINE event, a survey answer, a journey
    # step): one inquiry per source_ref.
    source_ref = models.CharField(max_length=120, null=True, blank=True, unique=True)
    first_response_due = models.DateTimeField(_("first response due"))
    resolution_due = models.DateTimeField(_("resolution due"))
    first_responded_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("opened at"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("inquiry")
        verbose_name_plural = _("inquiries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "resolution_due"]),
            models.Index(fields=["customer", "status"]),
            models.Index(fields=["contact_line_user_id", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InquiryStatus.values), name="inquiry_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__in=Priority.values), name="inquiry_priority_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class Message(models.Model):
    """One entry of an inquiry's thread: from the customer, a reply, or an internal note.
    Append-only. A reply carries the idempotency key of its send, and the delivery made."""

    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField(_("message"))
    auto = models.BooleanField(_("answered by the FAQ assistant"), default=False)
    faq_article = models.ForeignKey(
        "FaqArticle", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    # The Message-ID of an inbound email, for threading the next one by In-Reply-To.
    email_message_id = models.CharField(max_length=250, blank=True, db_index=True)
    delivery_id = models.PositiveIntegerField(_("delivery"), null=True, blank=True)
    created_at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("inquiry message")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(direction__in=Direction.values), name="support_message_direction"
            )
        ]

    def __str__(self) -> str:
        return f"{self.inquiry_id}/{self.direction}"


class Attachment(models.Model):
    """A file that came with (or was added to) a message, stored in the database; its size
    is limited by KIZUNA_SUPPORT_MAX_ATTACHMENT_BYTES."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    data = models.BinaryField()

    class Meta:
        verbose_name = _("attachment")

    def __str__(self) -> str:
        return self.filename


class CannedAnswer(models.Model):
    """A ready reply staff insert into the reply box, in Japanese and English."""

    title = models.CharField(_("title"), max_length=150, unique=True)
    body_ja = models.TextField(_("text (Japanese)"))
    body_en = models.TextField(_("text (English)"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("canned answer")
        verbose_name_plural = _("canned answers")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def body_for(self, locale: str) -> str:
        return self.body_en if locale == "en" and self.body_en else self.body_ja


class FaqArticle(models.Model):
    """One knowledge-base article in one language; `key` groups the ja and en versions."""

    key = models.SlugField(_("key"), max_length=80)
    locale = models.CharField(_("language"), max_length=5, choices=Locale.choices)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("answer"))
    tags = models.JSONField(_("tags"), default=list, blank=True)
    published = models.BooleanField(_("published"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("FAQ article")
        verbose_name_plural = _("FAQ articles")
        ordering = ["key", "locale"]
        constraints = [
            models.UniqueConstraint(fields=["key", "locale"], name="faq_key_locale_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key}/{self.locale}: {self.title}"
