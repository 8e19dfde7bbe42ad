"""Schedules of accounts: task reminders every five minutes, and the service-level rule
re-applied each night at 03:30 (after the analytics scoring run has refreshed CLV and
P(alive)), in the worker's schedule time zone."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kizuna.accounts import services

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*/5"))
def task_reminders() -> None:
    sent = services.reminders_send()
    if sent:
        logger.info("accounts: %d task reminders sent", sent)


@db_periodic_task(crontab(hour="3", minute="30"))
def service_levels_nightly() -> None:
    result = services.service_levels_apply()
    logger.info(
        "accounts: %d high-touch customers (%d entered, %d left)",
        result.high,
        result.entered,
        result.left,
    )
