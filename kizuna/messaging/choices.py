from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class ChannelKind(TextChoices):
    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")
    WEBHOOK = "webhook", _("Webhook")


class Purpose(TextChoices):
    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class BodyFormat(TextChoices):
    MJML = "mjml", _("MJML (responsive email)")
    HTML = "html", _("HTML")
    TEXT = "text", _("Plain text")
    FLEX = "flex", _("LINE Flex message (JSON)")
    IMAGE = "image", _("LINE image (URL)")
    JSON = "json", _("JSON payload")


class Status(TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DEFERRED = "deferred", _("Deferred")
    REFUSED = "refused", _("Refused")
    BOUNCED = "bounced", _("Bounced")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Outcome unknown")
    DELIVERED = "delivered", _("Delivered")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    COMPLAINED = "complained", _("Complained")
    CANCELLED = "cancelled", _("Cancelled")
    MACHINE_OPENED = "machine_opened", _("Opened by a machine")
    MACHINE_CLICKED = "machine_clicked", _("Clicked by a machine")


class SuppressionReason(TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    COMPLAINT = "complaint", _("Complaint")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
    SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
    MANUAL = "manual", _("Added by staff")


class Frequency(TextChoices):
    NORMAL = "normal", _("As they come")
    WEEKLY = "weekly", _("At most once a week")
    MONTHLY = "monthly", _("At most once a month")


class Lane(TextChoices):
    """Which queue and workers send a delivery, chosen by its origin."""

    TRANSACTIONAL = "transactional", _("Transactional")
    JOURNEY = "journey", _("Journey")
    BULK = "bulk", _("Bulk")


class BreakerState(TextChoices):
    CLOSED = "closed", _("Closed (sending)")
    OPEN = "open", _("Open (backing off)")
    HALF_OPEN = "half_open", _("Half-open (probing)")


class BounceKind(TextChoices):
    HARD = "hard", _("Hard bounce")
    SOFT = "soft", _("Soft bounce")
    COMPLAINT = "complaint", _("Complaint")
    AUTO_REPLY = "auto_reply", _("Auto-reply")
    UNKNOWN = "unknown", _("Unmatched report")


class EngagementKind(TextChoices):
    OPEN = "open", _("Open")
    CLICK = "click", _("Click")
