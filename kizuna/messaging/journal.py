"""The sending worker's hand-off journal: which claimed deliveries were handed to the
provider and whose outcome is not committed yet.

A worker claims a group of deliveries in one transaction (`lanes.send_group`) and records
their outcomes in the next. Just before handing each message to the provider (after it is
rendered, so a render that fails or a crash in it leaves the delivery safe to send again) it
appends the delivery id to its journal (one `write` to a file opened with O_APPEND: it survives the
process being killed); once the outcomes are committed the journal is emptied. When a worker
dies, recovery on the same host reads its journals: a claimed email delivery the journal
names may have reached the server and becomes `unknown` (never resent); one it does not name
was never handed over and is queued again. Journals are per host, process, thread and boot
(`/proc/sys/kernel/random/boot_id`): after a reboot, or for a claim of another host, there
is no journal to trust, and every claimed email delivery becomes `unknown`.

Files: `<KIZUNA_DATA_DIR>/sending/<host>/<pid>-<thread>-<boot>.journal`.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from pathlib import Path

from django.conf import settings


@functools.cache
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    except OSError:
        return "noboot"


def _directory(host: str) -> Path:
    return Path(settings.DATA_DIR) / "sending" / host.replace("/", "_")


class Journal:
    """This thread's journal for one batch (created empty, removed when the batch ends)."""

    def __init__(self) -> None:
        directory = _directory(socket.gethostname())
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{threading.get_ident()}-{boot_id()}.journal"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        self.handed: set[int] = set()  # what this journal names (since the last commit)

    def handing(self, delivery_id: int) -> None:
        """Written just before the provider is called (after the render): a delivery named
        here may have reached the provider."""
        os.write(self.fd, b"%d\n" % delivery_id)
        self.handed.add(delivery_id)

    def committed(self) -> None:
        os.ftruncate(self.fd, 0)
        self.handed.clear()

    def close(self) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)


def handed(host: str, pid: int) -> set[int] | None:
    """The deliveries a dead process on this host had handed over without a committed
    outcome; None when it left no journal of this boot (nothing to trust)."""
    files = list(_directory(host).glob(f"{pid}-*-{boot_id()}.journal"))
    if not files:
        return None
    ids: set[int] = set()
    for path in files:
        for line in path.read_bytes().splitlines():
            if line.strip().isdigit():
                ids.add(int(line))
    return ids


def discard(host: str, pid: int) -> None:
    """Remove a dead process's journals (once its claims are resolved)."""
    for path in _directory(host).glob(f"{pid}-*.journal"):
        path.unlink(missing_ok=True)
