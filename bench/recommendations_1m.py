"""Recommendations (issue 10) served at a million customers, over HTTP, from PostgreSQL.

    .venv/bin/python bench/recommendations_1m.py [--customers 1000000] [--products 10000] \
        [--lines 10000000] [--requests 1500] [--workers 2] [--evaluate] [--profile] \
        [--train-only]

Takes /tmp/kizuna-bench.lock itself (waits for it) for the whole run, load included.

1. Starts a throwaway PostgreSQL (bench/support.py), migrates, and loads --customers
   customers (a prefecture each), --products products in 20 categories, and --lines order
   lines with their orders (about 2.5 lines per order) through COPY (psycopg's copy, text
   rows built in chunks; foreign-key triggers off for the load with
   session_replication_role=replica: the generator's ids are consistent by construction;
   each table's non-unique indexes dropped before its COPY and built again after), then
   VACUUM (ANALYZE), so that autovacuum does not take up the loaded tables during the
   training. The purchases come from the NumPy generator of `recommendations.py
   synthetic`: 50 taste clusters, Zipf popularity within each, 30% off-taste, gamma
   activity per customer (so a quarter or so of the customers have no order at all).
2. Trains through the real service (`services.training_run_now`, the code path of
   `kizuna recommendations train`), which reads the orders from the database and stores
   the versioned model files the API serves; --no-evaluate unless --evaluate (the holdout
   evaluation trains every kind twice). Prints the run's stage timings.
3. In process (Django test client): SQL statements and CPU per request (and with
   --profile a cProfile of them).
4. Starts gunicorn (gthread, --workers x 4 threads) on that database, warms every worker
   up, and measures GET /api/v1/customers/{id}/recommendations?n=10 for customers with
   history and without, and GET /api/v1/products/{id}/related?n=5, with an API key, with
   1 and 2 closed-loop clients: p50/p95/p99 per route kind and overall, server CPU per
   request, and the RSS of each gunicorn worker (every model it serves loaded).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recommendations import in_process, load, tree_cpu  # noqa: E402
from support import free_port, postgres_executor, wait_for_http  # noqa: E402

LOCK = "/tmp/kizuna-bench.lock"  # noqa: S108 (the benchmarks' shared lock)
CATEGORIES = 20
CLUSTERS = 50
CHUNK = 500_000
PG_SETTINGS = (
    "-c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min "
    "-c maintenance_work_mem=512MB -c work_mem=64MB -c synchronous_commit=off"
)


def say(text: str) -> None:
    print(text, flush=True)


# --- the data ------------------------------------------------------------------------------


class Synthetic:
    """Customers, products, orders and order lines as NumPy arrays (ids from 1)."""

    def __init__(self, customers: int, products: int, lines: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.n_customers, self.n_products = customers, products
        self.prefecture = rng.integers(1, 48, customers)
        self.price = (rng.integers(3, 100, products) * 100).astype(np.int64)
        self.category = (np.arange(products) // CLUSTERS) % CATEGORIES + 1
        n_orders = int(lines / 2.5)
        activity = rng.gamma(0.8, 1.0, customers)
        cum = np.cumsum(activity)
        self.order_customer = np.searchsorted(cum, rng.random(n_orders) * cum[-1]).astype(
            np.int64
        )  # 0-based
        per_order = 1 + rng.poisson(1.5, n_orders)
        ends = np.cumsum(per_order)
        # (if the orders fall short of `lines`, the last one takes the rest)
        keep = min(n_orders, int(np.searchsorted(ends, lines)) + 1)
        self.order_customer, per_order = self.order_customer[:keep], per_order[:keep]
        per_order[-1] -= int(per_order.sum()) - lines
        self.n_orders = keep
        self.line_order = np.repeat(np.arange(keep, dtype=np.int64), per_order)  # 0-based
        customer = self.order_customer[self.line_order]
        taste = rng.integers(0, CLUSTERS, customers)
        per_cluster = products // CLUSTERS
        zipf_in = np.cumsum(1.0 / np.arange(1, per_cluster + 1) ** 1.1)
        j = np.searchsorted(zipf_in, rng.random(lines) * zipf_in[-1])
        on_taste = taste[customer] + CLUSTERS * j
        zipf_all = np.cumsum(1.0 / np.arange(1, products + 1) ** 0.9)
        off_taste = np.searchsorted(zipf_all, rng.random(lines) * zipf_all[-1])
        self.line_product = np.where(rng.random(lines) < 0.7, on_taste, off_taste).astype(
            np.int64
        )  # 0-based
        self.line_quantity = np.where(rng.random(lines) < 0.1, 2, 1).astype(np.int64)
        self.line_total = self.line_quantity * self.price[self.line_product]
        self.order_total = np.bincount(self.line_order, self.line_total, keep).astype(np.int64)
        now = int(time.time())
        self.order_placed = rng.integers(now - 730 * 86400, now - 3600, keep)
        self.with_history = np.flatnonzero(np.bincount(self.order_customer, None, customers)) + 1
        self.without_history = (
            np.flatnonzero(np.bincount(self.order_customer, None, customers) == 0) + 1
        )


def _stamp(epoch: np.ndarray) -> list[str]:
    return [time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(int(t))) for t in epoch.tolist()]


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, CHUNK):
        yield start, min(count, start + CHUNK)


def copy_rows(
    table: str, columns: list[str], count: int, rows: Callable[[int, int], list[str]]
) -> float:
    """COPY `count` rows into `table` (text format, chunk by chunk); seconds taken."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # plain (non-unique) indexes are dropped for the load and built again after it
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
            "AND NOT x.indisunique",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start, end in _chunks(count):
                copy.write("\n".join(rows(start, end)) + "\n")
        cursor.execute("SET session_replication_role = DEFAULT")
        copied = time.perf_counter() - started
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
            [count],
        )
    took = time.perf_counter() - started
    say(
        f"  {table:22s} {count:>11,} rows in {took:6.1f} s ({count / took:,.0f} rows/s; COPY "
        f"{copied:.1f} s, then {len(indexes)} indexes {took - copied:.1f} s)"
    )
    return took


def load_data(s: Synthetic) -> float:
    from django.db import connection

    from kizuna.customers.choices import PREFECTURES

    started = time.perf_counter()
    codes = [code for code, _ja, _en in PREFECTURES]
    created = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(time.time() - 800 * 86400))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalog_category (id, name, name_en, slug) "
            "SELECT g, '分類' || g, 'Category ' || g, 'cat-' || g FROM generate_series(1, %s) g",
            [CATEGORIES],
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('catalog_category', 'id'), %s)", [CATEGORIES]
        )
    sku = [f"SKU-{p:06d}" for p in range(1, s.n_products + 1)]
    name = [f"商品 {p}" for p in range(1, s.n_products + 1)]
    price, category = s.price.tolist(), s.category.tolist()

    def products(a: int, b: int) -> list[str]:
        return [
            f"{p + 1}\t{sku[p]}\t{name[p]}\tProduct {p + 1}\t\t{category[p]}\t{price[p]}\tJPY\t"
            f"t\t{created}\t{created}"
            for p in range(a, b)
        ]

    copy_rows(
        "catalog_product",
        [
            "id",
            "sku",
            "name",
            "name_en",
            "description",
            "category_id",
            "price_minor",
            "currency",
            "active",
            "created_at",
            "updated_at",
        ],
        s.n_products,
        products,
    )
    pref = s.prefecture

    def customers(a: int, b: int) -> list[str]:
        return [
            f"{c + 1}\t\t\t\t\t\t\t\\N\tunspecified\t\t{codes[pref[c] - 1]}\t\t\tja\tAsia/Tokyo"
            f"\t{{}}\t\\N\t\\N\t\\N\t{created}\t{created}"
            for c in range(a, b)
        ]

    copy_rows(
        "customers_customer",
        [
            "id",
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "email",
            "phone",
            "birthday",
            "gender",
            "postal_code",
            "prefecture",
            "city",
            "address_line",
            "locale",
            "timezone",
            "traits",
            "merged_into_id",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
        ],
        s.n_customers,
        customers,
    )

    def orders(a: int, b: int) -> list[str]:
        cust = (s.order_customer[a:b] + 1).tolist()
        total = s.order_total[a:b].tolist()
        placed = _stamp(s.order_placed[a:b])
        return [
            f"{a + i + 1}\tB{a + i + 1:09d}\t{cust[i]}\t{placed[i]}\tplaced\tJPY\t{total[i]}\t0"
            f"\t{total[i]}\t0\tonline\t\tbench\t{placed[i]}"
            for i in range(b - a)
        ]

    copy_rows(
        "commerce_order",
        [
            "id",
            "number",
            "customer_id",
            "placed_at",
            "status",
            "currency",
            "subtotal_minor",
            "discount_minor",
            "total_minor",
            "refunded_minor",
            "channel",
            "store",
            "source",
            "created_at",
        ],
        s.n_orders,
        orders,
    )

    def lines(a: int, b: int) -> list[str]:
        order = (s.line_order[a:b] + 1).tolist()
        product = s.line_product[a:b].tolist()
        qty = s.line_quantity[a:b].tolist()
        total = s.line_total[a:b].tolist()
        return [
            f"{a + i + 1}\t{order[i]}\t{product[i] + 1}\t{sku[product[i]]}\t{name[product[i]]}"
            f"\t{qty[i]}\t{price[product[i]]}\t{total[i]}"
            for i in range(b - a)
        ]

    copy_rows(
        "commerce_orderline",
        [
            "id",
            "order_id",
            "product_id",
            "sku",
            "name",
            "quantity",
            "unit_price_minor",
            "total_minor",
        ],
        len(s.line_order),
        lines,
    )
    t = time.perf_counter()
    with connection.cursor() as cursor:
        # VACUUM too: otherwise autovacuum takes up the freshly loaded tables (ten million
        # rows) while the training runs, and the first read of each row sets its hint bits
        cursor.execute("VACUUM (ANALYZE)")
    say(f"  VACUUM (ANALYZE) {time.perf_counter() - t:.1f} s")
    return time.perf_counter() - started


# --- serving over HTTP ---------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    out = []
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                ppid = int((child / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(child.name))
    return out


def _mix(rng: random.Random, s: Synthetic, count: int) -> list[tuple[str, str]]:
    """70% customers with history, 10% without, 20% related products."""
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.7:
            c = int(s.with_history[rng.randrange(len(s.with_history))])
            out.append(("history", f"/api/v1/customers/{c}/recommendations?n=10"))
        elif r < 0.8:
            c = int(s.without_history[rng.randrange(len(s.without_history))])
            out.append(("no history", f"/api/v1/customers/{c}/recommendations?n=10"))
        else:
            p = rng.randrange(1, s.n_products + 1)
            out.append(("related", f"/api/v1/products/{p}/related?n=5"))
    return out


def _q(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:.1f} / p95 {q[94]:.1f} / p99 {q[98]:.1f} ms (n={len(values)})"


def serve(args: argparse.Namespace, s: Synthetic, env: dict[str, str], key: str) -> None:
    import requests

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [str(Path(sys.executable).with_name("gunicorn")), "kizuna.wsgi",
         "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--threads", "4", "--worker-class", "gthread", "--log-level", "warning",
         "--timeout", "120"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(10)
    try:
        wait_for_http(base + "/login/", seconds=60)

        def round_(
            todo: list[tuple[str, str]], clients: int, fresh: bool = False
        ) -> dict[str, Any]:
            latencies: dict[str, list[float]] = {}
            codes: dict[int, int] = {}
            lock = threading.Lock()

            def client(mine: list[tuple[str, str]]) -> None:
                session = requests.Session()
                session.headers.update({"Authorization": f"Bearer {key}"})
                for what, path in mine:
                    if fresh:  # a new connection each time: every worker gets some
                        session.close()
                    t = time.perf_counter()
                    response = session.get(base + path, timeout=60)
                    took = (time.perf_counter() - t) * 1000
                    with lock:
                        latencies.setdefault(what, []).append(took)
                        codes[response.status_code] = codes.get(response.status_code, 0) + 1

            threads = [
                threading.Thread(target=client, args=(todo[i::clients],)) for i in range(clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return {"latencies": latencies, "codes": codes}

        t = time.perf_counter()
        # warm-up: each worker loads the ALS, popularity and co-purchase models once (new
        # connections, since a keep-alive connection stays with one worker)
        warm = round_(_mix(rng, s, 100 * args.workers), 2 * args.workers, fresh=True)
        say(
            f"\n(4) gunicorn gthread {args.workers} workers x 4 threads; warm-up "
            f"{sum(warm['codes'].values())} requests {warm['codes']} in "
            f"{time.perf_counter() - t:.1f} s (the workers load the 1M models)"
        )
        for clients in (1, 2):
            cpu0, wall0 = tree_cpu(server.pid), time.perf_counter()
            out = round_(_mix(rng, s, args.requests), clients)
            wall = time.perf_counter() - wall0
            every = [x for v in out["latencies"].values() for x in v]
            cpu = (tree_cpu(server.pid) - cpu0) / len(every) * 1000
            say(
                f"  {clients} client(s), {len(every)} requests {out['codes']}: "
                f"{len(every) / wall:.0f} req/s, server CPU {cpu:.1f} ms per request; {load()}"
            )
            say(f"    all         {_q(every)}")
            for what in ("history", "no history", "related"):
                say(f"    {what:11s} {_q(out['latencies'].get(what, []))}")
        workers = _children(server.pid)
        say(
            "  RSS per gunicorn worker: "
            + ", ".join(f"{_rss_mb(w):.0f} MB" for w in workers)
            + f" (master {_rss_mb(server.pid):.0f} MB)"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def cpu_probes(services: Any, postmaster: int) -> dict[str, tuple[float, float, float]]:
    """Wrap the training run's read, matrix build and per-kind training so that each records
    its CPU seconds in this process (all threads), in this connection's PostgreSQL backend
    and in the whole PostgreSQL server (every backend and worker, autovacuum included;
    from /proc: the server runs on this machine)."""
    from django.db import connection

    from kizuna.recommendations.engine import matrix as mx

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    out: dict[str, tuple[float, float, float]] = {}

    def probe(name: Callable[..., str], work: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            c, b, s = time.process_time(), tree_cpu(backend), tree_cpu(postmaster)
            try:
                return work(*a, **k)
            finally:
                out[name(*a, **k)] = (
                    time.process_time() - c,
                    tree_cpu(backend) - b,
                    tree_cpu(postmaster) - s,
                )

        return wrapped

    services.data.read_interactions = probe(lambda **_k: "read", services.data.read_interactions)
    services.mx.build = probe(lambda *_a, **_k: "matrix", mx.build)
    services.engine.train = probe(lambda kind, *_a, **_k: kind, services.engine.train)
    return out


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evaluate", action="store_true", help="with the holdout evaluation")
    parser.add_argument("--in-process", type=int, default=300, help="requests in process")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process round")
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument(
        "--train-only", action="store_true", help="load and train, no serving (for profiling)"
    )
    args = parser.parse_args()

    lock = open(LOCK, "a")  # noqa: SIM115 (held for the whole run)
    say(f"waiting for {LOCK} ... {load()}")
    fcntl.flock(lock, fcntl.LOCK_EX)
    began = time.perf_counter()
    say(f"have the lock; {load()}")
    tmp = Path(tempfile.mkdtemp(prefix="kz-bench-recs1m-"))
    server = postgres_executor(tmp, settings=PG_SETTINGS)
    server.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
        env.update(
            KIZUNA_DATABASE_URL=f"postgres://postgres@127.0.0.1:{server.port}/postgres",
            KIZUNA_DATA_DIR=str(tmp / "kizuna"),
            KIZUNA_LANGUAGE="en",
            DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        )
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        t = time.perf_counter()
        s = Synthetic(args.customers, args.products, args.lines)
        say(
            f"(1) generated {args.customers:,} customers ({len(s.with_history):,} with orders), "
            f"{args.products:,} products, {s.n_orders:,} orders, {len(s.line_order):,} lines in "
            f"{time.perf_counter() - t:.1f} s; loading through COPY ... {load()}"
        )
        took = load_data(s)
        say(f"  loaded in {took:.1f} s; {load()}")

        from kizuna.iam.services import api_key_create, staff_user_create
        from kizuna.recommendations import services
        from kizuna.recommendations.models import RunTrigger

        postmaster = int((tmp / "data" / "postmaster.pid").read_text().split()[0])
        cpu_of = cpu_probes(services, postmaster)
        say(f"\n(2) training through services.training_run_now (evaluate={args.evaluate}) ...")
        t, c = time.perf_counter(), time.process_time()
        run = services.training_run_now(
            trigger=RunTrigger.CLI,
            evaluate=args.evaluate,
            progress=lambda stage, pct: say(f"    {stage} ({pct}%) {load()}"),
        )
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        say(
            f"  run #{run.pk} {run.status} in {wall:.1f} s wall ({cpu:.1f} s CPU in this "
            f"process, target < 120 s); data {run.data}; stages (s) {run.timings['seconds']}; "
            f"{load()}"
        )
        say(
            "  CPU s per stage (this process / its PostgreSQL backend / the whole PostgreSQL "
            "server): "
            + ", ".join(f"{k} {x:.1f} / {y:.1f} / {z:.1f}" for k, (x, y, z) in cpu_of.items())
        )
        if run.evaluation:
            for kind, m in run.evaluation["kinds"].items():
                say(f"    {kind:12s} MAP@10 {m['map']:.4f} ({m.get('map_vs_popularity')}x)")

        if args.train_only:
            return
        staff = staff_user_create(
            username="bench-recs1m", password=os.urandom(16).hex(), role="support"
        )
        key = api_key_create(name="bench", role="support", created_by=staff).secret
        say("\n(3) in process")
        in_process(args, s.with_history.tolist()[:200_000], list(range(1, args.products + 1)), key)
        connection.close()
        serve(args, s, env, key)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"\nwhole run {time.perf_counter() - began:.0f} s; {load()}")
        lock.close()


if __name__ == "__main__":
    main()
