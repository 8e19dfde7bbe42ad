from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class JourneyStatus(TextChoices):
    DRAFT = "draft", _("Draft")
    LIVE = "live", _("Live")
    PAUSED = "paused", _("Paused")
    ARCHIVED = "archived", _("Archived")


class EnrolmentState(TextChoices):
    ACTIVE = "active", _("Active")  # due to run its current node at next_due_at
    WAITING = "waiting", _("Waiting")  # inside a wait node until next_due_at (or an event)
    HOLDOUT = "holdout", _("Holdout")  # held out: no steps, only the goal is watched
    COMPLETED = "completed", _("Completed")  # reached an exit node or the end of a path
    CONVERTED = "converted", _("Converted")  # reached the goal
    EXITED = "exited", _("Exited")  # left early (node removed, journey archived, failure)


OPEN_STATES = (EnrolmentState.ACTIVE, EnrolmentState.WAITING)
