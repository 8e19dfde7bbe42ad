"""Background work of audiences: the hourly refresh of every dynamic segment, a refresh
soon after relevant domain events (debounced), and a refresh asked for one segment."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from kizuna.segments import services
from kizuna.segments.models import Segment

PENDING_KEY = "kizuna.segments.refresh-pending"
DEBOUNCE_SECONDS = 60


@db_periodic_task(crontab(minute="15"))
def hourly_refresh() -> None:
    services.segments_refresh_all()


@db_task()
def segments_refresh_soon() -> None:
    # Clear the flag first: an event arriving during this refresh schedules the next one.
    HUEY.get(PENDING_KEY)
    services.segments_refresh_all()


def request_refresh() -> bool:
    """Schedule one refresh of every dynamic segment DEBOUNCE_SECONDS from now unless one
    is already waiting: a burst of events costs one refresh. True when this call scheduled."""
    if HUEY.put_if_empty(PENDING_KEY, "1"):
        segments_refresh_soon.schedule(delay=DEBOUNCE_SECONDS)
        return True
    return False


@db_task()
def segment_refresh_task(segment_id: int) -> None:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is not None:
        services.segment_refresh(segment=segment)
