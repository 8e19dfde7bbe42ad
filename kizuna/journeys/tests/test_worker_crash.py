"""Crash safety with real processes: a `kizuna worker` running a journey (send, then award
points) for many customers is killed (SIGKILL) part-way, restarted, and every customer has
been sent exactly one message and awarded points exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

TOTAL = 600

SETUP = """
import sys
import django
django.setup()
from django.db import transaction
from kizuna.customers import services as cs
from kizuna.customers.models import Customer
from kizuna.journeys import services as js
from kizuna.messaging import services
port, total = int(sys.argv[1]), int(sys.argv[2])
channel = services.channel_save(kind="email", name="mail", settings={
    "host": "127.0.0.1", "port": port, "from_address": "news@kizuna.example",
    "from_name": "絆商店", "physical_address": "東京都渋谷区1-2-3"})
services.template_save(slug="hello", name="hello", channel_kind="email", body_format="html",
    variants={"ja": {"subject": "{{ customer.name }}様", "body": "<p>ようこそ</p>"}})
from django.utils import timezone
from kizuna.customers.models import ConsentEntry
Customer.objects.bulk_create([Customer(family_name="山田", given_name=f"{i}号",
    email=f"c{i}@example.jp") for i in range(total)])
ids = list(Customer.objects.order_by("id").values_list("pk", flat=True))
ConsentEntry.objects.bulk_create([ConsentEntry(customer_id=i, purpose="marketing",
    channel="email", status="granted", source="t", recorded_at=timezone.now()) for i in ids])
graph = {"trigger": {"type": "event", "event": "customer.created"}, "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send", "channel": "mail", "template": "hello", "next": "pts"},
        {"id": "pts", "type": "award_points", "points": 100, "next": "end"},
        {"id": "end", "type": "exit"}]}
journey = js.journey_save(data={"name": "welcome", "graph": graph})
js.journey_publish(journey=journey)
journey.refresh_from_db()
with transaction.atomic():
    print(js.enrol_many(journey=journey, entrants=[js.Entrant(customer_id=i) for i in ids]))
"""


class Sink:
    def __init__(self) -> None:
        self.arrived: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.arrived.extend(envelope.rcpt_tos)
        return "250 OK"


def test_worker_killed_mid_journey_loses_and_repeats_nothing(tmp_path: Path) -> None:
    handler = Sink()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        env = process_env(tmp_path)
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
        steps = "select count(*) from journeys_stepexecution"
        assert _count(db, steps) == 0

        worker = start_worker(env, workers=2)
        try:
            # killed after the first batches committed, while later ones are running
            assert _wait(lambda: _count(db, steps) > 0, 90), "the worker never ran a step"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        done_at_kill = _count(db, steps)
        assert 0 < done_at_kill < 3 * TOTAL  # part-way

        worker = start_worker(env, workers=2)
        try:
            finished = "select count(*) from journeys_enrolment where state = 'completed'"
            assert _wait(lambda: _count(db, finished) == TOTAL, 120)
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

    assert _count(db, steps) == 3 * TOTAL  # send, award, exit: each exactly once
    assert _count(db, "select count(distinct attempt_key) from journeys_stepexecution") == (
        3 * TOTAL
    )
    assert _count(db, "select count(*) from messaging_delivery") == TOTAL
    assert _count(db, "select count(distinct customer_id) from messaging_delivery") == TOTAL
    assert _count(db, "select count(*) from loyalty_ledgerentry where kind = 'earn'") == TOTAL
    assert _count(db, "select sum(points) from loyalty_ledgerentry") == 100 * TOTAL
    arrivals = Counter(handler.arrived)
    assert set(arrivals.values()) == {1}  # nobody got the message twice
    unknown = _count(db, "select count(*) from messaging_delivery where status = 'unknown'")
    assert len(arrivals) + unknown >= TOTAL and unknown <= 1
