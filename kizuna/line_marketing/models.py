"""LINE marketing beyond push: audiences uploaded from segments, narrowcasts to them, and
rich menus linked per segment. The LINE channel (official account, token, host) is
messaging's `Channel`; ids LINE gives back are stored to refer to its objects later."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from kizuna.loyalty.models import Tier
from kizuna.messaging.models import Channel
from kizuna.segments.models import Segment


class LineAudience(models.Model):
    """A LINE audience group (user-id upload) built from a segment's following members."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(_("description"), max_length=120)
    audience_group_id = models.BigIntegerField(_("audience group ID"), unique=True)
    size = models.PositiveIntegerField(_("users uploaded"), default=0)
    # LINE's view of the group (GET /v2/bot/audienceGroup/{id}): IN_PROGRESS, READY, FAILED,
    # EXPIRED, ...; the count LINE matched. Refreshed on demand (`audience_refresh`).
    status = models.CharField(_("LINE status"), max_length=20, default="IN_PROGRESS")
    line_count = models.PositiveIntegerField(_("users LINE matched"), null=True, blank=True)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("LINE audience")
        verbose_name_plural = _("LINE audiences")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.description


class Narrowcast(models.Model):
    """One narrowcast request; its idempotency key is LINE's retry key, so a retried send
    is accepted once."""

    audience = models.ForeignKey(LineAudience, on_delete=models.PROTECT, related_name="sends")
    messages = models.JSONField(_("messages"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=120, unique=True)
    request_id = models.CharField(_("LINE request ID"), max_length=64, blank=True)
    # "sent" until LINE's progress API is asked; then its phase: waiting, sending,
    # succeeded or failed (`narrowcast_refresh`).
    status = models.CharField(_("status"), max_length=20, default="sent")
    target_count = models.PositiveIntegerField(_("targets"), null=True, blank=True)
    success_count = models.PositiveIntegerField(_("delivered"), null=True, blank=True)
    failure_count = models.PositiveIntegerField(_("failed"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("narrowcast")
        verbose_name_plural = _("narrowcasts")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.idempotency_key


class RichMenu(models.Model):
    """A rich menu created on LINE, optionally meant for one segment or one loyalty tier
    (e.g. a member menu), or the channel's default menu."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("name"), max_length=300)
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rich_menu_id = models.CharField(_("rich menu ID"), max_length=100, unique=True)
    is_default = models.BooleanField(_("default menu"), default=False)
    definition = models.JSONField(_("definition"))
    image_uploaded = models.BooleanField(_("image uploaded"), default=False)
    linked_users = models.PositiveIntegerField(_("users linked"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("rich menu")
        verbose_name_plural = _("rich menus")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class LoginChannel(models.Model):
    """The LINE Login channel used to link members' LINE accounts, beside the Messaging API
    channel of the same provider (LINE issues them as two channels)."""

    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, related_name="+")
    login_channel_id = models.CharField(_("LINE Login channel ID"), max_length=20)
    secret_encrypted = models.TextField(_("channel secret (encrypted)"))
    authorize_host = models.CharField(_("authorize host"), max_length=200, blank=True)
    api_host = models.CharField(_("API host"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("LINE Login channel")

    def __str__(self) -> str:
        return self.login_channel_id
