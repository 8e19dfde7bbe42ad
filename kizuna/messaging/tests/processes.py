"""Helpers for tests that run real `kizuna` processes (a worker killed mid-run and restarted)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

KIZUNA = [sys.executable, "-m", "kizuna"]


def process_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without kizuna's own settings, pointed at `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_QUIET_HOURS="off",
        **extra,
    )
    return env


def sqlite_count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def start_worker(env: dict[str, str], *, workers: int) -> subprocess.Popen[bytes]:
    """`kizuna worker` in its own session, so the test can kill it with its children."""
    return subprocess.Popen(
        [*KIZUNA, "worker", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
