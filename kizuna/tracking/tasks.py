"""Worker tasks: turn accepted inbox batches into identities, profiles and timelines."""

from __future__ import annotations

import time
from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, on_startup

from kizuna.core.timeutil import now
from kizuna.tracking.models import InboxBatch
from kizuna.tracking.services import inbox_process

DRAIN_SECONDS = 50.0
KEEP_PROCESSED = timedelta(days=7)


def drain(max_seconds: float = DRAIN_SECONDS) -> int:
    """Process pending batches until none are left (or the time is up); returns messages."""
    done = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        stats = inbox_process()
        if not stats.batches:
            break
        done += stats.messages
    return done


@db_task()
def inbox_drain() -> int:
    return drain()


@db_periodic_task(crontab(minute="*"))
def inbox_drain_periodic() -> int:
    """The safety net: batches whose wake-up was lost (a web process died right after
    storing them) are processed within a minute."""
    return drain()


@db_periodic_task(crontab(minute="17", hour="*"))
def inbox_prune() -> int:
    deleted, _rows = InboxBatch.objects.filter(processed_at__lt=now() - KEEP_PROCESSED).delete()
    return deleted


@on_startup()
def wake_on_start() -> None:
    """A worker (re)starting queues a drain when batches are pending: after a crash the
    interrupted batch (rolled back, still pending) is processed again right away."""
    if InboxBatch.objects.filter(processed_at__isnull=True).exists():
        inbox_drain()
