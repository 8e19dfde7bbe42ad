"""Daily schedule of subscriptions: at 08:00 (the worker's schedule time zone), record
`subscription.renewing_soon` for the subscriptions that renew in
KIZUNA_SUBSCRIPTION_NOTICE_DAYS days (default 3), for journeys to act on."""

from __future__ import annotations

import logging

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kizuna.subscriptions import services

logger = logging.getLogger(__name__)


def notice_days() -> int:
    return int(getattr(settings, "KIZUNA_SUBSCRIPTION_NOTICE_DAYS", 3))


@db_periodic_task(crontab(hour="8", minute="0"))
def subscriptions_daily() -> None:
    notices = services.renewing_soon_notify(days=notice_days())
    logger.info("subscriptions daily: %d renewing-soon notices", notices)
