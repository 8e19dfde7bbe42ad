"""Background work of customer insight: the nightly scoring run and runs asked for from the
console or the API."""

from __future__ import annotations

from datetime import UTC, datetime

from huey.contrib.djhuey import db_periodic_task, db_task

from kizuna.analytics.models import RunStatus, RunTrigger, ScoringRun
from kizuna.core.timeutil import business_zone

NIGHTLY_HOUR = 3  # local time of the business (settings.TIME_ZONE)


def nightly(moment: datetime) -> bool:
    """Huey's schedule test: 03:00 in the business's time zone. Huey hands over naive UTC
    times (its default `utc=True`)."""
    local = moment.replace(tzinfo=UTC).astimezone(business_zone())
    return local.hour == NIGHTLY_HOUR and local.minute == 0


# The services load the models' fitting (scipy, about half a second) when a run is executed,
# not at every start of the worker (which imports every app's tasks before its first task).


@db_periodic_task(nightly)
def nightly_scoring() -> None:
    from kizuna.analytics import services

    services.scoring_run_now(trigger=RunTrigger.SCHEDULE)


@db_task()
def scoring_run_task(run_id: int) -> None:
    from kizuna.analytics import services

    run = ScoringRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is not None:
        services.scoring_run_execute(run=run)
