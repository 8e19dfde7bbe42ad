"""Worker tasks: turn accepted inbox batches into identities, profiles and timelines."""

from __future__ import annotations

import gc
import time
from datetime import timedelta

from django.db import router
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, on_startup

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.tracking.models import InboxBatch
from kizuna.tracking.services import inbox_process

DRAIN_SECONDS = 50.0
KEEP_PROCESSED = timedelta(days=7)


def drain(max_seconds: float = DRAIN_SECONDS) -> int:
    """Process pending batches until none are left (or the time is up); returns messages.
    With the inbox in a database of its own, batches left in the main database's inbox
    table (stored before that) are drained first."""
    done = 0
    deadline = time.monotonic() + max_seconds
    inboxes = [router.db_for_write(InboxBatch)]
    main = router.db_for_write(Event)
    if inboxes[0] != main and _has_pending(main):
        inboxes.insert(0, main)
    for inbox in inboxes:
        while time.monotonic() < deadline:
            stats = inbox_process(inbox=inbox)
            if not stats.batches:
                break
            done += stats.messages
    return done


def _has_pending(database: str) -> bool:
    return InboxBatch.objects.using(database).filter(processed_at__isnull=True).exists()


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
    deleted = 0
    for database in {router.db_for_write(InboxBatch), router.db_for_write(Event)}:
        old = InboxBatch.objects.using(database).filter(processed_at__lt=now() - KEEP_PROCESSED)
        deleted += old.delete()[0]
    return deleted


def freeze_loaded_objects() -> None:
    """Move everything alive after start-up (Django, the loaded apps) out of the cyclic
    garbage collector's reach: its full collections otherwise walk those objects again and
    again while a chunk of thousands of messages is processed (about 30 % of the worker's
    CPU per message). The objects live as long as the process anyway."""
    gc.collect()
    gc.freeze()


@on_startup()
def freeze_on_start() -> None:
    freeze_loaded_objects()


@on_startup()
def wake_on_start() -> None:
    """A worker (re)starting queues a drain when batches are pending: after a crash the
    interrupted batch (rolled back, still pending) is processed again right away."""
    main = router.db_for_write(Event)
    if _has_pending(router.db_for_write(InboxBatch)) or _has_pending(main):
        inbox_drain()
