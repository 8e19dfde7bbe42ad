# ruff: noqa: S603, E501 (a bench starting local processes; embedded script text)
"""CPU per message of the bulk send path, profiled (issue 12): one process sends N queued
campaign deliveries through `delivery_send_batch` (the lane task's body) to an aiosmtpd
server in a thread, under cProfile; prints CPU per message, SQL statements per message and
the top functions by cumulative time.

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

from aiosmtpd.controller import Controller
from messaging_send import SETUP  # bench/messaging_send.py
from sending_lanes import backends  # bench/sending_lanes.py
from support import SmtpCounter, free_port  # bench/support.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kz-bench-prof-"))
    handler = SmtpCounter()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
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
            [sys.executable, "-c", SETUP, str(server.port), str(args.messages), "off"],
            env=env, check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        import django

        django.setup()
        from django.db import connection, reset_queries

        from kizuna.messaging import services
        from kizuna.messaging.models import Delivery

        ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
        # warm-up (template compile, connections): the first batch is not profiled
        services.delivery_send_batch(delivery_ids=ids[:50])
        rest = ids[50:]
        connection.force_debug_cursor = True
        reset_queries()
        profile = cProfile.Profile()
        cpu0, t0 = time.process_time(), time.perf_counter()
        profile.enable()
        for i in range(0, len(rest), services.BATCH):
            services.delivery_send_batch(delivery_ids=rest[i : i + services.BATCH])
            if len(connection.queries_log) > 8000:
                connection.queries_log.clear()
        profile.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        n = len(rest)
        print(f"database {args.db}; load {os.getloadavg()}")
        print(
            f"{n} messages in one process: {n / wall:.0f} msg/s wall, {cpu * 1000 / n:.2f} ms CPU per message "
            f"(this process: worker + SMTP server thread); SMTP server received {handler.count}"
        )
        connection.force_debug_cursor = False
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    server.stop()


if __name__ == "__main__":
    main()
