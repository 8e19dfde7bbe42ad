"""Server time of the two heavy accounts pages on PostgreSQL: the kanban board of 10,000 open
deals and "my customers" for an owner of 5,000 high-touch customers.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/accounts_pages.py
        [--deals 10000] [--customers 5000] [--repeat 20]

Starts its own PostgreSQL server (bench/support.py) in a temporary directory on a free
loopback port, migrates, and loads with bulk inserts: one pipeline (Lead 10%, Proposal 50%,
Negotiation 80%, Won, Lost), 2,000 accounts, the deals spread over the three open stages with
amounts and expected-close dates, all owned by one manager; 5,000 customers with scores
(CLV, P(alive), every fifth at risk) and high-touch care rows owned by that user (a third
overdue, a tenth with P(alive) falling). Each page is requested through Django's test client
in this process (the whole Django request: middleware, session, view, ORM, template), after
two warm-ups, `--repeat` times; the median and p95 of wall time and of this process's CPU
time per request are printed with the statement count, the page's size and the load average.
The board renders 20 cards a column with the count and sums of all open deals per stage;
"load more" is one column's next 20 cards from the middle of that column (the htmx
fragment); "my customers" renders its first page (50 rows) with the summary over all 5,000.
Target: each under 300 ms server time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from support import postgres_executor  # bench/support.py

ROOT = Path(__file__).resolve().parent.parent


def load(deals: int, customers: int) -> object:
    from kizuna.accounts import services
    from kizuna.accounts.models import Account, CustomerCare, Deal
    from kizuna.analytics.models import CustomerScore
    from kizuna.core.timeutil import now
    from kizuna.customers.models import Customer
    from kizuna.iam.services import staff_user_create

    rng = random.Random(14)
    user = staff_user_create(username="manager", password=secrets.token_urlsafe(16), role="admin")
    pipeline = services.pipeline_create(
        name="New business",
        stages=[
            {"name": "Lead", "probability": 10},
            {"name": "Proposal", "probability": 50},
            {"name": "Negotiation", "probability": 80},
            {"name": "Won", "probability": 100, "outcome": "won"},
            {"name": "Lost", "probability": 0, "outcome": "lost"},
        ],
    )
    stages = list(pipeline.stages.filter(outcome="open").order_by("position"))
    accounts = Account.objects.bulk_create(
        Account(name=f"Company {i:05d}", owner=user) for i in range(2000)
    )
    at = now()
    today = date.today()
    Deal.objects.bulk_create(
        (
            Deal(
                title=f"Deal {i:06d}",
                account=accounts[i % len(accounts)],
                pipeline=pipeline,
                stage=stages[rng.randrange(len(stages))],
                amount_yen=rng.randrange(10_000, 5_000_000, 1000),
                expected_close=today + timedelta(days=rng.randrange(-30, 365)),
                owner=user,
                stage_changed_at=at,
            )
            for i in range(deals)
        ),
        batch_size=5000,
    )
    people = Customer.objects.bulk_create(
        (Customer(family_name=f"顧客{i:05d}", email=f"c{i}@example.jp") for i in range(customers)),
        batch_size=5000,
    )
    first = today - timedelta(days=400)
    CustomerScore.objects.bulk_create(
        (
            CustomerScore(
                customer=p,
                run_id=1,
                model_version="bench",
                scored_at=at,
                orders=3,
                frequency=2,
                recency_days=20,
                age_days=400,
                first_purchase=first,
                last_purchase=today,
                monetary_minor=30000,
                r_score=3,
                f_score=3,
                m_score=3,
                segment="loyal",
                p_alive=rng.random(),
                expected_purchases_30d=0.4,
                expected_purchases=3.0,
                expected_aov_minor=9000,
                clv_minor=rng.randrange(10_000, 500_000),
                expected_gap_days=40.0,
                days_overdue=0,
                at_risk=i % 5 == 0,
            )
            for i, p in enumerate(people)
        ),
        batch_size=5000,
    )
    CustomerCare.objects.bulk_create(
        (
            CustomerCare(
                customer=p,
                level="high",
                reason="top_clv",
                owner=user,
                cadence_days=30,
                next_follow_up_at=at + timedelta(days=rng.randrange(-20, 40)),
                p_alive_previous=0.9 if i % 10 == 0 else None,
                p_alive_current=0.5 if i % 10 == 0 else None,
            )
            for i, p in enumerate(people)
        ),
        batch_size=5000,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return user


def middle_of_a_column() -> str:
    """The "load more" URL of the first open stage from its middle card onwards."""
    from kizuna.accounts.models import Deal, Stage
    from kizuna.accounts.selectors import card_cursor

    stage = Stage.objects.filter(outcome="open").order_by("position").first()
    assert stage is not None
    deals = Deal.objects.filter(stage=stage, status="open").order_by("expected_close", "id")
    card = deals.values("id", "expected_close")[deals.count() // 2]
    return f"/deals/board/stages/{stage.pk}/?after={card_cursor(card)}"


def measure(client: object, path: str, repeat: int, **headers: str) -> dict[str, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        response = client.get(path, **headers)  # type: ignore[attr-defined]
        assert response.status_code == 200, (path, response.status_code)
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        response = client.get(path, **headers)  # type: ignore[attr-defined]
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, **headers)  # type: ignore[attr-defined]
    walls.sort()
    cpus.sort()
    p95 = max(0, round(0.95 * len(walls)) - 1)
    return {
        "path": path,
        "wall_median_ms": round(statistics.median(walls), 1),
        "wall_p95_ms": round(walls[p95], 1),
        "cpu_median_ms": round(statistics.median(cpus), 1),
        "statements": len(queries),
        "kb": round(len(response.content) / 1024),
    }


def profile(client: object, path: str) -> None:
    """Where one request's time goes: the top functions by cumulative and own time, then each
    statement with its plan and the server's execution time."""
    import cProfile
    import io
    import pstats

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        client.get(path)  # type: ignore[attr-defined]
    profiler = cProfile.Profile()
    with CaptureQueriesContext(connection) as queries:
        profiler.enable()
        client.get(path)  # type: ignore[attr-defined]
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
    print(f"===== {path}", out.getvalue(), sep="\n")
    with connection.cursor() as cursor:
        for q in queries.captured_queries:
            sql = q["sql"]
            print(f"-- {q['time']} s: {sql[:300]}")
            if sql.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                for (line,) in cursor.fetchall():
                    print("     ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing: cProfile one request of each page and EXPLAIN ANALYZE its SQL",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kizuna-acc-"))
    server = postgres_executor(tmp, settings="-c shared_buffers=256MB -c synchronous_commit=off")
    server.start()
    try:
        os.environ.update(
            KIZUNA_DATABASE_URL=f"postgres://postgres@127.0.0.1:{server.port}/postgres",
            KIZUNA_DATA_DIR=str(tmp / "kizuna"),
            DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        )
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()  # the test client's request/response capture
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        user = load(args.deals, args.customers)
        print(
            f"loaded {args.deals} deals, {args.customers} customers in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        client = Client(HTTP_ACCEPT_LANGUAGE="ja", SERVER_NAME="127.0.0.1")
        client.force_login(user)  # type: ignore[arg-type]
        if args.profile:
            for path in ("/deals/board/", "/my-customers/"):
                profile(client, path)
            return
        load_avg = os.getloadavg()
        results = [
            measure(client, "/deals/board/", args.repeat),
            measure(client, middle_of_a_column(), args.repeat, HTTP_HX_REQUEST="true"),
            measure(client, "/my-customers/", args.repeat),
            measure(client, "/my-customers/?risk=1", args.repeat),
            measure(client, "/deals/forecast/", args.repeat),
        ]
        load_after = os.getloadavg()
        print(
            f"python {platform.python_version()}, {os.cpu_count()} cores, load average "
            f"(1/5/15 min) before {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}, "
            f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
        )
        for r in results:
            print(
                f"{str(r['path'])[:24]:<24} wall median {r['wall_median_ms']:>7} ms  p95 "
                f"{r['wall_p95_ms']:>7} ms  cpu median {r['cpu_median_ms']:>7} ms  "
                f"{r['statements']} statements  {r['kb']} KB"
            )
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
