"""Full scoring of 1,000,000 customers with 10,000,000 orders on PostgreSQL.

    .venv/bin/python bench/analytics_scale.py [--customers 1000000] [--orders-per-customer 11.7]
                                              [--write-docs]

Starts its own PostgreSQL server (pytest-postgresql's executor with tests/support/pg_ctl, so
it also works as root) in a temporary directory on a free loopback port, migrates, loads a
simulated purchase history with COPY (BG/NBD-like customers: Poisson purchasing, dropping out
after a purchase, spend varying by customer; 1% of orders partly and 0.5% fully refunded),
then runs `kizuna.analytics.services.scoring_run_now` twice (the first run inserts every
score, the second replaces them, as the nightly run does) and prints each stage's time and
peak memory (tracemalloc: NumPy's arrays included). Target: a run under 60 s on 2 cores.
The server is stopped and the directory removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from support import postgres_executor  # bench/support.py

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- analytics_scale:begin -->", "<!-- analytics_scale:end -->"
DAYS = 3 * 365


def simulate(customers: int, per_customer: float, seed: int = 42):
    """(customer index, day, total minor) per order: first purchases spread over three
    years, then Poisson purchasing with a chance of dropping out after each purchase."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, DAYS, customers)
    # rates tuned so that the mean number of orders is about `per_customer`
    rate = rng.gamma(1.2, per_customer / 700 / 1.2 * 2.4, customers)
    drop = rng.beta(1.0, 9.0, customers)
    usual = rng.gamma(4.0, 350.0, customers)
    customer_parts, day_parts = [np.arange(customers)], [first]
    alive = np.ones(customers, dtype=bool)
    t = first.astype(np.float64)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1.0 / rate[idx])
        within = t[idx] < DAYS
        idx = idx[within]
        alive[:] = False
        if len(idx) == 0:
            break
        customer_parts.append(idx)
        day_parts.append(t[idx].astype(np.int64))
        alive[idx] = rng.random(len(idx)) >= drop[idx]
    customer = np.concatenate(customer_parts)
    day = np.concatenate(day_parts)
    total = np.maximum(50, rng.gamma(6.0, usual[customer] / 6.0)).astype(np.int64)
    return customer, day, total


def copy_binary(cursor, table: str, columns: list[str], arrays: list[np.ndarray]) -> None:
    record = np.dtype(
        [("n", ">i2")]
        + [p for i in range(len(arrays)) for p in ((f"l{i}", ">i4"), (f"v{i}", ">i8"))]
    )
    rows = np.empty(len(arrays[0]), dtype=record)
    rows["n"] = len(arrays)
    for i, values in enumerate(arrays):
        rows[f"l{i}"] = 8
        rows[f"v{i}"] = values
    payload = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as copy:
        for start in range(0, len(payload), 16 << 20):
            copy.write(payload[start : start + (16 << 20)])


def load(customers: int, per_customer: float) -> tuple[int, float]:
    from django.db import connection

    started = time.perf_counter()
    customer, day, total = simulate(customers, per_customer)
    print(f"simulated {len(customer):,} orders in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(
            "INSERT INTO customers_customer (family_name, given_name, family_name_kana, "
            "given_name_kana, email, phone, gender, postal_code, prefecture, city, address_line, "
            "locale, timezone, traits, created_at, updated_at) "
            "SELECT '客', n::text, '', '', '', '', 'unspecified', '', '', '', '', 'ja', "
            "'Asia/Tokyo', '{}'::jsonb, now(), now() FROM generate_series(1, %s) AS n",
            [customers],
        )
        cursor.execute("SELECT min(id) FROM customers_customer")
        base = cursor.fetchone()[0]
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_orders (customer_id bigint, day bigint, total bigint, "
            "refunded bigint, seq bigint)"
        )
        rng = np.random.default_rng(7)
        pick = rng.random(len(total))
        refunded = np.where(pick < 0.005, total, np.where(pick < 0.015, total // 3, 0))
        copy_binary(
            cursor,
            "bench_orders",
            ["customer_id", "day", "total", "refunded", "seq"],
            [customer + base, day, total, refunded, np.arange(len(total))],
        )
        print(f"copied the orders in {time.perf_counter() - started:.1f} s")
        cursor.execute(
            "INSERT INTO commerce_order (number, customer_id, placed_at, status, currency, "
            "subtotal_minor, discount_minor, total_minor, refunded_minor, channel, store, "
            "source, created_at) "
            "SELECT 'B' || seq, customer_id, "
            "timestamptz '2023-07-01 00:00+09' + make_interval(days => day::int, secs => "
            "(seq % 43200) + 28800), "
            "CASE WHEN refunded = 0 THEN 'placed' WHEN refunded = total THEN 'refunded' "
            "ELSE 'partially_refunded' END, 'JPY', total, 0, total, refunded, 'store', '', "
            "'bench', now() FROM bench_orders"
        )
        cursor.execute("DROP TABLE bench_orders")
    # As autovacuum would have by the time of a nightly run: hint bits set, statistics fresh.
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return len(total), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=11.7)  # 10.0M orders
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--keep-server",
        action="store_true",
        help="load, then leave the server running (prints its URL) for experiments",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="score an already loaded database (from --keep-server) instead of starting one",
    )
    args = parser.parse_args()
    if args.database_url:
        reuse(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="kizuna-scale-"))
    server = postgres_executor(
        tmp,
        settings="-c shared_buffers=2GB -c work_mem=256MB -c max_wal_size=8GB "
        "-c synchronous_commit=off -c checkpoint_timeout=30min",
    )
    port = server.port
    server.start()
    try:
        os.environ.update(
            KIZUNA_DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/postgres",
            KIZUNA_DATA_DIR=str(tmp / "kizuna"),
            DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        orders, load_seconds = load(args.customers, args.orders_per_customer)
        print(f"loaded {args.customers:,} customers and {orders:,} orders in {load_seconds:.0f} s")
        if args.keep_server:
            print(f"server left running: {os.environ['KIZUNA_DATABASE_URL']} (data in {tmp})")
            return
        runs = [score(label) for label in ("first run (insert)", "second run (replace)")]
        kpi_seconds = time_kpis()
        text = render(args.customers, orders, runs, kpi_seconds)
        print()
        print(text)
        if args.write_docs:
            doc = DOC.read_text()
            head, rest = doc.split(BEGIN, 1)
            _old, tail = rest.split(END, 1)
            DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
            print(f"\nwrote {DOC.relative_to(ROOT)}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_server:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def reuse(args: argparse.Namespace) -> None:
    os.environ.update(
        KIZUNA_DATABASE_URL=args.database_url,
        KIZUNA_DATA_DIR=tempfile.mkdtemp(prefix="kizuna-scale-"),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer")
        customers = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM commerce_order")
        orders = cursor.fetchone()[0]
    runs = [score(label) for label in ("first run (insert)", "second run (replace)")]
    print()
    print(render(customers, orders, runs, time_kpis()))


def score(label: str) -> dict:
    from kizuna.analytics import services
    from kizuna.analytics.models import RunTrigger

    started = time.perf_counter()
    run = services.scoring_run_now(trigger=RunTrigger.CLI, measure_memory=True)
    wall = time.perf_counter() - started
    assert run.status == "succeeded", run.message
    seconds = run.timings["seconds"]
    peaks = run.timings.get("peak_mib", {})
    print(f"{label}: {wall:.1f} s, {run.customers_scored:,} scores; {seconds}; peak MiB {peaks}")
    return {"label": label, "wall": wall, "seconds": seconds, "peaks": peaks, "run": run}


def time_kpis() -> float:
    from kizuna.analytics import selectors

    started = time.perf_counter()
    selectors.insight(months=24)
    return time.perf_counter() - started


def render(customers: int, orders: int, runs: list[dict], kpi_seconds: float) -> str:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = runs[0]["run"]
    lines = [
        f"Measured {date.today():%Y-%m-%d} with `python bench/analytics_scale.py`: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
        f"{server_version()}, {customers:,} customers, {orders:,} orders, machine shared with "
        "other work. Peak memory per stage by tracemalloc (Python and NumPy allocations).",
        "",
        "| stage | " + " | ".join(r["label"] for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    names = [
        ("read", "read: SQL aggregation → NumPy"),
        ("score", "score: fit + predict + RFM + diagnostics"),
        ("score.fit", "  of which: BG/NBD + Gamma-Gamma fits"),
        ("score.predict", "  of which: P(alive), expected purchases, 12-month CLV"),
        ("score.rfm", "  of which: RFM quintiles and segments"),
        ("score.diagnostics", "  of which: diagnostics (histogram, tracking)"),
        ("store", "store: COPY to staging, replace in one transaction"),
        ("kpis", "after the run: monthly KPI + cohort snapshot (not in the target)"),
    ]
    for key, label in names:
        cells = []
        for r in runs:
            value = r["seconds"].get(key)
            peak = r["peaks"].get(key)
            cell = "" if value is None else f"{value:.1f} s"
            if peak is not None:
                cell += f" ({peak:,.0f} MiB)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    scoring = [sum(r["seconds"].get(k, 0) for k in ("read", "score", "store")) for r in runs]
    lines.append(
        "| **full scoring: read + score + store (target < 60 s)** | "
        + " | ".join(f"**{t:.1f} s**" for t in scoring)
        + " |"
    )
    lines.append(
        "| wall clock of the whole run, snapshot included | "
        + " | ".join(f"{r['wall']:.1f} s" for r in runs)
        + " |"
    )
    repeat = first.fit["repeat"]
    spend = first.fit["spend"]
    lines += [
        "",
        f"Scores stored: {first.customers_scored:,}; BG/NBD "
        + ", ".join(f"{k}={v:.4g}" for k, v in repeat["params"].items())
        + f" ({repeat['iterations']} iterations); Gamma-Gamma "
        + ", ".join(f"{k}={v:.4g}" for k, v in spend["params"].items())
        + f". Process peak RSS {rss:,.0f} MiB. The KPI page reads the run's snapshot: "
        f"{kpi_seconds * 1000:.0f} ms.",
    ]
    return "\n".join(lines)


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0]).split()[0]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
