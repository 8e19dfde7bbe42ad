"""Where the CPU of one redemption request goes (not a latency benchmark).

    .venv/bin/python bench/loyalty_redeem_profile.py [--requests 300] [--profile] [--show-sql]

Starts its own PostgreSQL (bench/loyalty_pg.py), creates members with points, a reward and
an API key, then sends POST /api/v1/customers/{id}/loyalty/redemptions through Django's full
request path in this process (middleware, ninja, auth, service, response) with a fresh
Idempotency-Key each time. Prints per request: CPU seconds of this process
(`time.process_time`), CPU seconds of the PostgreSQL backend serving it (/proc), the SQL
statements run; with --profile, the top functions by cumulative time (cProfile).
CPU-seconds per request are meaningful on a loaded machine; wall-clock is not.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loyalty_pg import postgres, setup_django

MEMBERS = 50


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument("--dump", help="also write the cProfile data to this file")
    parser.add_argument(
        "--read", action="store_true", help="GET the balance instead (the stack's floor)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kz-bench-") as data_dir, postgres() as url:
        setup_django(url, data_dir)
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from kizuna.customers.services import customer_create
        from kizuna.iam.services import api_key_create, staff_user_create
        from kizuna.loyalty import services
        from kizuna.loyalty.models import Programme, Reward

        settings.ALLOWED_HOSTS = ["*"]
        Programme.objects.create(name="bench")
        Reward.objects.create(code="shot", name="Espresso shot", points_price=1)
        customers = []
        for i in range(MEMBERS):
            c = customer_create(data={"family_name": "Bench", "given_name": str(i)})
            services.points_award(
                customer=c, points=100_000, idempotency_key=f"seed:{i}", reason="bench"
            )
            customers.append(c.pk)
        staff = staff_user_create(username="bench", password=uuid.uuid4().hex, role="support")
        key = api_key_create(name="bench", role="support", created_by=staff).secret
        client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

        def one(i: int) -> int:
            if args.read:
                r = client.get(f"/api/v1/customers/{customers[i % MEMBERS]}/loyalty")
                return 201 if r.status_code == 200 else r.status_code
            r = client.post(
                f"/api/v1/customers/{customers[i % MEMBERS]}/loyalty/redemptions",
                {"reward": "shot"},
                content_type="application/json",
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            return r.status_code

        for i in range(30):  # warm-up: imports, caches, the connection
            assert one(i) == 201
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = int(cursor.fetchone()[0])
        with CaptureQueriesContext(connection) as captured:
            assert one(0) == 201
        statements = [q["sql"] for q in captured.captured_queries]
        print(f"SQL statements per request: {len(statements)}")
        kinds = Counter(s.split()[0].upper() for s in statements)
        print("  " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
        if args.show_sql:
            for s in statements:
                print("   ", s[:200])
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        db0 = _backend_cpu(backend)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        codes = Counter(one(i) for i in range(args.requests))
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        db = _backend_cpu(backend) - db0
        n = args.requests
        print(
            f"{n} requests {dict(codes)}: Django process {cpu / n * 1000:.2f} ms CPU/request, "
            f"PostgreSQL backend {db / n * 1000:.2f} ms CPU/request, "
            f"wall {wall / n * 1000:.2f} ms/request (one at a time"
            f"{', profiled' if profiler else ''})"
        )
        if profiler:
            if args.dump:
                profiler.dump_stats(args.dump)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
