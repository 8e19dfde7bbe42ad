"""SQLite write-ahead-log checkpoints on a thread of their own while a long writer runs.

In WAL mode the connection whose commit takes the log past 1,000 pages copies the log back
into the database file (and syncs both) inside that commit. A writer committing chunk after
chunk (the tracking worker) would pay for that copy in every commit, on its own core. While
`checkpoints_beside(alias)` is open, that connection's automatic checkpoints are off and a
thread with a connection of its own checkpoints (PASSIVE: it never waits for, nor blocks,
readers or writers) whenever the writer calls `committed()`, and at least every
`INTERVAL` seconds. The sqlite3 module lets go of the GIL while SQLite works, so the copy
runs on the other core. Durability is unchanged: a commit is in the log either way.
Other connections keep their automatic checkpoints; on PostgreSQL this does nothing.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)
INTERVAL = 1.0
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, given back when the writer is done


class Checkpointer:
    """The thread; `committed()` asks it for a checkpoint now."""

    def __init__(self, path: str, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._wanted = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self.last_result: tuple[int, int, int] = (0, 0, 0)  # busy, log frames, frames copied
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def committed(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, timeout=self._timeout, check_same_thread=True)
        except sqlite3.Error:
            logger.exception("WAL checkpointer could not open %s", self._path)
            return
        try:
            while True:
                self._wanted.wait(INTERVAL)
                self._wanted.clear()
                try:
                    row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    busy, log_frames, copied = row
                    self.last_result = (int(busy), int(log_frames), int(copied))
                    self.checkpoints += 1
                except sqlite3.Error as error:
                    # Busy with another checkpointer, say: the next round catches up.
                    logger.debug("WAL checkpoint skipped: %s", error)
                if self._stopping:
                    return
        finally:
            db.close()


class _Nothing:
    checkpoints = 0

    def committed(self) -> None:
        pass


@contextmanager
def checkpoints_beside(alias: str) -> Iterator[Checkpointer | _Nothing]:
    """While open, database `alias` (if SQLite in WAL mode, not in memory) is checkpointed
    by a thread beside this one instead of inside this connection's commits."""
    connection: Any = connections[alias]
    path = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or connection.is_in_memory_db() or path.startswith("file:"):
        yield _Nothing()
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
            yield _Nothing()
            return
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    timeout = float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5))
    checkpointer = Checkpointer(path, timeout)
    checkpointer.start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
        if connection.connection is not None:  # not closed meanwhile (a new one has the default)
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")


def sync_to_disk(alias: str) -> None:
    """Database `alias` (SQLite) on disk up to its last commit: its log and its file synced
    (`fsync`), from any thread. With `synchronous=NORMAL` a commit is in the operating
    system's cache until a checkpoint syncs it; a checkpoint that moved frames back into the
    file syncs the file before the log is reused. Elsewhere (PostgreSQL commits synced, an
    in-memory database) nothing to do."""
    connection: Any = connections[alias]
    path = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or connection.is_in_memory_db() or path.startswith("file:"):
        return
    for name in (f"{path}-wal", path):
        try:
            descriptor = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
