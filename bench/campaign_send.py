# ruff: noqa: S603, S608, E501 (a bench starting local processes; embedded script text; SQL on its own ids)
"""A 100,000-recipient email campaign end to end, through `kizuna worker`, to a real SMTP
server on loopback (aiosmtpd in this process).

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/campaign_send.py \
        [--recipients 100000] [--workers 2] [--timeout 600] [--holdout 0]

In a fresh data directory (SQLite, Huey on SQLite, the embedded default), not timed: N
customers with an email opt-in (plus 5% without one, who are in the audience and refused by
messaging's guardrails), two dynamic segments (one excluded), an MJML newsletter, an email
channel pointing at the SMTP server, a draft campaign.

Timed, from the moment staff press "schedule" until every delivery is final: the schedule
(audience pre-check: size and consented reach), then in the worker the start (audience
evaluated from the segments, deterministic split, send times, one recipient row each), the
dispatch to messaging in chunks (deliveries + their history, tasks of 50), and messaging's
sending (claim, guardrails, render, DKIM, SMTP, record). Prints the phases, the rate, and the
CPU seconds of the campaign's own part measured in-process on a copy of the database.

Stops at --timeout (default 600 s = the target) and reports how far it got.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from support import SmtpCounter, free_port  # bench/support.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]

SETUP = """
import sys
import django
django.setup()
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kizuna.campaigns import services as campaigns
from kizuna.core.timeutil import now
from kizuna.customers.models import ConsentEntry, Customer, Identity
from kizuna.messaging import services
from kizuna.segments.services import segment_save
port, total, holdout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
credentials = {"dkim_private_key": key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()}
settings = {"host": "127.0.0.1", "port": port, "from_address": "news@kizuna.example",
    "from_name": "絆商店", "physical_address": "〒150-0001 東京都渋谷区神宮前1-2-3",
    "bounce_domain": "bounce.kizuna.example", "dkim_selector": "kz1"}
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
no_consent = total // 20
# The audience: Tokyo and Kanagawa; Kanagawa customers with "staff" in their email are excluded.
rows = [Customer(family_name="山田", given_name=f"{i}号", email=f"c{i}@example.jp",
    prefecture="JP-13" if i % 2 else "JP-14", traits={"favourite": "抹茶"} if i % 3 else {})
    for i in range(total + no_consent)]
rows += [Customer(family_name="社員", given_name=f"{i}", email=f"staff{i}@example.jp", prefecture="JP-14")
    for i in range(100)]
rows += [Customer(family_name="大阪", given_name=f"{i}", email=f"osaka{i}@example.jp", prefecture="JP-27")
    for i in range(1000)]
customers = Customer.objects.bulk_create(rows, batch_size=2000)
Identity.objects.bulk_create([Identity(customer=c, kind="email", value=c.email) for c in customers],
    batch_size=2000)
ConsentEntry.objects.bulk_create([ConsentEntry(customer=c, purpose="marketing", channel="email",
    status="granted", source="bench", recorded_at=at) for i, c in enumerate(customers)
    if not (total <= i < total + no_consent)], batch_size=2000)
kanto = segment_save(data={"name": "Tokyo and Kanagawa", "rules": {"version": 1, "match": "all",
    "conditions": [{"field": "profile.prefecture", "op": "in", "value": ["JP-13", "JP-14"]}]}})
staff = segment_save(data={"name": "Staff", "rules": {"version": 1, "match": "all",
    "conditions": [{"field": "profile.email", "op": "contains", "value": "staff"}]}})
campaign = campaigns.campaign_save(data={"name": "bench", "include_segments": [kanto.pk],
    "exclude_segments": [staff.pk], "channel_mode": "email", "email_channel": channel.pk,
    "holdout_percent": holdout, "variants": [{"email_template": template.pk}]})
print(campaign.pk, total + no_consent)
"""

SCHEDULE = """
import sys, time
import django
django.setup()
from kizuna.campaigns import services
from kizuna.campaigns.models import Campaign
t0, c0 = time.perf_counter(), time.process_time()
services.campaign_schedule(campaign=Campaign.objects.get(pk=int(sys.argv[1])))
print(f"{time.perf_counter() - t0:.2f} {time.process_time() - c0:.2f}")
"""

# The campaign's own part, in one process on a copy of the database taken after the
# timed run's setup: start (recipient rows) and dispatch (deliveries handed to messaging);
# the worker tasks it queues are not run here (Huey is not started).
CPU = """
import cProfile, pstats, sys, time
import django
django.setup()
from django.db import transaction
from kizuna.campaigns import services
from kizuna.campaigns.models import Campaign
from kizuna.messaging.models import Delivery
pk = int(sys.argv[1])
t0, c0 = time.perf_counter(), time.process_time()
services.campaign_schedule(campaign=Campaign.objects.get(pk=pk))
c1 = time.process_time()
n = services.campaign_start(campaign_id=pk)
c2 = time.process_time()
profile = cProfile.Profile() if len(sys.argv) > 2 else None
if profile: profile.enable()
handed = services.campaign_dispatch(campaign_id=pk)
if profile: profile.disable()
c3 = time.process_time()
from kizuna.campaigns.selectors import campaign_results
results = campaign_results(campaign=Campaign.objects.get(pk=pk))
c4 = time.process_time()
print(f"audience {n}, handed over {handed}, deliveries {Delivery.objects.count()}")
print(f"CPU s: schedule (pre-check) {c1 - c0:.2f}, start (recipients) {c2 - c1:.2f}, dispatch {c3 - c2:.2f}, results page {c4 - c3:.2f}; wall {time.perf_counter() - t0:.1f}")
if profile: pstats.Stats(profile).sort_stats("cumulative").print_stats(18)
"""


RESULTS = """
import sys, time
import django
django.setup()
from kizuna.campaigns.models import Campaign
from kizuna.campaigns.selectors import campaign_results
c0, t0 = time.process_time(), time.perf_counter()
row = campaign_results(campaign=Campaign.objects.get(pk=int(sys.argv[1])))["variants"][0]
print(f"results page (after the send): {time.process_time() - c0:.2f} s CPU, {time.perf_counter() - t0:.2f} s wall; sent {row['sent']}, refused {row['refused']}")
"""


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db, timeout=60) as conn:
        return conn.execute(sql).fetchall()


def count(db: Path, sql: str) -> int:
    return int(query(db, sql)[0][0] or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-type", choices=["process", "thread"], default="process")
    parser.add_argument("--holdout", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--cpu-only", action="store_true", help="only the in-process CPU profile")
    parser.add_argument("--profile", action="store_true", help="cProfile the dispatch")
    args = parser.parse_args()

    handler = SmtpCounter()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="kz-bench-campaign-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(workdir),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_QUIET_HOURS="off",
        KIZUNA_LOG_LEVEL="WARNING",
    )
    db = workdir / "kizuna.sqlite3"
    try:
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
        t_setup = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", SETUP, str(server.port), str(args.recipients), str(args.holdout)],
            env=env, check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        campaign_id, audience = (int(x) for x in out.stdout.split()[-2:])
        print(
            f"setup (not timed): {audience} customers in the audience in {time.perf_counter() - t_setup:.0f} s"
        )

        if args.cpu_only:
            copy = Path(tempfile.mkdtemp(prefix="kz-bench-campaign-cpu-"))
            shutil.copy(db, copy / "kizuna.sqlite3")
            cpu_env = {**env, "KIZUNA_DATA_DIR": str(copy)}
            cmd = [sys.executable, "-c", CPU, str(campaign_id)] + (
                ["profile"] if args.profile else []
            )
            print(
                subprocess.run(
                    cmd, env=cpu_env, check=True, capture_output=True, text=True, cwd=ROOT
                ).stdout
            )
            shutil.rmtree(copy, ignore_errors=True)
            return

        worker = subprocess.Popen(
            [*KIZUNA, "worker", "--workers", str(args.workers), "-k", args.worker_type],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            time.sleep(3)  # the worker is up and idle before the clock starts
            started = time.perf_counter()
            sched = subprocess.run(
                [sys.executable, "-c", SCHEDULE, str(campaign_id)],
                env=env, check=True, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            sched_wall, sched_cpu = sched.stdout.split()[-2:]
            deadline = started + args.timeout
            marks: dict[str, float] = {}
            final = "status in ('sent', 'failed', 'refused', 'unknown', 'bounced')"
            expected = None
            while time.perf_counter() < deadline:
                now = time.perf_counter() - started
                if "recipients" not in marks and count(
                    db,
                    f"select count(*) from campaigns_recipient where campaign_id = {campaign_id}",
                ):
                    marks["recipients"] = now
                    expected = count(
                        db,
                        f"select count(*) from campaigns_recipient where campaign_id = {campaign_id} and status != 'held_out'",
                    )
                if (
                    expected
                    and "handed" not in marks
                    and count(
                        db,
                        f"select count(*) from campaigns_recipient where campaign_id = {campaign_id} and status = 'enqueued'",
                    )
                    >= expected
                ):
                    marks["handed"] = now
                if (
                    expected
                    and count(db, f"select count(*) from messaging_delivery where {final}")
                    >= expected
                ):
                    marks["done"] = now
                    break
                time.sleep(1.0)
            elapsed = time.perf_counter() - started
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        statuses = dict(
            query(db, "select status, count(*) from messaging_delivery group by status")
        )
        sent = statuses.get("sent", 0)
        print(
            f"schedule (staff's click: audience pre-check) {float(sched_wall):.1f} s wall, {float(sched_cpu):.1f} s CPU"
        )
        for key, label in [
            ("recipients", "recipients materialised (start)"),
            ("handed", "all handed to messaging"),
            ("done", "every delivery final"),
        ]:
            value = marks.get(key)
            print(f"  {label}: " + (f"{value:.0f} s" if value is not None else "not reached"))
        print(f"deliveries by status: {statuses}; SMTP server received {handler.count}")
        print(
            subprocess.run(
                [sys.executable, "-c", RESULTS, str(campaign_id)],
                env=env, check=True, capture_output=True, text=True, cwd=ROOT,
            ).stdout.strip()
        )  # fmt: skip
        print(f"load: {os.getloadavg()}")
        print(
            f"end to end ({args.workers} {args.worker_type} workers): "
            + (f"{marks['done']:.0f} s for {expected} recipients = {sent / marks['done']:.0f} messages/s"
               if "done" in marks else f"NOT finished in {elapsed:.0f} s: {sent} of {expected} sent ({sent / elapsed:.0f} messages/s)")
        )  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
