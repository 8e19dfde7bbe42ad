"""The real worker path: events accepted by /v1/batch are processed by a running `kizuna
worker` process (all apps' subscribers, as shipped), whose bus events carry the stored
rows' ids, and loyalty awards the programme's engagement points for them, keyed by the
event row (once per message, a retried batch adding nothing)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

KIZUNA = [sys.executable, "-m", "kizuna"]

SETUP = """
import django
django.setup()
from kizuna.loyalty.models import Programme
Programme.objects.create(name="Kizuna Coffee", event_points={"Store Checked In": 5})
"""

POSTER = """
import base64, json, sys
import django
django.setup()
from django.test import Client
auth = "Basic " + base64.b64encode(f"{sys.argv[1]}:".encode()).decode()
batch = {"batch": [
    {"type": "identify", "userId": "u-7", "messageId": "i-7", "traits": {"email": "c@example.com"}},
    {"type": "track", "userId": "u-7", "event": "Store Checked In", "messageId": "c-1"},
    {"type": "track", "userId": "u-7", "event": "Store Checked In", "messageId": "c-2"},
    {"type": "track", "userId": "u-7", "event": "Product Viewed", "messageId": "v-1"},
]}
for _ in range(2):  # a retried batch
    r = Client(SERVER_NAME="localhost").post(
        "/v1/batch", json.dumps(batch), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert r.status_code == 200, r.content
"""


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=20) as conn:
        return list(conn.execute(sql).fetchall())


def _wait(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_ingested_check_ins_earn_points_through_the_worker_keyed_by_event_row(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
    subprocess.run([sys.executable, "-c", SETUP], env=env, check=True)
    created = subprocess.run(
        [*KIZUNA, "source", "create", "App"], env=env, check=True, capture_output=True, text=True
    )
    key = created.stdout.strip().splitlines()[-1]
    subprocess.run([sys.executable, "-c", POSTER, key], env=env, check=True)
    db = tmp_path / "kizuna.sqlite3"
    ledger = "select idempotency_key, points from loyalty_ledgerentry order by idempotency_key"
    assert _rows(db, ledger) == []  # accepted, not processed: the worker's job

    worker = subprocess.Popen(
        [*KIZUNA, "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert _wait(lambda: len(_rows(db, ledger)) >= 2, 90)
        pending = "select count(*) from tracking_inboxbatch where processed_at is null"
        assert _wait(lambda: _rows(tmp_path / "inbox.sqlite3", pending) == [(0,)], 60)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    check_ins = _rows(
        db,
        "select id from customers_event where type = 'Store Checked In' order by message_id",
    )
    assert len(check_ins) == 2  # c-1, c-2 once each
    assert _rows(db, ledger) == sorted((f"event:{row[0]}", 5) for row in check_ins)
    assert _rows(db, "select balance from loyalty_account") == [(10,)]
