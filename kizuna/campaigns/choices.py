from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class CampaignStatus(TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    TESTING = "testing", _("Testing (waiting for the winner)")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Not started")


# Launched and not finished: the dispatcher and the winner pick look at these.
ACTIVE = (CampaignStatus.SENDING, CampaignStatus.TESTING)
EDITABLE = (CampaignStatus.DRAFT,)
FINAL = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED)


class ChannelMode(TextChoices):
    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")
    LINE_THEN_EMAIL = "line_email", _("LINE if linked, else email")


class ScheduleKind(TextChoices):
    NOW = "now", _("Now")
    AT = "at", _("At a time")
    BEST_HOUR = "best_hour", _("Each customer's best hour")


class Metric(TextChoices):
    OPEN = "open", _("Open rate")
    CLICK = "click", _("Click rate")
    CONVERSION = "conversion", _("Conversion rate")


class AttributionModel(TextChoices):
    LAST_TOUCH = "last_touch", _("Last touch")
    ANY_TOUCH = "any_touch", _("Any touch in the window")


class RecipientGroup(TextChoices):
    MAIN = "main", _("Audience")
    TEST = "test", _("Test")
    REMAINDER = "remainder", _("Rest (gets the winner)")
    HOLDOUT = "holdout", _("Holdout (control)")


class RecipientStatus(TextChoices):
    PENDING = "pending", _("Pending")
    WAITING = "waiting", _("Waiting for the winner")
    ENQUEUED = "enqueued", _("Handed to messaging")
    HELD_OUT = "held_out", _("Held out")
    CANCELLED = "cancelled", _("Cancelled")
