# ruff: noqa: S603, S608, E501 (a bench starting local processes; embedded script text; SQL with table names from code)
"""CPU per message of the bulk send path, profiled (issue 12): one process sends N queued
campaign deliveries through `delivery_send_batch` (the lane task's body) to an aiosmtpd
server in its own process (so its CPU and GIL are not the worker's); after a warm-up batch,
the first half is timed without a profiler (the worker's CPU per message), the second half
under cProfile; prints both, and the top functions by cumulative time.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/sending_profile.py [--messages 2000]
        [--db sqlite|postgresql] [--top 30] [--send 1500 --presend 150000]

With `--send M` only M of the queued messages are sent (after the warm-up); `--presend K`
first marks K of them sent in bulk SQL the way the worker leaves them (status, sent_at,
provider id, rendered snapshot, to address, a history row, a timeline event), so that M
messages are measured as in the middle of a large campaign (e.g. `--messages 200000
--presend 150000 --send 1500`) against the same M on a small table.
`--pragma "cache_size=-65536"` runs a PRAGMA on each new SQLite connection of the worker.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from messaging_send import SETUP  # bench/messaging_send.py
from sending_lanes import backends  # bench/sending_lanes.py
from support import free_port  # bench/support.py
from workdirs import bench_workdir  # bench/workdirs.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]

# The SMTP sink: aiosmtpd in its own process; prints the count of messages when stdin closes.
SINK = """
import sys, time
sys.path.insert(0, sys.argv[2])
from aiosmtpd.controller import Controller
from support import SmtpCounter
handler = SmtpCounter()
server = Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
print(handler.count, flush=True)
"""


def presend(connection: Any, ids: list[int]) -> None:
    """Mark these deliveries sent as the worker would have (one sample's snapshot)."""
    from django.db import transaction

    from kizuna.core.timeutil import now
    from kizuna.customers.models import Event
    from kizuna.messaging.models import Delivery, DeliveryStatus

    t0 = time.perf_counter()
    sample = Delivery.objects.filter(status="sent").order_by("id").first()
    assert sample is not None
    d, h, e = Delivery._meta.db_table, DeliveryStatus._meta.db_table, Event._meta.db_table
    at = connection.ops.adapt_datetimefield_value(now())
    low, high = ids[0], ids[-1]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {d} SET status = 'sent', sent_at = %s, updated_at = %s, attempts = 1, "
            f"claimed_by = 'bench:1', claimed_at = %s, "
            f"provider_id = '<' || idempotency_key || '.' || id || '@kizuna.example>', "
            f"to_address = 'c' || id || '@example.jp', "
            f"rendered = (SELECT rendered FROM {d} WHERE id = %s) WHERE id BETWEEN %s AND %s",
            [at, at, at, sample.pk, low, high],
        )
        cursor.execute(
            f"INSERT INTO {h} (delivery_id, status, reason, detail, at) "
            f"SELECT id, 'sent', '', '{{}}', %s FROM {d} WHERE id BETWEEN %s AND %s",
            [at, low, high],
        )
        cursor.execute(
            f"INSERT INTO {e} (message_id, type, customer_id, anonymous_id, occurred_at, "
            f"received_at, source, properties, context) "
            f"SELECT 'msg-' || id || '-email.sent', 'email.sent', customer_id, '', %s, %s, "
            f"'messaging', '{{}}', '{{}}' FROM {d} WHERE id BETWEEN %s AND %s",
            [at, at, low, high],
        )
    print(f"marked {len(ids)} sent in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--send", type=int, default=0, help="messages to send (0: all)")
    parser.add_argument("--presend", type=int, default=0, help="messages marked sent first")
    parser.add_argument("--batch", type=int, default=0, help="deliveries per task (0: bulk lane's)")
    parser.add_argument(
        "--pragma", action="append", default=[], help="SQLite PRAGMA per connection"
    )
    args = parser.parse_args()
    workdir = bench_workdir("kz-bench-prof-")
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port), str(Path(__file__).resolve().parent)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sink.stdout is not None and sink.stdin is not None
    assert sink.stdout.readline().strip() == "ready"
    with backends(workdir, args.db, "sqlite") as (extra, _count):
        os.environ.update(
            KIZUNA_DATA_DIR=str(workdir),
            DJANGO_SETTINGS_MODULE="kizuna.settings.base",
            KIZUNA_QUIET_HOURS="off",
            KIZUNA_LOG_LEVEL="WARNING",
            **extra,
        )
        env = dict(os.environ)
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
        subprocess.run(
            [sys.executable, "-c", SETUP, str(port), str(args.messages), "off"],
            env=env, check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        import django

        django.setup()
        from django.db import close_old_connections, connection, connections
        from django.db.backends.signals import connection_created

        from kizuna.messaging import services
        from kizuna.messaging.models import Delivery

        def pragmas(sender: Any, connection: Any, **kwargs: Any) -> None:
            if connection.vendor == "sqlite":
                with connection.cursor() as cursor:
                    for pragma in args.pragma:
                        cursor.execute(f"PRAGMA {pragma}")

        if args.pragma:
            connection_created.connect(pragmas)
        ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
        # warm-up (template compile, connections): the first batch is not profiled
        services.delivery_send_batch(delivery_ids=ids[:50])
        rest = ids[50:]
        if args.presend:
            presend(connection, rest[: args.presend])
            rest = rest[args.presend :]
        if args.send:
            rest = rest[: args.send]
        print(f"sending {len(rest)} of {len(ids)} queued ({args.presend} marked sent first)")
        plain, profiled = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        batch = args.batch or getattr(services, "BULK_BATCH", services.BATCH)
        print(f"{batch} deliveries per task (one delivery_send_batch, then a new connection)")

        def send(part: list[int]) -> None:
            for i in range(0, len(part), batch):
                services.delivery_send_batch(delivery_ids=part[i : i + batch])
                close_old_connections()  # as the lane task does after each batch (close_db)

        counted = [0]
        sql_cpu: dict[str, list[float]] = {}

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            counted[0] += 1
            words = re.findall(r'^\s*(\w+)|(?:FROM|INTO|UPDATE)\s+"?(\w+)', sql)
            key = (
                " ".join(filter(None, (words[0][0], *(w[1] for w in words[:2]))))
                if words
                else sql[:30]
            )
            start = time.process_time()
            try:
                return execute(sql, params, many, context)
            finally:
                entry = sql_cpu.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += time.process_time() - start

        # Commits and new connections (one per batch, as in the lane task) do not go through
        # the execute wrapper: timed by wrapping the backend's methods.
        wrapper_class = type(connections["default"])
        for method in ("_commit", "get_new_connection"):
            original = getattr(wrapper_class, method)

            def timed(
                self: Any, *a: Any, _original: Any = original, _key: str = method, **k: Any
            ) -> Any:
                start = time.process_time()
                try:
                    return _original(self, *a, **k)
                finally:
                    entry = sql_cpu.setdefault(_key, [0, 0.0])
                    entry[0] += 1
                    entry[1] += time.process_time() - start

            setattr(wrapper_class, method, timed)
        cpu0, t0 = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            send(plain)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        statements = counted[0]
        plain_sql = {key: list(entry) for key, entry in sql_cpu.items()}  # before the profiled half
        sql_total = sum(cpu for _n, cpu in plain_sql.values())
        profile = cProfile.Profile(time.process_time)  # CPU, not waiting on the server
        pcpu0 = time.process_time()
        profile.enable()
        send(profiled)
        profile.disable()
        pcpu = time.process_time() - pcpu0
        print(f"database {args.db}; load {os.getloadavg()}")
        print(
            f"{len(plain)} messages without profiler: {len(plain) / wall:.0f} msg/s wall, "
            f"{cpu * 1000 / len(plain):.2f} ms worker CPU per message, "
            f"{statements / len(plain):.2f} SQL statements per message, "
            f"{sql_total * 1000 / len(plain):.2f} ms CPU of them in SQL (execute, commit, connect)"
        )
        for key, (n, spent) in sorted(plain_sql.items(), key=lambda kv: -kv[1][1]):
            print(f"    {spent * 1000 / len(plain):6.3f} ms/msg  {n:5d} x  {key}")
        print(
            f"{len(profiled)} messages under cProfile: {pcpu * 1000 / len(profiled):.2f} ms CPU per message"
        )
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    sink.stdin.close()
    print(f"SMTP server received {sink.stdout.read().strip()} of {args.messages}")
    sink.wait(10)


if __name__ == "__main__":
    main()
