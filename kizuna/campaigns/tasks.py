"""Worker tasks of campaigns: start a scheduled campaign, hand due recipients to messaging,
pick the A/B winner when the test window ends. Tasks take ids and call services; a minute
sweep is the safety net for wake-ups lost in a crash and for throttled or best-hour sends."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from kizuna.campaigns import services

logger = logging.getLogger(__name__)


@db_task()
def start_campaign(campaign_id: int) -> int:
    return services.campaign_start(campaign_id=campaign_id)


@db_task()
def dispatch_campaign(campaign_id: int) -> int:
    return services.campaign_dispatch(campaign_id=campaign_id)


@db_task()
def pick_winner(campaign_id: int) -> bool:
    return services.campaign_pick_winner(campaign_id=campaign_id) is not None


@db_periodic_task(crontab(minute="*"))
def campaigns_sweep() -> dict[str, list[int]]:
    """Start what is due, pick winners whose window ended, dispatch what is due (in this
    order, so a start or a winner is handed over in the same minute)."""
    due = services.campaigns_due()
    for campaign_id in due["start"]:
        services.campaign_start(campaign_id=campaign_id)
    for campaign_id in due["winner"]:
        services.campaign_pick_winner(campaign_id=campaign_id)
    for campaign_id in services.campaigns_due()["dispatch"]:
        services.campaign_dispatch(campaign_id=campaign_id)
    return due
