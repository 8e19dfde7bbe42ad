from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Origin(TextChoices):
    """Where an inquiry came from."""

    CONSOLE = "console", _("Console")
    PORTAL = "portal", _("Contact form")
    LINE = "line", _("LINE")
    EMAIL = "email", _("Email")
    SURVEY = "survey", _("Survey follow-up")
    JOURNEY = "journey", _("Journey task")
    API = "api", _("API")


class InquiryStatus(TextChoices):
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending (waiting for the customer)")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


class Priority(TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class Direction(TextChoices):
    INBOUND = "inbound", _("From the customer")
    OUTBOUND = "outbound", _("Reply")
    NOTE = "note", _("Internal note")


ACTIVE_STATUSES = (InquiryStatus.OPEN, InquiryStatus.PENDING)
# Default SLA per priority, (first response, resolution) in minutes; a SlaPolicy row overrides.
DEFAULT_SLA_MINUTES: dict[str, tuple[int, int]] = {
    Priority.URGENT: (60, 8 * 60),
    Priority.HIGH: (4 * 60, 24 * 60),
    Priority.NORMAL: (8 * 60, 3 * 24 * 60),
    Priority.LOW: (24 * 60, 7 * 24 * 60),
}
