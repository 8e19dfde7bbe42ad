"""Single-redemption latency through the REST API under 20 concurrent clients.

    .venv/bin/python bench/loyalty_redeem_api.py [--clients 20] [--requests 2000] [--rate 2]
        [--bare]

Starts its own PostgreSQL (bench/loyalty_pg.py) and a real gunicorn server on loopback
(gthread workers), creates members with points and a reward, then 20 client threads (each
its own HTTP connection) POST /api/v1/customers/{id}/loyalty/redemptions with a fresh
Idempotency-Key. Two closed-loop rounds (each client sends its next request as soon as the
last one is answered): members spread over 2,000 customers, then every client on one hot
customer (all requests serialise on that member's row lock); then a floor round: the same
clients GET the balance (API key, Django, ninja, two reads, no write), what any request of
this stack costs on this machine. Prints p50/p95/p99 and
throughput, and the CPU the server (gunicorn workers, PostgreSQL) spent per request; checks
afterwards that the ledger equals the balances. Target: p95 < 50 ms.

With --rate R, a third round follows at a stated offered load (open loop): each client
sends R requests a second on a fixed schedule, spread over the 2,000 members, and latency is
measured from the moment a request was due (a late send counts its wait), so a server that
falls behind shows it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loyalty_pg import postgres, setup_django  # noqa: E402
from support import wait_for_http  # noqa: E402

MEMBERS = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(pid: int) -> float:
    """CPU seconds of a process and of its children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of `root`, its exited children and its live children."""
    total = _cpu(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == root:
            total += sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return total


def postmaster_pid(port: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"postgres") and str(port).encode() in b" ".join(cmd):
            return int(entry.name)
    return None


def round_(
    base: str,
    key: str,
    customers: list[int],
    clients: int,
    total: int,
    rate: float | None = None,
    read_only: bool = False,
) -> dict:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    per_client = total // clients
    barrier = threading.Barrier(clients)
    late = [0]

    def client(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        barrier.wait()
        mine = []
        start = time.perf_counter() + (seed / clients) / rate if rate else 0.0
        for i in range(per_client):
            customer = rng.choice(customers)
            started = time.perf_counter()
            if rate:  # open loop: the request is due at its slot, sent then or late
                due = start + i / rate
                if due > started:
                    time.sleep(due - started)
                else:
                    with lock:
                        late[0] += 1
                started = due
            if read_only:  # the floor: the same client, auth and stack, no write
                r = session.get(f"{base}/api/v1/customers/{customer}/loyalty", timeout=30)
            else:
                r = session.post(
                    f"{base}/api/v1/customers/{customer}/loyalty/redemptions",
                    json={"reward": "shot"},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                    timeout=30,
                )
            mine.append((time.perf_counter() - started, r.status_code))
        session.close()
        with lock:
            for seconds, code in mine:
                latencies.append(seconds * 1000)
                codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "codes": codes,
        "p50": statistics.median(latencies),
        "p95": q[94],
        "p99": q[98],
        "max": max(latencies),
        "rps": len(latencies) / wall,
        "late": late[0],
    }


def gunicorn(
    app: str, workers: int, threads: int, env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [
            str(Path(sys.executable).with_name("gunicorn")),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
        ],
        cwd=cwd,
        env=env,
    )
    return server, f"http://127.0.0.1:{port}"


def bare_round(args: argparse.Namespace, key: str, customers: list[int], env: dict) -> None:
    """The same clients and gunicorn against an app that does nothing: what HTTP alone
    costs here, the floor under any Django route."""
    server, base = gunicorn("wsgi_floor", args.workers, args.threads, env, ROOT / "bench")
    try:
        wait_for_http(base + "/", seconds=20)
        round_(base, key, customers, args.clients, 200)
        web0 = tree_cpu(server.pid)
        client0 = time.process_time()
        r = round_(base, key, customers, args.clients, args.requests)
        client = (time.process_time() - client0) / r["requests"] * 1000
        web = (tree_cpu(server.pid) - web0) / r["requests"] * 1000
        print(
            f"floor: closed loop, bare WSGI app (no Django, no database): {r['requests']} "
            f"requests {r['codes']}, p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, "
            f"p99 {r['p99']:.1f} ms, {r['rps']:.0f} req/s; CPU per request: gunicorn {web:.1f} ms, "
            f"client {client:.1f} ms"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument(
        "--rate", type=float, default=0, help="also an open-loop round: requests/s per client"
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="also a round against a WSGI app that does nothing (bench/wsgi_floor.py)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kz-bench-") as data_dir, postgres() as url:
        setup_django(url, data_dir)
        from django.db import connection

        from kizuna.customers.services import customer_create
        from kizuna.iam.services import api_key_create, staff_user_create
        from kizuna.loyalty import services
        from kizuna.loyalty.models import Account, Programme, Reward
        from kizuna.loyalty.selectors import ledger_replay

        Programme.objects.create(name="bench")
        Reward.objects.create(code="shot", name="Espresso shot", points_price=10)
        customers = []
        for i in range(MEMBERS):
            c = customer_create(data={"family_name": "Bench", "given_name": str(i)})
            services.points_award(
                customer=c, points=100_000, idempotency_key=f"seed:{i}", reason="bench"
            )
            customers.append(c.pk)
        staff = staff_user_create(username="bench", password=uuid.uuid4().hex, role="support")
        key = api_key_create(name="bench", role="support", created_by=staff).secret
        connection.close()

        env = {**os.environ, "KIZUNA_DATABASE_URL": url, "KIZUNA_DATA_DIR": data_dir}
        server, base = gunicorn("kizuna.wsgi", args.workers, args.threads, env, ROOT)
        postmaster = postmaster_pid(int(url.rsplit(":", 1)[1].split("/")[0]))
        try:
            wait_for_http(base + "/login/", seconds=20)
            round_(base, key, customers, args.clients, 200)  # warm-up: connections, caches
            print(
                f"gunicorn gthread {args.workers} workers x {args.threads} threads, "
                f"{args.clients} clients, PostgreSQL on loopback"
            )
            rounds: list[tuple[str, list[int], float | None, bool]] = [
                ("closed loop, spread over 2,000 members", customers, None, False),
                ("closed loop, one hot member", customers[:1], None, False),
                # What the stack itself costs: a read of the balance through the same client,
                # API key check, Django and ninja; if this one misses 50 ms at 20 clients the
                # redemption on top of it cannot meet it on this machine.
                ("floor: closed loop, GET balance (no write)", customers, None, True),
            ]
            if args.rate:
                rounds.append(
                    (
                        f"open loop at {args.rate:g} req/s per client "
                        f"({args.rate * args.clients:g} req/s offered), spread over 2,000 members",
                        customers,
                        args.rate,
                        False,
                    )
                )
            for label, pool, rate, read_only in rounds:
                web0 = tree_cpu(server.pid)
                db0 = tree_cpu(postmaster) if postmaster else 0.0
                client0 = time.process_time()
                r = round_(base, key, pool, args.clients, args.requests, rate, read_only)
                client = (time.process_time() - client0) / r["requests"] * 1000
                web = (tree_cpu(server.pid) - web0) / r["requests"] * 1000
                db = ((tree_cpu(postmaster) - db0) if postmaster else 0.0) / r["requests"] * 1000
                print(
                    f"{label}: {r['requests']} requests {r['codes']}, p50 {r['p50']:.1f} ms, "
                    f"p95 {r['p95']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms, "
                    f"{r['rps']:.0f} req/s; CPU per request: gunicorn {web:.1f} ms, "
                    f"PostgreSQL {db:.1f} ms, client {client:.1f} ms"
                    + (f"; {r['late']} sent late" if rate else "")
                )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        if args.bare:
            bare_round(args, key, customers, env)
        bad = sum(ledger_replay(account=a)[0] != a.balance for a in Account.objects.all())
        print(f"check: {Account.objects.count()} accounts replayed, {bad} mismatches")


if __name__ == "__main__":
    main()
