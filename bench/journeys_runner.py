# ruff: noqa: S603, E501 (a bench starting local processes; embedded script text)
"""Journeys runner throughput on PostgreSQL: N customers (default 100,000) enrolled in a
5-step journey with waits (send -> wait -> award points -> wait -> exit), 2 worker processes
running the runner's claim loop (`kizuna.journeys.tasks.run_due_now`, what the Huey task
runs), one of them killed with SIGKILL mid-run and restarted. Reports steps/s (wall, the
whole timed window, and CPU-seconds per step in the workers), then checks from the database
that nothing was lost or repeated: every enrolment has exactly the step records its
position implies, one delivery per executed send, one ledger entry per executed award.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/journeys_runner.py \
        [--customers 100000] [--seconds 180] [--wait 20s]

The messages are queued in messaging (delivery rows, idempotency key from the step), not
sent: the SMTP side is measured by bench/messaging_send.py. Nothing here reaches the network.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from support import postgres_executor  # bench/support.py
from workdirs import bench_workdir  # bench/workdirs.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]

SETUP = """
import sys, time
import django
django.setup()
from django.db import transaction
from django.utils import timezone
from kizuna.customers.models import ConsentEntry, Customer
from kizuna.journeys import services as js
from kizuna.messaging import services
total, wait = int(sys.argv[1]), sys.argv[2]
services.channel_save(kind="email", name="bench", settings={"host": "127.0.0.1", "port": 9,
    "from_address": "news@kizuna.example", "from_name": "絆商店", "physical_address": "東京都渋谷区1-2-3"})
services.template_save(slug="hello", name="hello", channel_kind="email", body_format="html",
    variants={"ja": {"subject": "{{ customer.name }}様", "body": "<p>ようこそ</p>"}})
at = timezone.now()
for start in range(0, total, 10000):
    n = min(10000, total - start)
    made = Customer.objects.bulk_create([Customer(family_name="山田", given_name=f"{start + i}号",
        email=f"c{start + i}@example.jp") for i in range(n)], batch_size=2000)
    ConsentEntry.objects.bulk_create([ConsentEntry(customer=c, purpose="marketing", channel="email",
        status="granted", source="bench", recorded_at=at) for c in made], batch_size=2000)
graph = {"trigger": {"type": "event", "event": "customer.created"}, "start": "hello", "nodes": [
    {"id": "hello", "type": "send", "channel": "bench", "template": "hello", "next": "w1"},
    {"id": "w1", "type": "wait", "duration": wait, "next": "pts"},
    {"id": "pts", "type": "award_points", "points": 100, "next": "w2"},
    {"id": "w2", "type": "wait", "duration": wait, "next": "end"},
    {"id": "end", "type": "exit"}]}
journey = js.journey_save(data={"name": "bench", "graph": graph})
js.journey_publish(journey=journey)
journey.refresh_from_db()
ids = list(Customer.objects.order_by("id").values_list("pk", flat=True))
entered = 0
for start in range(0, len(ids), 5000):
    with transaction.atomic():
        entered += js.enrol_many(journey=journey,
            entrants=[js.Entrant(customer_id=i) for i in ids[start:start + 5000]])
print(entered)
"""

WORKER = """
import os, signal, sys, time
import django
django.setup()
from kizuna.journeys import services
until = time.monotonic() + float(sys.argv[1])
steps = 0
c0 = time.process_time()
stop = False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
while not stop and time.monotonic() < until:
    result = services.journeys_run_due(limit=500)
    steps += result.steps
    if result.claimed == 0:
        time.sleep(0.2)
    print(f"{steps} {time.process_time() - c0:.2f}", flush=True)
"""

STEPS_FOR = {  # (node, state) -> step records an enrolment there must have
    ("hello", "active"): 0,
    ("w1", "waiting"): 2,
    ("pts", "active"): 2,
    ("w2", "waiting"): 4,
    ("end", "completed"): 5,
}


def _worker(env: dict[str, str], seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(seconds)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _last(proc: subprocess.Popen[str]) -> tuple[int, float]:
    out = proc.stdout.read() if proc.stdout else ""
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        return 0, 0.0
    steps, cpu = lines[-1].split()
    return int(steps), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--wait", default="20s")
    args = parser.parse_args()
    workdir = bench_workdir("kz-bench-journeys-")
    executor = postgres_executor(workdir, settings="-c shared_buffers=256MB")
    executor.start()
    try:
        executor.wait_for_postgres()
        base = f"postgres://postgres@127.0.0.1:{executor.port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute('CREATE DATABASE "kizuna_bench"')
        url = f"{base}/kizuna_bench"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
        env.update(
            KIZUNA_DATA_DIR=str(workdir / "kz"),
            KIZUNA_DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="kizuna.settings.base",
            KIZUNA_LOG_LEVEL="WARNING",
        )
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", SETUP, str(args.customers), args.wait],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(
            f"setup (not timed): {out.stdout.split()[-1]} enrolled in {time.perf_counter() - t0:.0f} s"
        )
        print(f"load before: {os.getloadavg()}")

        start = time.perf_counter()
        a = _worker(env, args.seconds)
        b = _worker(env, args.seconds)
        time.sleep(args.seconds / 3)
        os.killpg(b.pid, signal.SIGKILL)  # mid-run, mid-batch most likely
        b.wait()
        killed_steps, killed_cpu = _last(b)
        print(
            f"worker B killed at {time.perf_counter() - start:.0f} s (its last report: {killed_steps} steps)"
        )
        b2 = _worker(env, args.seconds - args.seconds / 3)
        a.wait()
        b2.wait()
        wall = time.perf_counter() - start
        _a_steps, a_cpu = _last(a)
        _b2_steps, b2_cpu = _last(b2)
        print(f"load after: {os.getloadavg()}")
        with psycopg.connect(url, autocommit=True) as conn:
            total_steps = conn.execute("select count(*) from journeys_stepexecution").fetchone()[0]
            distinct = conn.execute(
                "select count(distinct attempt_key) from journeys_stepexecution").fetchone()[0]  # fmt: skip
            positions = conn.execute(
                "select e.node, e.state, count(*), "
                "sum(case when x.n is null then 0 else x.n end) from journeys_enrolment e "
                "left join (select enrolment_id, count(*) n from journeys_stepexecution "
                "group by enrolment_id) x on x.enrolment_id = e.id group by e.node, e.state"
            ).fetchall()
            sends = conn.execute(
                "select count(*) from journeys_stepexecution where kind = 'send'").fetchone()[0]  # fmt: skip
            deliveries = conn.execute("select count(*) from messaging_delivery").fetchone()[0]
            awards = conn.execute(
                "select count(*) from journeys_stepexecution where kind = 'award_points'").fetchone()[0]  # fmt: skip
            ledger = conn.execute(
                "select count(*) from loyalty_ledgerentry where idempotency_key like 'journey:%%'"
            ).fetchone()[0]
            first, last = conn.execute(
                "select min(executed_at), max(executed_at) from journeys_stepexecution"
            ).fetchone()
            per_worker = conn.execute(
                "select count(distinct worker) from journeys_stepexecution").fetchone()[0]  # fmt: skip
        print(f"steps recorded: {total_steps} in {wall:.1f} s wall = {total_steps / wall:.0f} steps/s "
              f"(2 workers; one killed and restarted); workers' CPU {a_cpu + b2_cpu:.1f} s "
              f"(+ the killed one's last report {killed_cpu:.1f} s)")  # fmt: skip
        cpu = a_cpu + b2_cpu + killed_cpu
        span = (last - first).total_seconds() if first and last else 0.0
        print(f"first to last step: {span:.1f} s = {total_steps / max(span, 0.001):.0f} steps/s "
              "(without the workers' start-up)")  # fmt: skip
        print(f"CPU per step in the workers: {1000 * cpu / max(1, total_steps):.2f} ms "
              f"(the database server's CPU is not included); worker processes seen: {per_worker}")  # fmt: skip
        ok = total_steps == distinct and sends == deliveries and awards == ledger
        for node, state, n, records in positions:
            expected = STEPS_FOR.get((node, state))
            good = expected is not None and records == expected * n
            ok = ok and good
            print(f"  {n:>7} enrolments at {node}/{state}: {records} step records "
                  f"({'as expected' if good else 'MISMATCH'})")  # fmt: skip
        print(
            f"  sends {sends} = deliveries {deliveries}; awards {awards} = ledger entries {ledger}"
        )
        print("nothing lost or repeated" if ok else "CHECK FAILED")
        sys.exit(0 if ok else 1)
    finally:
        executor.stop()


if __name__ == "__main__":
    main()
