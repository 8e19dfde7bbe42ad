"""Crash safety with real processes: the `kizuna worker` is killed (SIGKILL) in the middle
of processing, restarted, and every accepted event ends up in the timeline exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

KIZUNA = [sys.executable, "-m", "kizuna"]
BATCHES, PER_BATCH, RETRIED = 30, 200, 5  # 6,000 distinct events; 5 batches sent twice

POSTER = """
import base64, json, sys
import django
django.setup()
from django.test import Client
key, batches, per_batch, retried = sys.argv[1], *map(int, sys.argv[2:5])
auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
client = Client(SERVER_NAME="localhost")
def batch(b):
    return {"batch": [
        {"type": "track", "userId": f"user-{(b * per_batch + i) % 300}", "event": "Viewed",
         "messageId": f"m-{b}-{i}", "properties": {"n": b * per_batch + i}}
        for i in range(per_batch)
    ]}
for b in [*range(batches), *range(retried)]:  # the first batches again: client retries
    r = client.post("/v1/batch", json.dumps(batch(b)), content_type="application/json",
                    HTTP_AUTHORIZATION=auth)
    assert r.status_code == 200, r.content
"""


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=20) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _wait(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_TRACKING_PROCESS_CHUNK="400",  # many small transactions to be killed in
        KIZUNA_TRACKING_PROCESS_CHUNK_MAX="400",  # (a backlog's chunks would grow)
    )
    subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
    created = subprocess.run(
        [*KIZUNA, "source", "create", "Shop"], env=env, check=True, capture_output=True, text=True
    )
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("kzw_")
    subprocess.run(
        [sys.executable, "-c", POSTER, key, str(BATCHES), str(PER_BATCH), str(RETRIED)],
        env=env,
        check=True,
    )
    db, inbox = tmp_path / "kizuna.sqlite3", tmp_path / "inbox.sqlite3"  # the inbox's own file
    events = "select count(*) from customers_event where type = 'Viewed'"
    assert _count(inbox, "select count(*) from tracking_inboxbatch") == BATCHES + RETRIED
    assert _count(db, "select count(*) from tracking_inboxbatch") == 0
    assert _count(db, events) == 0  # accepted, not yet processed: that is the worker's job

    total = BATCHES * PER_BATCH
    worker = subprocess.Popen(
        [*KIZUNA, "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert _wait(lambda: _count(db, events) > 0, 60)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    partial = _count(db, events)
    assert 0 < partial < total, partial  # killed part-way

    worker = subprocess.Popen(
        [*KIZUNA, "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pending = "select count(*) from tracking_inboxbatch where processed_at is null"
        assert _wait(lambda: _count(inbox, pending) == 0, 60)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert _count(db, events) == total
    assert (
        _count(db, "select count(distinct message_id) from customers_event where type = 'Viewed'")
        == total
    )
    assert (
        _count(
            db,
            "select count(distinct json_extract(properties, '$.n')) from customers_event "
            "where type = 'Viewed'",
        )
        == total
    )
    assert _count(db, "select count(*) from customers_customer") == 300  # one per userId
    assert _count(db, "select count(*) from customers_identity where kind = 'external'") == 300


def test_accepting_does_not_wait_for_the_main_database_write_lock(tmp_path: Path) -> None:
    """On SQLite the inbox is a file of its own: while another connection holds the main
    database's write lock (as the worker does while processing), requests are still
    accepted at once; the worker then processes them into the main database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
    created = subprocess.run(
        [*KIZUNA, "source", "create", "Shop"], env=env, check=True, capture_output=True, text=True
    )
    key = created.stdout.strip().splitlines()[-1]
    db, inbox = tmp_path / "kizuna.sqlite3", tmp_path / "inbox.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the main database's write lock, held
        holder.execute("UPDATE tracking_source SET name = 'Shop'")
        # 3 batches of 50; the server's busy timeout (20 s) would fail a waiting INSERT.
        subprocess.run(
            [sys.executable, "-c", POSTER, key, "3", "50", "0"], env=env, check=True, timeout=60
        )
        pending = "select sum(message_count) from tracking_inboxbatch where processed_at is null"
        assert _count(inbox, pending) == 150
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _count(db, "select count(*) from customers_event where type = 'Viewed'") == 0
    # Three chunks of one batch each: every batch is processed once (the marks are written
    # on a thread beside the processor; the next chunk starts after the last batch taken).
    drained = subprocess.run(
        [*KIZUNA, "shell", "-c", "from kizuna.tracking.tasks import drain; print(drain(chunk=50))"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert drained.stdout.strip().splitlines()[-1] == "150"
    viewed = "from customers_event where type = 'Viewed'"
    assert _count(db, f"select count(*) {viewed}") == 150
    assert _count(db, f"select count(distinct message_id) {viewed}") == 150
    assert _count(inbox, "select count(*) from tracking_inboxbatch where processed_at is null") == 0
