"""WAL checkpoints on a thread beside a long writer (`core.wal`)."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from kizuna.core import wal
from kizuna.core.models import WorkerHeartbeat
from kizuna.core.timeutil import now
from kizuna.core.wal import checkpoints_beside


def _autocheckpoint() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_log_is_copied_back_by_the_thread_and_the_default_given_back() -> None:
    if connection.vendor != "sqlite":
        with checkpoints_beside("default") as checkpoints:  # nothing to do on PostgreSQL
            checkpoints.committed()
        assert checkpoints.checkpoints == 0
        return
    assert _autocheckpoint() == wal.AUTOCHECKPOINT_PAGES
    with checkpoints_beside("default") as checkpoints:
        assert _autocheckpoint() == 0  # this connection's commits no longer checkpoint
        with transaction.atomic():
            for n in range(300):
                WorkerHeartbeat.objects.create(worker=f"worker {n} " + "x" * 150, seen_at=now())
        checkpoints.committed()
        deadline = time.monotonic() + 10
        while checkpoints.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpoints.checkpoints >= 1
    assert isinstance(checkpoints, wal.Checkpointer)
    busy, log_frames, copied = checkpoints.last_result
    assert busy == 0 and log_frames > 0 and copied == log_frames  # the whole log copied back
    assert _autocheckpoint() == wal.AUTOCHECKPOINT_PAGES


def _synchronous() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_durable_commits_sync_each_commit_and_give_the_level_back() -> None:
    if connection.vendor != "sqlite":  # nothing to change on PostgreSQL
        with wal.durable_commits("default"):
            WorkerHeartbeat.objects.create(worker="w", seen_at=now())
        assert WorkerHeartbeat.objects.count() == 1
        return
    assert _synchronous() == 1  # NORMAL, the setting's
    with wal.durable_commits("default"):
        assert _synchronous() == 2  # FULL
        WorkerHeartbeat.objects.create(worker="w", seen_at=now())
    assert _synchronous() == 1
    with transaction.atomic(), wal.durable_commits("default"):  # SQLite refuses it in one
        assert _synchronous() == 1
