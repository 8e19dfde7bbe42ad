# ruff: noqa: S603, E501 (a bench starting local processes; embedded script text)
"""Render + send personalised emails through `kizuna worker` to a real SMTP server on loopback.

    .venv/bin/python bench/messaging_send.py [--messages 3000] [--workers 2]
        [--worker-type process|thread] [--dkim on|off]

In a fresh data directory (SQLite, Huey on SQLite, the embedded default): N customers with a
recorded opt-in, an MJML newsletter personalised per customer, an email channel pointing at
an aiosmtpd server in this process. The campaign is queued with `delivery_enqueue_many`
(tasks of 50 deliveries), then `kizuna worker` is started and the clock runs until every
delivery is `sent`: each one is claimed, checked against consent, suppression and frequency
cap, rendered (Jinja2 sandbox + MJML + CSS inlining + text part), DKIM-signed, sent, and
recorded (status history + `email.sent` on the timeline).

The baseline: the same messages, already rendered and signed, sent with plain `smtplib`
over one connection from one process. Prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from support import SmtpCounter, free_port  # bench/support.py
from workdirs import bench_workdir  # bench/workdirs.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]

SETUP = """
import sys
import django
django.setup()
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kizuna.core.timeutil import now
from kizuna.customers.models import ConsentEntry, Customer, Identity
from kizuna.messaging import services
port, total, dkim = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "on"
credentials, settings = {}, {"host": "127.0.0.1", "port": port, "from_address": "news@kizuna.example",
    "from_name": "絆商店", "physical_address": "〒150-0001 東京都渋谷区神宮前1-2-3",
    "bounce_domain": "bounce.kizuna.example"}
if dkim:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    credentials["dkim_private_key"] = key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
    settings["dkim_selector"] = "kz1"
channel = services.channel_save(kind="email", name="bench", settings=settings, credentials=credentials)
template = services.template_save(slug="bench", name="bench", channel_kind="email", body_format="mjml",
    topic="sale", variants={"ja": {"subject": "{{ customer.name }}様へ 秋のセールのお知らせ", "body": '''<mjml>
  <mj-head><mj-style inline="inline">.lead { color: #7c4a2d; font-size: 16px; }</mj-style></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text css-class="lead">{{ customer.name }}様、いつもありがとうございます。</mj-text>
      <mj-text>{% if traits.get('favourite') %}お気に入りの{{ traits.favourite }}が入荷しました。{% else %}新商品が入荷しました。{% endif %}</mj-text>
      <mj-button href="https://shop.example.jp/sale?c={{ customer.id }}">セールを見る</mj-button>
    </mj-column></mj-section>
  </mj-body>
</mjml>'''}})
at = now()
customers = Customer.objects.bulk_create([Customer(family_name="山田", given_name=f"{i}号",
    email=f"c{i}@example.jp", traits={"favourite": "抹茶"} if i % 2 else {}) for i in range(total)],
    batch_size=1000)
Identity.objects.bulk_create([Identity(customer=c, kind="email", value=c.email) for c in customers],
    batch_size=1000)
ConsentEntry.objects.bulk_create([ConsentEntry(customer=c, purpose="marketing", channel="email",
    status="granted", source="bench", recorded_at=at) for c in customers], batch_size=1000)
print(services.delivery_enqueue_many(source="campaign:bench", customer_ids=[c.pk for c in customers],
    channel=channel, template=template))
"""

PRERENDER = """
import sys
import django
django.setup()
from kizuna.messaging.channels import OutboundMessage
from kizuna.messaging.channels.email import EmailSession
from kizuna.messaging.models import Delivery
out = open(sys.argv[1], "wb")
session = None
for d in Delivery.objects.select_related("channel", "customer").order_by("id"):
    session = session or EmailSession(d.channel)
    sender, raw = session.prepare(OutboundMessage(d.pk, d.idempotency_key, d.to_address, d.rendered,
                                                  True, d.customer.display_name))
    out.write(sender.encode() + b"\\0" + d.to_address.encode() + b"\\0" + str(len(raw)).encode() + b"\\0" + raw)
"""


TICK = os.sysconf("SC_CLK_TCK")


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of session `sid` (the
    worker and the processes it started), from /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (stat field 3): the session is field 6, utime/stime 14/15.
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-type", choices=["process", "thread"], default="process")
    parser.add_argument("--dkim", choices=["on", "off"], default="on")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    handler = SmtpCounter()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    workdir = bench_workdir("kz-bench-msg-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(workdir),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_QUIET_HOURS="off",
        KIZUNA_LOG_LEVEL="WARNING",
    )
    try:
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
        queued = subprocess.run(
            [sys.executable, "-c", SETUP, str(server.port), str(args.messages), args.dkim],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert queued.stdout.strip().splitlines()[-1] == str(args.messages), queued.stdout
        db = workdir / "kizuna.sqlite3"
        sent_sql = "select count(*) from messaging_delivery where status = 'sent'"
        started = time.perf_counter()
        worker = subprocess.Popen(
            [*KIZUNA, "worker", "--workers", str(args.workers), "-k", args.worker_type],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = started + args.timeout
            done_sql = (
                "select count(*) from messaging_delivery "
                "where status in ('sent', 'failed', 'refused', 'unknown')"
            )
            # Steady state: CPU of the worker's processes and of this process (the SMTP
            # server's thread, the polling) between the first and the last finished delivery.
            first: tuple[int, float, float, float] | None = None
            done = 0
            while time.perf_counter() < deadline and done < args.messages:
                time.sleep(0.1)
                done = count(db, done_sql)
                if first is None and done:
                    first = (
                        done,
                        session_cpu(worker.pid),
                        time.process_time(),
                        time.perf_counter(),
                    )
            elapsed = time.perf_counter() - started
            last = (done, session_cpu(worker.pid), time.process_time(), time.perf_counter())
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        sent = count(db, sent_sql)
        other = count(db, "select count(*) from messaging_delivery where status != 'sent'")
        kizuna_rate = sent / elapsed
        print(
            f"kizuna worker ({args.workers} {args.worker_type} workers, DKIM {args.dkim}): "
            f"{sent}/{args.messages} sent in {elapsed:.1f} s = {kizuna_rate:.0f} messages/s "
            f"(includes worker start-up); not sent: {other}; SMTP server received {handler.count}"
        )
        if first is not None and last[0] > first[0]:
            n = last[0] - first[0]
            worker_ms = (last[1] - first[1]) * 1000 / n
            server_ms = (last[2] - first[2]) * 1000 / n
            steady = n / (last[3] - first[3])
            print(
                f"worker start-up: first delivery finished {first[3] - started:.1f} s after the "
                f"start, worker CPU by then {first[1]:.1f} s"
            )
            print(
                f"steady state ({n} deliveries): {steady:.0f} messages/s; CPU per message: "
                f"worker processes {worker_ms:.2f} ms, SMTP server + polling {server_ms:.2f} ms; "
                f"CPU-bound ceiling on {os.cpu_count()} idle cores: "
                f"{(os.cpu_count() or 1) * 1000 / (worker_ms + server_ms):.0f} messages/s"
            )
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        # Baseline: the same messages pre-rendered (and signed), plain smtplib, one connection.
        dump = workdir / "messages.bin"
        subprocess.run([sys.executable, "-c", PRERENDER, str(dump)], env=env, check=True, cwd=ROOT)
        data = dump.read_bytes()
        messages = []
        while data:
            sender, to, size, rest = data.split(b"\0", 3)
            n = int(size)
            messages.append((sender.decode(), to.decode(), rest[:n]))
            data = rest[n:]
        before = handler.count
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", server.port, local_hostname="bench") as smtp:
            for sender, to, raw in messages:
                smtp.sendmail(sender, [to], raw)
        raw_elapsed = time.perf_counter() - t0
        raw_rate = len(messages) / raw_elapsed
        assert handler.count - before == len(messages)
        print(
            f"raw smtplib (pre-rendered, one connection, one process): {len(messages)} in "
            f"{raw_elapsed:.1f} s = {raw_rate:.0f} messages/s"
        )
        print(f"ratio kizuna / raw smtplib: {kizuna_rate / raw_rate:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
