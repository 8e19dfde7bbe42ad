# ruff: noqa: S603, E501 (a bench starting local processes; embedded script text)
"""LINE outage (issue 12 (c)): an email campaign sends to loopback SMTP through bulk-lane
workers; a LINE campaign is queued while the LINE test server fails every request (500) for
`--outage` seconds. Email throughput before and during the outage is compared; after the
server recovers every LINE message must be delivered exactly once.

The email campaign is fed in steps (`--backlog` more recipients whenever fewer are queued), so
the bulk lane, first in first out, reaches the LINE messages within seconds of the outage's
start: they are tried, fail, and the LINE breaker defers them while email goes on.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/sending_line_outage.py
        [--emails 20000] [--line 300] [--normal 20] [--outage 60] [--db sqlite|postgresql]
        [--queue sqlite|redis] [--bulk-workers 2] [--send-concurrency 1] [--backlog 2000]

The LINE server (in this process) answers like api.line.me (bearer token, X-Line-Retry-Key,
409 for a retry key it has accepted) and counts the messages it accepted per user; the SMTP
server stamps each arrival, so email rates are taken from the server's side for the window
before the outage and the outage itself. Workers: `--bulk-workers` × `kizuna worker --lane
bulk` (one sending thread each) and one `kizuna worker --lane default` (the periodic sweep).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from messaging_send import SETUP  # bench/messaging_send.py
from sending_lanes import backends  # bench/sending_lanes.py
from support import free_port  # bench/support.py
from workdirs import bench_workdir  # bench/workdirs.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]
TOKEN = "bench-line-token"  # noqa: S105 (the local test server's token)

LINE_SETUP = """
import sys
import django
django.setup()
from kizuna.customers.models import Customer
from kizuna.messaging import services
from kizuna.messaging.models import LineContact
host, total, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
channel = services.channel_save(kind="line", name="line", settings={"host": host},
    credentials={"access_token": token, "channel_secret": "s"})
template = services.template_save(slug="line-sale", name="line", channel_kind="line",
    body_format="text", variants={"ja": {"subject": "", "body": "{{ customer.name }}さん、セールのお知らせです。"}})
customers = Customer.objects.bulk_create([Customer(family_name="線", given_name=f"{i}")
    for i in range(total)])
LineContact.objects.bulk_create([LineContact(channel=channel, customer=c, line_user_id=f"U{c.pk:032x}",
    following=True) for c in customers])
print(services.delivery_enqueue_many(source="campaign:line", customer_ids=[c.pk for c in customers],
    channel=channel, template=template))
"""


CUSTOMERS = """
import sys
import django
django.setup()
from kizuna.core.timeutil import now
from kizuna.customers.models import ConsentEntry, Customer, Identity
total, at = int(sys.argv[1]), now()
for start in range(0, total, 5000):
    customers = Customer.objects.bulk_create([Customer(family_name="山田", given_name=f"{i}号",
        email=f"c{i}@example.jp") for i in range(start, min(total, start + 5000))])
    Identity.objects.bulk_create([Identity(customer=c, kind="email", value=c.email) for c in customers])
    ConsentEntry.objects.bulk_create([ConsentEntry(customer=c, purpose="marketing", channel="email",
        status="granted", source="bench", recorded_at=at) for c in customers])
print(Customer.objects.count())
"""

# Keeps the email backlog short (a campaign of `step` more recipients whenever fewer than
# `low` are queued), so that the LINE campaign queued at the outage's start is reached within
# seconds instead of waiting behind the whole email campaign (the lane is first in, first out).
FEED = """
import sys, time
import django
django.setup()
from pathlib import Path
from kizuna.customers.models import Customer
from kizuna.messaging import services
from kizuna.messaging.models import Channel, Delivery, Template
step, low, stop = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
channel, template = Channel.objects.get(name="bench"), Template.objects.get(slug="bench")
ids = list(Customer.objects.filter(email__startswith="c").order_by("pk").values_list("pk", flat=True))
queued = Delivery.objects.filter(channel=channel, status__in=["queued", "sending"])
position = 0
while not stop.exists() and position < len(ids):
    if queued.count() < low:
        services.delivery_enqueue_many(source=f"campaign:bench-{position}",
            customer_ids=ids[position:position + step], channel=channel, template=template)
        position += step
    time.sleep(0.1)
print(position, flush=True)
"""


class LineServer:
    """A LINE Messaging API stand-in that fails every request until `fail_until`."""

    def __init__(self) -> None:
        self.fail_until = 0.0
        self.accepted: dict[str, str] = {}
        self.delivered: Counter[str] = Counter()
        self.answers: Counter[int] = Counter()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                with api.lock:
                    api.answers[status] += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.reply(401, {"message": "Authentication failed"})
                if time.time() < api.fail_until:
                    return self.reply(500, {"message": "Internal server error"})
                key = self.headers.get("X-Line-Retry-Key") or ""
                with api.lock:
                    if key and key in api.accepted:
                        seen = True
                    else:
                        seen = False
                        api.accepted[key or uuid.uuid4().hex] = uuid.uuid4().hex
                        api.delivered[str(body.get("to"))] += 1
                if seen:
                    return self.reply(409, {"message": "The retry key is already accepted"})
                return self.reply(200, {"sentMessages": [{"id": "1", "quoteToken": "q"}]})

        return Handler


class Stamping:
    def __init__(self) -> None:
        self.times: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.times.append(time.time())
        return "250 OK"


def rate(times: list[float], start: float, end: float) -> float:
    return (bisect.bisect_left(times, end) - bisect.bisect_left(times, start)) / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=20000)
    parser.add_argument("--line", type=int, default=300)
    parser.add_argument("--normal", type=float, default=20)
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--recovery-timeout", type=float, default=240)
    parser.add_argument("--bulk-workers", type=int, default=2)
    parser.add_argument("--send-concurrency", type=int, default=1)
    parser.add_argument("--backlog", type=int, default=2000, help="emails queued ahead at most")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--queue", choices=["sqlite", "redis"], default="sqlite")
    args = parser.parse_args()
    workdir = bench_workdir("kz-bench-outage-")
    smtp = Stamping()
    mail = Controller(smtp, hostname="127.0.0.1", port=free_port())
    mail.start()
    line = LineServer()
    http = ThreadingHTTPServer(("127.0.0.1", free_port()), line.handler())
    threading.Thread(target=http.serve_forever, daemon=True).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with backends(workdir, args.db, args.queue) as (extra, count):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
            env.update(
                KIZUNA_DATA_DIR=str(workdir), DJANGO_SETTINGS_MODULE="kizuna.settings.base",
                KIZUNA_QUIET_HOURS="off", KIZUNA_LOG_LEVEL="WARNING", KIZUNA_SEND_CONCURRENCY=str(args.send_concurrency),
                **extra,
            )  # fmt: skip
            print(f"database {args.db}, queue {args.queue}; load before: {os.getloadavg()}")
            subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
            subprocess.run(
                [sys.executable, "-c", SETUP, str(mail.port), "0", "off"],
                env=env, check=True, capture_output=True, cwd=ROOT,
            )  # fmt: skip
            subprocess.run(
                [sys.executable, "-c", CUSTOMERS, str(args.emails)],
                env=env, check=True, capture_output=True, cwd=ROOT,
            )  # fmt: skip
            stop_feeding = workdir / "stop-feeding"
            feeder = subprocess.Popen(
                [sys.executable, "-c", FEED, str(args.backlog), str(args.backlog), str(stop_feeding)],
                env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            for lane in ["default"] + ["bulk"] * args.bulk_workers:
                worker = subprocess.Popen(
                    [*KIZUNA, "worker", "--lane", lane], env=env, cwd=ROOT,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
                workers.append(worker)
            while not smtp.times:
                time.sleep(0.1)
            normal_start = time.time()
            time.sleep(args.normal)
            # The outage starts; the LINE campaign is queued into it.
            line.fail_until = outage_start = time.time()
            line.fail_until += args.outage
            subprocess.run(
                [sys.executable, "-c", LINE_SETUP, f"http://127.0.0.1:{http.server_port}", str(args.line), TOKEN],
                env=env, check=True, capture_output=True, cwd=ROOT,
            )  # fmt: skip
            outage_end = line.fail_until
            time.sleep(max(0.0, outage_end - time.time()))
            stop_feeding.touch()
            fed = int(feeder.communicate(timeout=60)[0].strip() or 0)
            emails_left = count(
                "select count(*) from messaging_delivery d join messaging_channel c on c.id = d.channel_id "
                "where c.kind = 'email' and d.status in ('queued', 'sending', 'deferred')"
            )
            line_done_sql = (
                "select count(*) from messaging_delivery d join messaging_channel c on c.id = d.channel_id "
                "where c.kind = 'line' and d.status in ('sent', 'failed', 'refused', 'unknown', 'cancelled')"
            )
            deadline = time.time() + args.recovery_timeout
            while time.time() < deadline and count(line_done_sql) < args.line:
                time.sleep(0.5)
            all_line_at = time.time()
            states = count(
                "select count(*) from messaging_delivery d join messaging_channel c on c.id = d.channel_id "
                "where c.kind = 'line' and d.status = 'sent'"
            )
        # the database is gone with the backends; figures from what was read
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.wait(timeout=30)
        http.shutdown()
        mail.stop()
    times = sorted(smtp.times)
    normal = rate(times, normal_start, outage_start)
    during = rate(times, outage_start, outage_end)
    print(
        f"email: {len(times)} received; normal {normal:.0f} msg/s ({args.normal:.0f} s before the "
        f"outage), during the {args.outage:.0f} s LINE outage {during:.0f} msg/s = "
        f"{during / normal:.2f} of normal (target >= 0.90); emails queued by the feeder {fed}, "
        f"still queued at the outage's end: {emails_left}"
    )
    duplicates = {user: n for user, n in line.delivered.items() if n > 1}
    print(
        f"LINE: {args.line} queued at the outage's start; answers {dict(line.answers)}; "
        f"sent {states}/{args.line}, all final {all_line_at - outage_end:.0f} s after recovery; "
        f"users who received the message: {len(line.delivered)}, more than once: {len(duplicates)}"
    )
    print(f"load at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
