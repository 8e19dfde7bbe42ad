"""Community schedules (Huey periodic task): every 10 minutes the reminders of events
starting within their reminder window are published (`community.event_reminder_due`);
messaging or a journey subscribed to that event sends them."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kizuna.community import services

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*/10"))
def community_event_reminders() -> None:
    published = services.reminders_publish()
    if published:
        logger.info("community: %d event reminders published", published)
