"""Crash safety with real processes: a `kizuna worker` sending a campaign to a real SMTP
server is killed (SIGKILL) while the server holds one message, restarted, and every message
has arrived exactly once — the one in flight at the crash is marked `unknown`, never resent."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller

from kizuna.messaging.tests.conftest import free_port
from kizuna.messaging.tests.processes import (
    KIZUNA,
    process_env,
    start_worker,
)
from kizuna.messaging.tests.processes import sqlite_count as _count
from kizuna.messaging.tests.processes import wait_until as _wait

TOTAL, HOLD_AT = 60, 20

SETUP = """
import sys
import django
django.setup()
from kizuna.customers import services as cs
from kizuna.messaging import services
port, total = int(sys.argv[1]), int(sys.argv[2])
channel = services.channel_save(kind="email", name="mail", settings={
    "host": "127.0.0.1", "port": port, "from_address": "news@kizuna.example",
    "from_name": "絆商店", "physical_address": "東京都渋谷区1-2-3"})
template = services.template_save(slug="n", name="n", channel_kind="email", body_format="html",
    variants={"ja": {"subject": "{{ customer.name }}様", "body": "<p>{{ customer.name }}様</p>"}})
ids = []
for i in range(total):
    c = cs.customer_create(
        data={"family_name": "山田", "given_name": f"{i}号", "email": f"c{i}@example.jp"})
    cs.consent_record(
        customer=c, purpose="marketing", channel="email", status="granted", source="t")
    ids.append(c.pk)
print(services.delivery_enqueue_many(source="campaign:crash", customer_ids=ids, channel=channel,
                                     template=template))
"""


class Holding:
    """Accepts every message; holds the HOLD_AT-th in DATA (already received) so the test can
    kill the worker at the most ambiguous moment: the server has it, the client has no 250."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self.holding = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.arrived.extend(envelope.rcpt_tos)
        if len(self.arrived) == HOLD_AT:
            self.holding.set()
            await asyncio.sleep(2)
        return "250 OK"


def test_worker_killed_mid_send_delivers_each_message_exactly_once(tmp_path: Path) -> None:
    handler = Holding()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        env = process_env(
            tmp_path,
            KIZUNA_SEND_CONCURRENCY="1",  # one sender: exactly one message in flight
            KIZUNA_SEND_GROUP="1",  # one message per claim
        )
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
        queued = subprocess.run(
            [sys.executable, "-c", SETUP, str(server.port), str(TOTAL)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        assert queued.stdout.strip().splitlines()[-1] == str(TOTAL)
        db = tmp_path / "kizuna.sqlite3"
        sent = "select count(*) from messaging_delivery where status = 'sent'"
        assert _count(db, sent) == 0 and handler.arrived == []  # queued, not yet sent

        worker = start_worker(env, workers=1)
        try:
            assert handler.holding.wait(60), "the worker never reached the held message"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        assert _count(db, sent) == HOLD_AT - 1  # killed part-way, one message in flight
        assert _count(db, "select count(*) from messaging_delivery where status='sending'") == 1

        worker = start_worker(env, workers=1)
        try:
            pending = (
                "select count(*) from messaging_delivery "
                "where status in ('queued', 'deferred', 'sending')"
            )
            assert _wait(lambda: _count(db, pending) == 0, 60)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    finally:
        server.stop()

    arrivals = Counter(handler.arrived)
    assert len(arrivals) == TOTAL  # every message arrived ...
    assert set(arrivals.values()) == {1}  # ... exactly once
    assert _count(db, sent) == TOTAL - 1
    unknown = "select count(*) from messaging_delivery where status = 'unknown'"
    assert _count(db, unknown) == 1  # the one in flight: recorded as such, not sent again
    assert (
        _count(
            db,
            "select count(*) from messaging_deliverystatus s join messaging_delivery d "
            "on d.id = s.delivery_id where d.status = 'unknown' and s.status = 'unknown' "
            "and s.reason like 'worker interrupted%'",
        )
        == 1
    )
    assert _count(db, "select count(*) from customers_event where type = 'email.sent'") == TOTAL - 1


GROUP = 8


def test_worker_killed_mid_group_resends_nothing_and_sends_the_rest(tmp_path: Path) -> None:
    """Bulk claims GROUP deliveries per transaction. Killed while the server holds message
    HOLD_AT (the 4th of the group 17-24): the 16 before are recorded `sent`; of the claimed
    group, the journal shows 17-20 were handed to the server (`unknown`, never resent) and
    21-24 were not (queued again and sent after the restart): each message arrives once."""
    handler = Holding()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        env = process_env(tmp_path, KIZUNA_SEND_CONCURRENCY="1", KIZUNA_SEND_GROUP=str(GROUP))
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
        queued = subprocess.run(
            [sys.executable, "-c", SETUP, str(server.port), str(TOTAL)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        assert queued.stdout.strip().splitlines()[-1] == str(TOTAL)
        db = tmp_path / "kizuna.sqlite3"
        sent = "select count(*) from messaging_delivery where status = 'sent'"
        worker = start_worker(env, workers=1)
        try:
            assert handler.holding.wait(60), "the worker never reached the held message"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        before_restart = list(handler.arrived)
        assert _count(db, sent) == 16  # two groups recorded
        assert _count(db, "select count(*) from messaging_delivery where status='sending'") == 8
        assert list((tmp_path / "sending").rglob("*.journal"))  # left by the killed worker

        worker = start_worker(env, workers=1)
        try:
            pending = (
                "select count(*) from messaging_delivery "
                "where status in ('queued', 'deferred', 'sending')"
            )
            assert _wait(lambda: _count(db, pending) == 0, 60)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    finally:
        server.stop()

    arrivals = Counter(handler.arrived)
    assert len(arrivals) == TOTAL and set(arrivals.values()) == {1}
    with sqlite3.connect(db) as conn:
        unknown = {
            row[0]
            for row in conn.execute(
                "select c.email from messaging_delivery d join customers_customer c "
                "on c.id = d.customer_id where d.status = 'unknown'"
            )
        }
        requeued = conn.execute(
            "select count(*) from messaging_deliverystatus "
            "where reason = 'worker interrupted before sending: queued again'"
        ).fetchone()[0]
    assert len(unknown) == 4 and unknown <= set(before_restart)  # handed over before the kill
    assert requeued == 4
    assert _count(db, sent) == TOTAL - 4
    assert not list((tmp_path / "sending").rglob("*.journal"))  # discarded after recovery
