"""Recommendations (issue 10): quality on the demo, training at scale, API latency.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/recommendations.py demo \
        [--customers 20000] [--requests 2000]
    flock /tmp/kizuna-bench.lock .venv/bin/python bench/recommendations.py synthetic \
        [--customers 1000000] [--purchases 10000000] [--products 10000]
    KIZUNA_DATA_DIR=<a loaded demo> .venv/bin/python bench/recommendations.py profile \
        [--in-process 500] [--profile] [--show-sql] [--http]

demo: loads the demo business (`kizuna demo --no-serve --reset`, which trains and evaluates
the recommendation models as one of its steps) into a fresh SQLite data directory, prints
the holdout MAP@10 of each model against the popularity baseline (target: ALS >= 1.5x),
times the real read of the training data from the database rows and the matrix build
(CPU per row), then starts gunicorn on loopback and sends --requests requests from 4 client
threads (each its own HTTP connection) to GET /api/v1/customers/{id}/recommendations (80%)
and /api/v1/products/{id}/related (20%): p50/p95/p99 and the server's CPU per request
(target: p95 < 20 ms).

Before the HTTP rounds, `demo` sends the same mix through Django's request path in its own
process (test client, one request at a time): CPU and SQL statements per request, and with
--profile a cProfile of them. `profile` does that (and with --http the HTTP rounds) on a data
directory already loaded, e.g. to compare two versions of the code on the same data.

synthetic: customers x products purchases generated in NumPy with latent structure (50
taste clusters, Zipf popularity within each, 30% off-taste purchases, gamma activity per
customer) straight into the matrix builder's input; times the matrix build, each kind's
training on 2 threads and the writing of the model files (target: training < 2 minutes).
Prints CPU seconds and wall seconds per stage and the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import free_port, wait_for_http  # noqa: E402


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its live children (gunicorn's workers)."""
    total = _cpu(pid)
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                ppid = int((child / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                total += _cpu(int(child.name))
    return total


# --- demo: quality, matrix from the database, API latency ----------------------------------


def demo(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kz-bench-recs-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
        env.update(KIZUNA_DATA_DIR=str(data_dir), KIZUNA_LANGUAGE="en")
        print(f"loading the demo ({args.customers:,} customers) ... {load()}")
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 (our own console script)
            [str(Path(sys.executable).with_name("kizuna")), "demo", "--no-serve", "--reset",
             "--customers", str(args.customers)],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"demo loaded in {time.perf_counter() - started:.1f} s")
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
        import django

        django.setup()
        from django.db import connection

        from kizuna.catalog.models import Product
        from kizuna.core.timeutil import now
        from kizuna.customers.models import Customer
        from kizuna.iam.services import api_key_create, staff_user_create
        from kizuna.recommendations import data
        from kizuna.recommendations.engine import matrix as mx
        from kizuna.recommendations.models import RunTrigger, TrainingRun

        run = TrainingRun.objects.filter(trigger=RunTrigger.DEMO).latest("id")
        ev = run.evaluation
        print(
            f"\n(a) holdout: purchases from {ev['cutoff'][:10]} on of {ev['test_customers']:,}"
            f" customers (products new to them), k={ev['k']}; run #{run.pk}: {run.status},"
            f" {run.seconds:.1f} s, stages {run.timings['seconds']}"
        )
        base = ev["kinds"]["popularity"]["map"]
        for kind, m in ev["kinds"].items():
            print(
                f"  {kind:12s} MAP@10 {m['map']:.4f} ({m['map'] / base:.2f}x popularity)"
                f"  precision@10 {m['precision']:.4f}  recall@10 {m['recall']:.4f}"
                f"  coverage {m['coverage']:.3f}"
            )

        cpu0, wall0 = time.process_time(), time.perf_counter()
        interactions = data.read_interactions(until=now())
        cpu1, wall1 = time.process_time(), time.perf_counter()
        matrix = mx.build(interactions, data.product_ids())
        cpu2, wall2 = time.process_time(), time.perf_counter()
        n = len(interactions)
        print(
            f"\n(b') matrix from database rows (SQLite): {n:,} interactions "
            f"({int(interactions.purchase.sum()):,} purchase lines), {matrix.shape[0]:,} x "
            f"{matrix.shape[1]:,}; read {wall1 - wall0:.2f} s wall / {cpu1 - cpu0:.2f} s CPU "
            f"({(cpu1 - cpu0) / n * 1e6:.2f} us CPU per row), build {wall2 - wall1:.2f} s wall "
            f"/ {cpu2 - cpu1:.2f} s CPU; {load()}"
        )

        customers = list(Customer.objects.values_list("pk", flat=True))
        products = list(Product.objects.values_list("pk", flat=True))
        staff = staff_user_create(
            username="bench-recs", password=os.urandom(16).hex(), role="support"
        )
        key = api_key_create(name="bench", role="support", created_by=staff).secret
        in_process(args, customers, products, key)
        connection.close()
        api(args, env, customers, products, key)


def _paths(rng: random.Random, customers: list[int], products: list[int], count: int) -> list[str]:
    out = []
    for _ in range(count):
        if rng.random() < 0.8:
            out.append(f"/api/v1/customers/{rng.choice(customers)}/recommendations?n=10")
        else:
            out.append(f"/api/v1/products/{rng.choice(products)}/related?n=5")
    return out


def in_process(
    args: argparse.Namespace, customers: list[int], products: list[int], key: str
) -> None:
    """The same mix through Django's whole request path in this process (middleware, ninja,
    API-key check, route, JSON), one request at a time: CPU per request, SQL statements per
    request and, with --profile, where the CPU goes (cProfile on the CPU clock)."""
    import cProfile
    import pstats
    from collections import Counter

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = ["*"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    rng = random.Random(11)
    for path in _paths(rng, customers, products, 100):  # warm-up: models, caches
        assert client.get(path).status_code == 200
    for path in (
        f"/api/v1/customers/{customers[0]}/recommendations?n=10",
        f"/api/v1/products/{products[0]}/related?n=5",
    ):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        print(f"  SQL per request, {path.split('/')[3]}: {len(captured.captured_queries)}")
        if args.show_sql:
            for q in captured.captured_queries:
                print("     ", q["sql"][:160])
    todo = _paths(rng, customers, products, args.in_process)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    codes = Counter(client.get(path).status_code for path in todo)
    if profiler:
        profiler.disable()
    cpu, wall, n = time.process_time() - cpu0, time.perf_counter() - wall0, len(todo)
    print(
        f"\n(c') in process (Django test client, one at a time), {n} requests {dict(codes)}: "
        f"{cpu / n * 1000:.2f} ms CPU, {wall / n * 1000:.2f} ms wall per request"
        f"{' (profiled)' if profiler else ''}; {load()}"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def profile(args: argparse.Namespace) -> None:
    """`in_process` (and with --http the gunicorn rounds) on an already loaded data
    directory (KIZUNA_DATA_DIR), e.g. one left by `kizuna demo --no-serve`: for comparing
    two versions of the request path on the same data without reloading a demo."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
    import django

    django.setup()
    from kizuna.catalog.models import Product
    from kizuna.core.timeutil import now
    from kizuna.customers.models import Customer
    from kizuna.iam.models import ApiKey
    from kizuna.iam.services import api_key_create, staff_user_create

    customers = list(Customer.objects.values_list("pk", flat=True))
    products = list(Product.objects.values_list("pk", flat=True))
    name = f"bench-recs-{os.getpid()}"
    staff = staff_user_create(username=name, password=os.urandom(16).hex(), role="support")
    issued = api_key_create(name=name, role="support", created_by=staff)
    try:
        in_process(args, customers, products, issued.secret)
        if args.http:
            from django.db import connection

            connection.close()
            api(args, dict(os.environ), customers, products, issued.secret)
    finally:
        ApiKey.objects.filter(pk=issued.api_key.pk).update(revoked_at=now())


def api(
    args: argparse.Namespace,
    env: dict[str, str],
    customers: list[int],
    products: list[int],
    key: str,
) -> None:
    import requests

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [str(Path(sys.executable).with_name("gunicorn")), "kizuna.wsgi",
         "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--threads", "4", "--worker-class", "gthread", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(10)
    try:
        wait_for_http(base + "/login/", seconds=30)

        def paths(count: int) -> list[str]:
            return _paths(rng, customers, products, count)

        def round_(todo: list[str], clients: int) -> tuple[list[float], dict[int, int]]:
            latencies: list[float] = []
            codes: dict[int, int] = {}
            lock = threading.Lock()
            chunks = [todo[i::clients] for i in range(clients)]

            def client(mine: list[str]) -> None:
                session = requests.Session()
                session.headers.update(headers)
                for path in mine:
                    t = time.perf_counter()
                    response = session.get(base + path, timeout=30)
                    took = (time.perf_counter() - t) * 1000
                    with lock:
                        latencies.append(took)
                        codes[response.status_code] = codes.get(response.status_code, 0) + 1

            threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return latencies, codes

        round_(paths(200), args.clients)  # warm-up: every worker loads the models once
        print(f"\n(c) API over HTTP: gunicorn gthread {args.workers} workers x 4 threads")
        for clients in sorted({1, 2, args.clients}):
            cpu0, wall0 = tree_cpu(server.pid), time.perf_counter()
            latencies, codes = round_(paths(args.requests), clients)
            wall = time.perf_counter() - wall0
            cpu = (tree_cpu(server.pid) - cpu0) / len(latencies) * 1000
            q = statistics.quantiles(latencies, n=100)
            print(
                f"  {clients} client(s), closed loop, {len(latencies)} requests {codes}: "
                f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, max "
                f"{max(latencies):.1f} ms, {len(latencies) / wall:.0f} req/s; server CPU "
                f"{cpu:.1f} ms per request; {load()}"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


# --- synthetic: training at scale ----------------------------------------------------------


def synthetic(args: argparse.Namespace) -> None:
    import numpy as np

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
    os.environ.setdefault("KIZUNA_DATA_DIR", tempfile.mkdtemp(prefix="kz-bench-recs-"))
    import django

    django.setup()
    from kizuna.recommendations.engine import matrix as mx
    from kizuna.recommendations.engine import models as engine
    from kizuna.recommendations.engine.training import Params

    rng = np.random.default_rng(7)
    n_c, n_p, n = args.customers, args.products, args.purchases
    clusters = 50
    print(f"generating {n:,} purchases of {n_c:,} customers x {n_p:,} products ... {load()}")
    t = time.perf_counter()
    activity = rng.gamma(0.8, 1.0, n_c)
    cum = np.cumsum(activity)
    customer = np.searchsorted(cum, rng.random(n) * cum[-1]).astype(np.int64)
    taste = rng.integers(0, clusters, n_c)
    per_cluster = n_p // clusters
    zipf_in = np.cumsum(1.0 / np.arange(1, per_cluster + 1) ** 1.1)
    j = np.searchsorted(zipf_in, rng.random(n) * zipf_in[-1])
    on_taste = taste[customer] + clusters * j
    zipf_all = np.cumsum(1.0 / np.arange(1, n_p + 1) ** 0.9)
    off_taste = np.searchsorted(zipf_all, rng.random(n) * zipf_all[-1])
    product = np.where(rng.random(n) < 0.7, on_taste, off_taste).astype(np.int64)
    interactions = mx.Interactions(
        customers=customer + 1,
        products=product + 1,
        weights=np.ones(n, np.float32),
        times=rng.integers(1_700_000_000, 1_760_000_000, n),
        purchase=np.ones(n, bool),
    )
    print(f"generated in {time.perf_counter() - t:.1f} s")
    params = Params(threads=2)
    stages: list[tuple[str, float, float]] = []

    def timed(name: str, work):  # type: ignore[no-untyped-def]
        c, w = time.process_time(), time.perf_counter()
        out = work()
        stages.append((name, time.perf_counter() - w, time.process_time() - c))
        print(f"  {name:14s} {stages[-1][1]:7.1f} s wall {stages[-1][2]:7.1f} s CPU   {load()}")
        return out

    matrix = timed("matrix build", lambda: mx.build(interactions, np.arange(1, n_p + 1)))
    print(f"  matrix {matrix.shape[0]:,} x {matrix.shape[1]:,}, {matrix.weights.nnz:,} non-zeros")
    groups = np.asarray([f"JP-{g:02d}" for g in rng.integers(1, 48, matrix.shape[0])])
    out = Path(os.environ["KIZUNA_DATA_DIR"]) / "bench-recs"
    for kind in engine.KINDS:
        model = timed(f"train {kind}", lambda kind=kind: engine.train(kind, matrix, params, groups))
        timed(f"save {kind}", lambda model=model, kind=kind: model.save(out / f"{kind}.npz"))
        del model
    train = sum(w for name, w, _c in stages if name.startswith("train"))
    total = sum(w for _name, w, _c in stages)
    print(
        f"training (4 kinds) {train:.1f} s wall; matrix build + training + files {total:.1f} s "
        f"wall (target < 120 s); {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("demo")
    d.add_argument("--customers", type=int, default=20_000)
    d.add_argument("--requests", type=int, default=2000)
    d.add_argument("--clients", type=int, default=4)
    d.add_argument("--workers", type=int, default=2)
    p = sub.add_parser("profile", help="in-process request cost on KIZUNA_DATA_DIR's data")
    p.add_argument("--http", action="store_true", help="then the gunicorn rounds of `demo`")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    for sp in (d, p):
        sp.add_argument("--in-process", type=int, default=500, help="requests in process")
        sp.add_argument("--profile", action="store_true", help="cProfile the in-process round")
        sp.add_argument("--show-sql", action="store_true")
    s = sub.add_parser("synthetic")
    s.add_argument("--customers", type=int, default=1_000_000)
    s.add_argument("--purchases", type=int, default=10_000_000)
    s.add_argument("--products", type=int, default=10_000)
    args = parser.parse_args()
    {"demo": demo, "profile": profile, "synthetic": synthetic}[args.what](args)


if __name__ == "__main__":
    main()
