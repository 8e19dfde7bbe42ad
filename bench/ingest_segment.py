# ruff: noqa: S603, S607, S103, E501 (a bench starting local processes; embedded script text)
"""Sustained ingestion through /v1/batch with the official Segment Python SDK.

    .venv/bin/python bench/ingest_segment.py [--db sqlite|postgresql] [--events 200000]

Starts, in a fresh data directory: the database (PostgreSQL through pytest-postgresql's
executor when asked), gunicorn (2 workers) and one `kizuna worker`; sends the events with
`segment.analytics.Client`; prints events/s accepted (SDK flushed, every request 200) and
processed (all in the timeline), checks zero loss and zero duplicates, and measures the raw
bulk-insert rate of the same event rows into the same database for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
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
    from pytest_postgresql.executor import PostgreSQLExecutor

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=5_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kz-bench-ingest-"))
    os.chmod(work, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(work),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_TRACKING_PROCESS_CHUNK="10000",
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
                    "-w",
                    "2",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        )
        procs.append(
            subprocess.Popen(
                [*KIZUNA, "worker", "--workers", "1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(3)
        from segment.analytics import Client

        failures: list[object] = []
        client = Client(
            key,
            host=f"http://127.0.0.1:{port}",
            upload_size=1000,
            max_queue_size=args.events + 10,
            thread=2,
            on_error=lambda e, batch: failures.append(e),
        )
        started = time.perf_counter()
        for i in range(args.events):
            client.track(
                f"user-{i % args.users}",
                "Product Viewed",
                {"sku": f"SKU-{i % 500}", "price": 1200, "n": i},
                message_id=f"bench-{i}",
            )
        enqueued = time.perf_counter() - started
        client.flush()
        accepted = time.perf_counter() - started
        client.shutdown()
        count_sql = (
            "from kizuna.customers.models import Event\n"
            "print(Event.objects.filter(type='Product Viewed').count())"
        )
        deadline = time.monotonic() + 600
        done = 0
        while time.monotonic() < deadline:
            done = int(sql(env, count_sql))
            if done >= args.events:
                break
            time.sleep(0.5)
        processed = time.perf_counter() - started
        distinct = int(
            sql(
                env,
                "from kizuna.customers.models import Event\n"
                "print(Event.objects.filter(type='Product Viewed').values('message_id')"
                ".distinct().count())",
            )
        )
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
        print(f"database: {args.db}, events: {n:,}, users: {args.users:,}")
        print(f"SDK enqueue: {enqueued:.1f} s")
        print(f"accepted (SDK flushed, all 200): {accepted:.1f} s = {n / accepted:,.0f} events/s")
        print(f"processed into timelines: {processed:.1f} s = {n / processed:,.0f} events/s")
        print(f"stored {done:,}, distinct message ids {distinct:,}, SDK errors {len(failures)}")
        print(
            f"raw bulk insert of the same rows: {raw['seconds']:.1f} s = "
            f"{n / raw['seconds']:,.0f} rows/s"
        )
        print(f"ratio processed / raw: {(n / processed) / (n / raw['seconds']):.2f}")
    finally:
        for proc in procs:
            proc.kill()
        if executor is not None:
            executor.stop()


if __name__ == "__main__":
    main()
