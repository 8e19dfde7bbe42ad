from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Source(models.Model):
    """Where tracked events come from (a website, an app, a server). Its write key is shown
    once; only the key's SHA-256 digest is stored."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    write_key_prefix = models.CharField(_("write key prefix"), max_length=16, unique=True)
    write_key_digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("source")
        verbose_name_plural = _("sources")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class InboxBatch(models.Model):
    """An accepted request's validated messages, stored before the response: the durable
    hand-over from the web process to the worker (which processes and marks it)."""

    # No database constraint: on SQLite the inbox is a database file of its own (routers.py).
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    received_at = models.DateTimeField(_("received at"))
    message_count = models.PositiveIntegerField(_("messages"))
    payload = models.TextField(_("payload"))  # a JSON array of normalised messages
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbox batch")
        verbose_name_plural = _("inbox batches")
        indexes = [
            models.Index(
                fields=["id"], name="tracking_inbox_pending", condition=Q(processed_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.message_count})"
