"""Worker tasks of journeys: run due steps (woken on commit when customers enter or an
awaited event arrives, and every minute as the sweep), and the daily date/inactivity
triggers at 00:05 JST. Several workers share the work: each claim skips rows another holds."""

from __future__ import annotations

import logging
import time

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, on_startup

from kizuna.journeys import services

logger = logging.getLogger(__name__)
BUDGET_SECONDS = 50.0


def run_due_now(budget: float = BUDGET_SECONDS, limit: int = services.BATCH) -> int:
    """Claim and run batches until nothing is due or the time budget is spent."""
    deadline = time.monotonic() + budget
    steps = 0
    while time.monotonic() < deadline:
        result = services.journeys_run_due(limit=limit)
        steps += result.steps
        if result.claimed < limit:
            break
    return steps


@db_task()
def run_due() -> int:
    return run_due_now()


@db_periodic_task(crontab(minute="*"))
def journeys_sweep() -> int:
    services.journeys_poll_stream()
    return run_due_now()


@db_periodic_task(crontab(hour="15", minute="5"))  # 00:05 JST (Huey's crontab runs in UTC)
def journeys_daily() -> dict[int, int]:
    return services.journeys_daily_triggers()


@on_startup()
def resume_on_start() -> None:
    """A worker that starts (after a crash, a deploy) picks up whatever fell due meanwhile."""
    run_due()
