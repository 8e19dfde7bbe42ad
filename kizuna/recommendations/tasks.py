"""Background work of recommendations: the nightly training and runs asked for from the
console, the API or the command line.

The services (NumPy, SciPy) are imported when a training runs: every worker imports the task
modules at start, and most never train (about 0.2 s of start-up, and the memory)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from huey.contrib.djhuey import db_periodic_task, db_task

from kizuna.recommendations.models import RunStatus, RunTrigger, TrainingRun

NIGHTLY_HOUR = 4  # local time of the business (after the 03:00 scoring run)


def nightly(moment: datetime) -> bool:
    """Huey's schedule test: 04:00 in the business's time zone (Huey passes naive UTC)."""
    local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    return local.hour == NIGHTLY_HOUR and local.minute == 0


@db_periodic_task(nightly)
def nightly_training() -> None:
    from kizuna.recommendations import services

    services.training_run_now(trigger=RunTrigger.SCHEDULE)


@db_task()
def training_run_task(run_id: int) -> None:
    run = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is not None:
        from kizuna.recommendations import services

        services.training_run_execute(run=run)
