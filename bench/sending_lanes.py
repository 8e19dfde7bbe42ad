# ruff: noqa: S603, E501 (a bench starting local processes; embedded script text)
"""Lanes under load (issue 12): a bulk campaign sending to loopback SMTP while transactional
messages are injected; transactional latency, bulk throughput, and raw smtplib for the same
bulk messages in the same run.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/sending_lanes.py [--messages 20000]
        [--bulk-workers 2] [--inject-every 0.5] [--dkim off|on]
        [--db sqlite|postgresql] [--queue sqlite|redis] [--sink aiosmtpd|smtp-sink]
        [--send-concurrency 1] [--send-group 20]

`--db postgresql` runs a throwaway PostgreSQL server (bench/support.py) for the database;
`--queue redis` a throwaway redis-server on loopback (no persistence) for the Huey queues.

A fresh data directory (SQLite, Huey on SQLite): N customers with an opt-in, an MJML
newsletter queued as a campaign (`campaign:…` → the bulk lane). Then `--bulk-workers`
processes of `kizuna worker --lane bulk` (one sending thread each: KIZUNA_SEND_CONCURRENCY=1)
and one `kizuna worker --lane transactional` start; an injector process queues one receipt
(`order:…`, transactional) every `--inject-every` seconds while bulk is sending. The SMTP
server (aiosmtpd, in this process) stamps each arrival: a receipt's latency is its arrival
minus the moment it was queued (committed), both wall clock on this machine.

`--sink smtp-sink` receives with Postfix's `smtp-sink` instead (Debian package postfix; a C
test server made for measuring SMTP clients, at a small fraction of aiosmtpd's CPU per
message, so the two cores go to the sender): each message is dumped to a file in a tmpfs
directory and a receipt's arrival is its file's modification time. The raw smtplib baseline
then sends to the same smtp-sink.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from messaging_send import PRERENDER, SETUP, session_cpu  # bench/messaging_send.py
from support import free_port, postgres_executor  # bench/support.py
from workdirs import bench_workdir  # bench/workdirs.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]

INJECT = """
import sys, time
import django
django.setup()
from kizuna.customers import services as cs
from kizuna.messaging import services
from kizuna.messaging.models import Channel
from pathlib import Path
every, stop = float(sys.argv[1]), Path(sys.argv[2])
channel = Channel.objects.get(name="bench")
template = services.template_save(slug="receipt", name="receipt", channel_kind="email",
    body_format="html", purpose="transactional",
    variants={"ja": {"subject": "ご注文ありがとうございます", "body": "<p>{{ customer.name }}様 ご注文を承りました。</p>"}})
i = 0
while not stop.exists():
    c = cs.customer_create(data={"family_name": "買", "given_name": f"{i}", "email": f"tx{i}@example.jp"})
    services.delivery_enqueue(source=f"order:{i}", customer=c, channel=channel, template=template)
    print(f"tx{i}@example.jp {time.time():.6f}", flush=True)  # after the commit (autocommit)
    i += 1
    time.sleep(every)
"""


class Stamping:
    """Accepts every message; stamps the arrival time of each recipient."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        with self.lock:
            self.count += 1
            for rcpt in envelope.rcpt_tos:
                if rcpt.startswith("tx"):
                    self.arrivals[rcpt] = at
        return "250 OK"


class SmtpSink:
    """Postfix's smtp-sink on loopback, each message dumped to a file of its own in tmpfs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dumps = Path(tempfile.mkdtemp(prefix="kz-sink-", dir="/dev/shm"))
        self.dumps.chmod(0o777)  # smtp-sink drops root privileges to nobody
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        if not Path(binary).exists():
            raise SystemExit("smtp-sink not found: apt-get install postfix (Debian)")
        self.process = subprocess.Popen(
            [binary, "-u", "nobody", "-d", f"{self.dumps}/%H%M%S.", f"127.0.0.1:{self.port}", "256"]
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            with contextlib.suppress(OSError), smtplib.SMTP("127.0.0.1", self.port, timeout=2):
                return
            time.sleep(0.1)
        raise SystemExit("smtp-sink did not start")

    @property
    def count(self) -> int:
        return sum(1 for _ in self.dumps.iterdir())

    @property
    def arrivals(self) -> dict[str, float]:
        """Receipts' arrival times: the dump file's mtime, by recipient."""
        found: dict[str, float] = {}
        for path in self.dumps.iterdir():
            with path.open("rb") as dump:
                head = dump.read(400)
            start = head.find(b"X-Rcpt-Args: <")
            if start < 0 or head[start + 14 : start + 16] != b"tx":
                continue
            rcpt = head[start + 14 : head.index(b">", start)].decode()
            found[rcpt] = path.stat().st_mtime_ns / 1e9
        return found

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dumps, ignore_errors=True)


class Counter:
    """Counts rows with SQL on the bench's database (SQLite file or PostgreSQL URL)."""

    def __init__(self, sqlite: Path | None = None, url: str = "") -> None:
        self.sqlite, self.url = sqlite, url
        self.conn: Any = None

    def __call__(self, sql: str) -> int:
        if self.sqlite is not None:
            import sqlite3

            with sqlite3.connect(self.sqlite, timeout=30) as conn:
                return int(conn.execute(sql).fetchone()[0])
        import psycopg

        if self.conn is None:
            self.conn = psycopg.connect(self.url, autocommit=True)
        return int(self.conn.execute(sql).fetchone()[0])


@contextlib.contextmanager
def backends(workdir: Path, db: str, queue: str) -> Any:
    """Environment additions and a row counter for the chosen database and queue."""
    extra: dict[str, str] = {}
    stack = contextlib.ExitStack()
    with stack:
        if db == "postgresql":
            import psycopg

            (workdir / "pg").mkdir()
            executor = postgres_executor(
                workdir / "pg", settings="-c shared_buffers=256MB -c max_wal_size=2GB"
            )
            executor.start()
            stack.callback(executor.stop)
            executor.wait_for_postgres()
            base = f"postgres://postgres@127.0.0.1:{executor.port}"
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute('CREATE DATABASE "kizuna_bench"')
            extra["KIZUNA_DATABASE_URL"] = f"{base}/kizuna_bench"
            counter = Counter(url=extra["KIZUNA_DATABASE_URL"])
        else:
            counter = Counter(sqlite=workdir / "kizuna.sqlite3")
        if queue == "redis":
            port = free_port()
            redis = subprocess.Popen(
                [shutil.which("redis-server") or "/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            stack.callback(redis.wait, 10)
            stack.callback(redis.terminate)
            time.sleep(0.5)
            extra["KIZUNA_QUEUE_URL"] = f"redis://127.0.0.1:{port}/0"
        yield extra, counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--bulk-workers", type=int, default=2)
    parser.add_argument("--inject-every", type=float, default=0.5)
    parser.add_argument("--dkim", choices=["on", "off"], default="off")
    parser.add_argument("--timeout", type=float, default=420)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--queue", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--sink", choices=["aiosmtpd", "smtp-sink"], default="aiosmtpd")
    parser.add_argument("--send-concurrency", type=int, default=1, help="threads per worker")
    parser.add_argument("--send-group", type=int, default=20, help="deliveries per claim")
    args = parser.parse_args()
    workdir = bench_workdir("kz-bench-lanes-")
    with backends(workdir, args.db, args.queue) as (extra, count):
        run(args, workdir, extra, count)


def run(args: argparse.Namespace, workdir: Path, extra: dict[str, str], count: Counter) -> None:
    print(
        f"database {args.db}, queue {args.queue}, sink {args.sink}, "
        f"send concurrency {args.send_concurrency}, group {args.send_group}; load before: {os.getloadavg()}",
        flush=True,
    )

    server: Any
    if args.sink == "smtp-sink":
        server = handler = SmtpSink()
    else:
        handler = Stamping()
        server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(workdir),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_QUIET_HOURS="off",
        KIZUNA_LOG_LEVEL="WARNING",
        KIZUNA_SEND_CONCURRENCY=str(args.send_concurrency),
        KIZUNA_SEND_GROUP=str(args.send_group),
        **extra,
    )
    workers: list[subprocess.Popen[bytes]] = []
    injector = None
    try:
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
        setup_started = time.perf_counter()
        queued = subprocess.run(
            [sys.executable, "-c", SETUP, str(server.port), str(args.messages), args.dkim],
            env=env, check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        assert queued.stdout.strip().splitlines()[-1] == str(args.messages), queued.stdout
        print(f"setup (not timed): {time.perf_counter() - setup_started:.0f} s", flush=True)
        stop = workdir / "stop-injecting"
        started = time.perf_counter()
        for lane in ["transactional"] + ["bulk"] * args.bulk_workers:
            workers.append(
                subprocess.Popen(
                    [*KIZUNA, "worker", "--lane", lane],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=(workdir / f"worker-{lane}-{len(workers)}.log").open("wb"),
                    start_new_session=True,
                )
            )
        bulk_sql = (
            "select count(*) from messaging_delivery where lane = 'bulk' "
            "and status in ('sent', 'failed', 'refused', 'unknown')"
        )
        first: tuple[int, float, float] | None = None
        injector_started = False
        done = 0
        deadline = started + args.timeout
        while time.perf_counter() < deadline and done < args.messages:
            time.sleep(0.2)
            done = count(bulk_sql)
            if done >= 0.9 * args.messages:
                stop.touch()  # receipts only while bulk is still sending
            if first is None and done:
                cpu = sum(session_cpu(w.pid) for w in workers[1:])
                first = (done, cpu, time.perf_counter())
            if done and not injector_started:
                # Receipts while the bulk backlog is being sent, until it is nearly done.
                injector_started = True
                injector = subprocess.Popen(
                    [sys.executable, "-c", INJECT, str(args.inject_every), str(stop)],
                    env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
        elapsed = time.perf_counter() - started
        stop.touch()
        last_cpu = sum(session_cpu(w.pid) for w in workers[1:])
        last = (done, last_cpu, time.perf_counter())
        queued_at: dict[str, float] = {}
        if injector is not None:
            out, _err = injector.communicate(timeout=120)
            for line in out.splitlines():
                addr, ts = line.split()
                queued_at[addr] = float(ts)
        time.sleep(3)  # the last receipts' arrival
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            w.wait(timeout=30)
    sent = count("select count(*) from messaging_delivery where lane='bulk' and status='sent'")
    rate = sent / elapsed
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"bulk: {sent}/{args.messages} sent in {elapsed:.1f} s = {rate:.0f} messages/s "
        f"({args.bulk_workers} bulk worker processes x {args.send_concurrency} sending threads, "
        f"DKIM {args.dkim}; includes start-up)"
    )
    if first is not None and last[0] > first[0]:
        n = last[0] - first[0]
        steady = n / (last[2] - first[2])
        cpu_ms = (last[1] - first[1]) * 1000 / n
        print(
            f"bulk steady state ({n} messages): {steady:.0f} messages/s; bulk worker CPU {cpu_ms:.2f} ms/message"
        )
    arrivals = handler.arrivals
    latencies = sorted(arrivals[a] - t for a, t in queued_at.items() if a in arrivals)
    missing = [a for a in queued_at if a not in arrivals]
    if latencies:
        p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
        print(
            f"transactional: {len(latencies)} receipts injected while bulk was sending, "
            f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms; not arrived: {len(missing)}"
        )
    print(f"load average at the end of the kizuna run: {load}")

    # Baseline: the same bulk messages pre-rendered, plain smtplib, one connection.
    dump = workdir / "messages.bin"
    subprocess.run([sys.executable, "-c", PRERENDER, str(dump)], env=env, check=True, cwd=ROOT)
    data = dump.read_bytes()
    messages = []
    pos = 0
    while pos < len(data):  # sender \0 to \0 size \0 raw, read by offset (no copies)
        a = data.index(b"\0", pos)
        b = data.index(b"\0", a + 1)
        c = data.index(b"\0", b + 1)
        n = int(data[b + 1 : c])
        to = data[a + 1 : b]
        if not to.startswith(b"tx"):
            messages.append((data[pos:a].decode(), to.decode(), data[c + 1 : c + 1 + n]))
        pos = c + 1 + n
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="bench") as smtp:
        for sender, to, raw in messages:
            smtp.sendmail(sender, [to], raw)
    raw_rate = len(messages) / (time.perf_counter() - t0)
    server.stop()
    print(
        f"raw smtplib (pre-rendered, one connection): {len(messages)} at {raw_rate:.0f} messages/s"
    )
    print(f"ratio kizuna bulk / raw smtplib: {rate / raw_rate:.2f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for log in sorted(workdir.glob("worker-*.log")):
        text = log.read_text(errors="replace").strip()
        if text:  # warnings and errors of the workers (KIZUNA_LOG_LEVEL=WARNING)
            print(f"--- {log.name} (last lines)\n" + "\n".join(text.splitlines()[-15:]))


if __name__ == "__main__":
    main()
