"""Worker tasks: turn accepted inbox batches into identities, profiles and timelines."""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections, router
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, on_startup

from kizuna.core.memory import collections_paused, settle_loaded_objects
from kizuna.core.timeutil import now
from kizuna.core.wal import checkpoints_beside, sync_to_disk
from kizuna.customers.models import Event
from kizuna.tracking.models import InboxBatch
from kizuna.tracking.services import (
    PENDING_WINDOW_BATCHES,
    inbox_mark_processed,
    inbox_process,
)

logger = logging.getLogger(__name__)
DRAIN_SECONDS = 50.0
KEEP_PROCESSED = timedelta(days=7)
WAKE_INTERVAL = 0.25  # a web process queues at most one drain per this many seconds
WAKE_MARGIN = 0.05


def drain(
    max_seconds: float = DRAIN_SECONDS,
    *,
    max_messages: int | None = None,
    chunk: int | None = None,
    look_again_at: float | None = None,
) -> int:
    """Process pending batches until none are left (or the time is up, or about
    `max_messages` are done); returns messages. `chunk`: messages per transaction (else
    the settings, as below). With the inbox in a database of its own, batches left in the
    main database's inbox table (stored before that) are drained first.

    With a backlog the transactions grow: after a chunk that took its full size the next
    may take twice as many messages, up to `TRACKING_PROCESS_CHUNK_MAX`; the first one
    short of its size (the backlog gone) brings it back. A backlog in sight when the drain
    starts (a worker starting after a pause) is taken from the size it would have grown to
    for it: the base doubled while the double still fits in what is pending.

    Much of a chunk's work is per customer seen in it (identities looked up, first/last
    seen updated) and per commit, so a backlog drains with less CPU per message, and the
    worker catches up sooner.

    `look_again_at` (a `time.time()`): the last look for pending batches is no earlier
    than this (a wake-up's drain: see `inbox_drain`)."""
    done = 0
    deadline = time.monotonic() + max_seconds
    base = chunk or int(settings.TRACKING_PROCESS_CHUNK)
    ceiling = chunk or max(base, int(getattr(settings, "TRACKING_PROCESS_CHUNK_MAX", base)))
    size = base
    inboxes = [router.db_for_write(InboxBatch)]
    main = router.db_for_write(Event)
    if inboxes[0] != main and _has_pending(main):
        inboxes.insert(0, main)
    # The main database's log is copied back on another core, not in each chunk's commit.
    with checkpoints_beside(main) as checkpoints:
        for inbox in inboxes:
            marker = _Marker(inbox, main) if inbox != main else None
            if size < ceiling:
                size = _size_for(_pending_in_sight(inbox), size, ceiling)
            try:
                while time.monotonic() < deadline and (max_messages is None or done < max_messages):
                    with collections_paused():
                        stats = inbox_process(
                            max_messages=size, inbox=inbox, skip=_Marker.in_flight(), mark=marker
                        )
                    size = min(2 * size, ceiling) if stats.messages >= size else base
                    if not stats.batches:
                        rest = (look_again_at or 0.0) - time.time()
                        if rest <= 0 or inbox != inboxes[-1]:
                            break
                        time.sleep(min(rest, WAKE_INTERVAL + WAKE_MARGIN))
                        look_again_at = None  # one more look, then done
                        continue
                    checkpoints.committed()
                    done += stats.messages
            finally:
                if marker is not None:
                    marker.stop()
    return done


class _Marker:
    """Marks processed batches of an inbox in a database of its own, on a thread of its
    own: on SQLite an UPDATE rewrites the whole row, the payload of ~1,000 messages with
    it, which would otherwise be written after every chunk on the processor's core. A
    mark lost in a crash leaves its batches pending: processing them again adds nothing.
    Until marked, the batches are left out of every drain of this process (another worker
    process could take them again: it would add nothing)."""

    _lock = threading.Lock()
    _unmarked: set[int] = set()  # handed to a marker, not marked yet (any drain of this process)

    @classmethod
    def in_flight(cls) -> frozenset[int]:
        with cls._lock:
            return frozenset(cls._unmarked)

    def __init__(self, inbox: str, main: str) -> None:
        self._inbox, self._main = inbox, main
        self._queue: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-marker", daemon=True)
        self._thread.start()

    def __call__(self, batch_ids: list[int]) -> None:
        with self._lock:
            self._unmarked.update(batch_ids)
        self._queue.put(batch_ids)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            while (batch_ids := self._queue.get()) is not None:
                try:
                    # The chunk's commit on disk before its marks (a power loss could keep
                    # the marks and lose the events); here, off the processor's path.
                    sync_to_disk(self._main)
                    inbox_mark_processed(batch_ids, inbox=self._inbox)
                except Exception:
                    logger.exception("inbox batches %s not marked processed", batch_ids)
                with self._lock:
                    self._unmarked.difference_update(batch_ids)
        finally:
            connections[self._inbox].close()


def _size_for(pending: int, size: int, ceiling: int) -> int:
    while size < ceiling and 2 * size <= pending:
        size = min(2 * size, ceiling)
    return size


def _pending_in_sight(database: str) -> int:
    """Messages pending in the oldest batches, as many batches as `inbox_process` looks at."""
    counts = (
        InboxBatch.objects.using(database)
        .filter(processed_at__isnull=True)
        .order_by("id")
        .values_list("message_count", flat=True)[:PENDING_WINDOW_BATCHES]
    )
    return sum(counts)


def _has_pending(database: str) -> bool:
    return InboxBatch.objects.using(database).filter(processed_at__isnull=True).exists()


@db_task()
def inbox_drain(woken_at: float | None = None) -> int:
    """A web process's wake-up (`views._wake_worker`, `woken_at` its `time.time()`). A web
    process skips the wake-ups of the requests it stores within WAKE_INTERVAL of its last
    one, so the drain looks once more WAKE_INTERVAL after the wake-up if it finds the inbox
    empty before then: a batch stored after the look would otherwise wait for the periodic
    drain (up to a minute). A drain starting later (a queue of wake-ups) does not wait."""
    if woken_at is None:
        return drain()
    return drain(look_again_at=woken_at + WAKE_INTERVAL + WAKE_MARGIN)


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
    """Everything alive after start-up (Django, the loaded apps) out of the cyclic garbage
    collector's reach, and its young collections rarer (`core.memory`): its collections
    otherwise walk those objects, and a chunk's thousands of rows, again and again while a
    chunk is processed (about 30 % of the worker's CPU per message)."""
    settle_loaded_objects()


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
