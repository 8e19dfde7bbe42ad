# ruff: noqa: S603, E501 (a bench starting local processes; embedded script text)
"""CPU per message of the bulk send path, profiled (issue 12): one process sends N queued
campaign deliveries through `delivery_send_batch` (the lane task's body) to an aiosmtpd
server in its own process (so its CPU and GIL are not the worker's); after a warm-up batch,
the first half is timed without a profiler (the worker's CPU per message), the second half
under cProfile; prints both, and the top functions by cumulative time.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/sending_profile.py [--messages 2000]
        [--db sqlite|postgresql] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from messaging_send import SETUP  # bench/messaging_send.py
from sending_lanes import backends  # bench/sending_lanes.py
from support import free_port  # bench/support.py

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kz-bench-prof-"))
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
        from django.db import connection

        from kizuna.messaging import services
        from kizuna.messaging.models import Delivery

        ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
        # warm-up (template compile, connections): the first batch is not profiled
        services.delivery_send_batch(delivery_ids=ids[:50])
        rest = ids[50:]
        plain, profiled = rest[: len(rest) // 2], rest[len(rest) // 2 :]

        def send(part: list[int]) -> None:
            for i in range(0, len(part), services.BATCH):
                services.delivery_send_batch(delivery_ids=part[i : i + services.BATCH])

        counted = [0]

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            counted[0] += 1
            return execute(sql, params, many, context)

        cpu0, t0 = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            send(plain)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        statements = counted[0]
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
            f"{statements / len(plain):.2f} SQL statements per message"
        )
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
