"""WAL checkpoints on a thread beside a long writer (`core.wal`)."""

from __future__ import annotations

import os
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


@pytest.mark.django_db(transaction=True)
def test_sync_to_disk_syncs_the_log_then_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(wal.os, "fsync", recording_fsync)
    WorkerHeartbeat.objects.create(worker="w", seen_at=now())
    wal.sync_to_disk("default")
    if connection.vendor != "sqlite":  # PostgreSQL's commits are synced by the server
        assert synced == []
        return
    path = os.path.realpath(str(connection.settings_dict["NAME"]))
    assert synced == [f"{path}-wal", path]
