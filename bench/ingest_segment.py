# ruff: noqa: S603, S607, S103, E501 (a bench starting local processes; embedded script text)
"""Sustained ingestion through /v1/batch with the official Segment Python SDK.

    .venv/bin/python bench/ingest_segment.py [--db sqlite|postgresql] [--events 200000]
        [--subscribers all|own] [--gunicorn "-k gthread -w 1 --threads 4"]
        [--upload-size 1000] [--sdk-threads 2] [--clients 1] [--chunk 10000]

Starts, in a fresh data directory: the database (PostgreSQL through pytest-postgresql's
executor when asked), gunicorn (`kizuna.wsgi`, which sends /v1/ through the lean ingest
handler) and one `kizuna worker`; sends the events with `segment.analytics.Client`; prints
events/s accepted (SDK flushed, every request 200) and processed (every inbox batch
processed: all events in the timeline), checks zero loss and zero duplicates, and measures
the raw bulk-insert rate of the same event rows into the same database for the ratio.

`--subscribers own` runs the worker with the bus's after-commit subscribers of other apps
removed (the tracking code path alone); `all` (the default) is the installation as shipped.
Progress is polled with one plain database connection (no Django process per poll).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(workdir: Path):  # type: ignore[no-untyped-def]
    try:
        from pytest_postgresql.executors.proc import PostgreSQLExecutor
    except ImportError:  # pytest-postgresql before 7
        from pytest_postgresql.executor import PostgreSQLExecutor  # type: ignore[no-redef]

    port = free_port()
    executor = PostgreSQLExecutor(
        executable=str(ROOT / "tests" / "support" / "pg_ctl"),
        host="127.0.0.1",
        port=port,
        user="postgres",
        password="",
        options="",
        dbname="kizuna",
        datadir=str(workdir / "pg"),
        unixsocketdir=str(workdir),
        logfile=str(workdir / "pg.log"),
        startparams="-w -o '-c fsync=on -c synchronous_commit=on'",
        postgres_options="",
    )
    executor.start()
    executor.wait_for_postgres()
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE kizuna",
        ],
        check=True,
        capture_output=True,
    )
    return executor, f"postgresql://postgres@127.0.0.1:{port}/kizuna"


def sql(env: dict[str, str], code: str) -> str:
    script = "import django; django.setup()\n" + code
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


OWN_WORKER = """
import sys, django
django.setup()
from django.core.management import call_command
from kizuna.core import events
events._subscribers.clear()  # other apps' after-commit reactions (in-transaction ones stay)
call_command("run_huey", workers=1)
"""


def pending_counter(args: argparse.Namespace, env: dict[str, str], work: Path):  # type: ignore[no-untyped-def]
    """A function returning the number of unprocessed inbox messages (one plain connection)."""
    query = (
        "SELECT COALESCE(SUM(message_count), 0) FROM tracking_inboxbatch WHERE processed_at IS NULL"
    )
    if args.db == "postgresql":
        import psycopg

        conn = psycopg.connect(env["KIZUNA_DATABASE_URL"], autocommit=True)
    else:
        import sqlite3

        conn = sqlite3.connect(str(work / "kizuna.sqlite3"), timeout=30)

    def pending() -> int:
        return int(conn.execute(query).fetchone()[0])

    return pending, conn


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its live children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(c) for c in children)
    return total


def send_events(args: argparse.Namespace, key: str, host: str, part: int, results) -> None:  # type: ignore[no-untyped-def]
    """One SDK client process sending its share of the events (every `clients`-th one)."""
    from segment.analytics import Client

    failures: list[str] = []
    client = Client(
        key,
        host=host,
        upload_size=args.upload_size,
        max_queue_size=args.events + 10,
        thread=args.sdk_threads,
        on_error=lambda e, batch: failures.append(repr(e)),
    )
    started = time.perf_counter()
    for i in range(part, args.events, args.clients):
        client.track(
            f"user-{i % args.users}",
            "Product Viewed",
            {"sku": f"SKU-{i % 500}", "price": 1200, "n": i},
            message_id=f"bench-{i}",
        )
    enqueued = time.perf_counter() - started
    client.flush()
    client.shutdown()
    results.put({"enqueued": enqueued, "failures": failures, "cpu": time.process_time()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--subscribers", choices=["all", "own"], default="all")
    parser.add_argument("--gunicorn", default="-w 2", help="gunicorn worker options")
    parser.add_argument("--upload-size", type=int, default=1000)
    parser.add_argument("--sdk-threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1, help="SDK client processes")
    parser.add_argument(
        "--chunk", type=int, default=10_000, help="messages per processing transaction"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kz-bench-ingest-"))
    os.chmod(work, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(work),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_TRACKING_PROCESS_CHUNK=str(args.chunk),
        KIZUNA_TRACKING_RATE="100000/m",
        KIZUNA_LOG_LEVEL="WARNING",
    )
    executor = None
    if args.db == "postgresql":
        executor, url = start_postgres(work)
        env["KIZUNA_DATABASE_URL"] = url
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
        key = (
            subprocess.run(
                [*KIZUNA, "source", "create", "Bench"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "kizuna.wsgi",
                    *shlex.split(args.gunicorn),
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        )
        worker = (
            [sys.executable, "-c", OWN_WORKER]
            if args.subscribers == "own"
            else [*KIZUNA, "worker", "--workers", "1"]
        )
        procs.append(
            subprocess.Popen(
                worker,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(3)
        import multiprocessing

        context = multiprocessing.get_context("fork")
        results = context.Queue()
        started = time.perf_counter()
        senders = [
            context.Process(
                target=send_events,
                args=(args, key, f"http://127.0.0.1:{port}", part, results),
            )
            for part in range(args.clients)
        ]
        for sender in senders:
            sender.start()
        reports = [results.get(timeout=900) for _ in senders]
        for sender in senders:
            sender.join()
        accepted = time.perf_counter() - started
        enqueued = max(r["enqueued"] for r in reports)
        failures = [f for r in reports for f in r["failures"]]
        pending, conn = pending_counter(args, env, work)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and pending() > 0:
            time.sleep(0.2)
        processed = time.perf_counter() - started
        conn.close()
        counts = json.loads(
            sql(
                env,
                "import json\nfrom kizuna.customers.models import Event\n"
                "qs = Event.objects.filter(type='Product Viewed')\n"
                "print(json.dumps([qs.count(), qs.values('message_id').distinct().count()]))",
            )
        )
        done, distinct = counts
        web_cpu, worker_cpu = cpu_seconds(procs[0].pid), cpu_seconds(procs[1].pid)
        sdk_cpu = sum(r["cpu"] for r in reports)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        procs.clear()
        raw = json.loads(
            sql(
                env,
                f"""
import json, time
from datetime import timedelta
from django.db import transaction
from kizuna.core.bulk import table_insert
from kizuna.core.timeutil import now
from kizuna.customers.bulk import EVENT_FIELDS
from kizuna.customers.models import Customer, Event
ids = list(Customer.objects.values_list('id', flat=True)[:{args.users}])
at = now()
rows = [(f'raw-{{i}}', 'Product Viewed Raw', ids[i % len(ids)], '', at - timedelta(seconds=i), at,
         'bench', {{'sku': f'SKU-{{i % 500}}', 'price': 1200, 'n': i}},
         {{'library': {{'name': 'analytics-python', 'version': '2.4.0'}}}}) for i in range({args.events})]
t = time.perf_counter()
with transaction.atomic():
    table_insert(Event, EVENT_FIELDS, rows, batch_size=10000)
print(json.dumps({{'seconds': time.perf_counter() - t}}))
""",
            )
        )
        n = args.events
        print(
            f"database: {args.db}, events: {n:,}, users: {args.users:,}, "
            f"subscribers: {args.subscribers}, gunicorn: {args.gunicorn}, "
            f"upload_size: {args.upload_size}, SDK threads: {args.sdk_threads}, "
            f"SDK processes: {args.clients}, chunk: {args.chunk}"
        )
        print(f"SDK enqueue: {enqueued:.1f} s")
        print(f"accepted (SDK flushed, all 200): {accepted:.1f} s = {n / accepted:,.0f} events/s")
        print(f"processed into timelines: {processed:.1f} s = {n / processed:,.0f} events/s")
        print(f"stored {done:,}, distinct message ids {distinct:,}, SDK errors {len(failures)}")
        print(
            f"raw bulk insert of the same rows: {raw['seconds']:.1f} s = "
            f"{n / raw['seconds']:,.0f} rows/s"
        )
        print(f"ratio processed / raw: {(n / processed) / (n / raw['seconds']):.2f}")
        print(
            f"CPU seconds: SDK clients {sdk_cpu:.1f}, gunicorn {web_cpu:.1f}, "
            f"worker {worker_cpu:.1f} (per 1,000 events: {1000 * sdk_cpu / n:.2f}, "
            f"{1000 * web_cpu / n:.2f}, {1000 * worker_cpu / n:.2f})"
        )
    finally:
        for proc in procs:
            proc.kill()
        if executor is not None:
            executor.stop()


if __name__ == "__main__":
    main()
