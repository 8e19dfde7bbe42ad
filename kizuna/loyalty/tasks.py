"""Schedules of the loyalty programme (Huey periodic tasks): on the 1st of each month
(00:10 in the worker's schedule time zone) points expire, tiers are re-evaluated and the
month's birthday coupons are issued. Each step is one idempotent service."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kizuna.loyalty import services

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(day="1", hour="0", minute="10"))
def loyalty_monthly() -> None:
    if services.programme_active() is None:
        return
    expired = services.points_expire()
    tiers = services.tiers_evaluate()
    coupons = services.birthday_coupons_issue()
    logger.info(
        "loyalty monthly: %d points expired on %d accounts, %d tier changes, %d birthday coupons",
        expired.points,
        expired.accounts,
        tiers.entries,
        coupons,
    )
