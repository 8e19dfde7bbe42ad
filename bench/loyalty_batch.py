"""Loyalty batch jobs on PostgreSQL at a million:

1. earn points for 1,000,000 orders in one batch (`kizuna.loyalty.bulk.points_earn_batch`:
   accounts created for new members, one ledger entry and one lot per order, balances
   moved under row locks) — target under 60 s;
2. the monthly job for 1,000,000 members: expire every lot past its date
   (`services.points_expire`) and re-evaluate every member's tier from rolling 12-month spend
   (`services.tiers_evaluate`) — target under 60 s together.

    .venv/bin/python bench/loyalty_batch.py [--members 1000000] [--orders 1000000]
        [--checked] [--earn-only]

Starts its own PostgreSQL server (bench/loyalty_pg.py), prints the figures (wall seconds,
and for the earn batch the CPU seconds of this process and of its PostgreSQL backend),
stops it. --checked keeps PostgreSQL's per-row foreign-key checks on the batch's own
entries and lots (what a database role without the `session_replication_role` privilege
gets, see `kizuna.loyalty.bulk.SKIP_OWN_FK_CHECKS`); --earn-only stops after the earn batch.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loyalty_pg import postgres, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--checked", action="store_true")
    parser.add_argument("--earn-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kz-bench-") as data_dir, postgres() as url:
        setup_django(url, data_dir)
        from decimal import Decimal

        from django.db import connection

        from kizuna.core.timeutil import JST
        from kizuna.loyalty import bulk, services
        from kizuna.loyalty.models import Account, LedgerEntry, Lot, Programme, Tier

        programme = Programme.objects.create(name="bench", expiry_months=12)
        for rank, (code, threshold) in enumerate(
            [("regular", 0), ("silver", 30_000), ("gold", 80_000), ("platinum", 150_000)]
        ):
            Tier.objects.create(
                programme=programme,
                code=code,
                name=code,
                rank=rank,
                threshold=threshold,
                earn_multiplier=Decimal(1) + Decimal(rank) / 4,
            )
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO customers_customer (family_name, given_name, family_name_kana, "
                "given_name_kana, email, phone, gender, postal_code, prefecture, city, "
                "address_line, locale, timezone, traits, created_at, updated_at) "
                "SELECT 'Bench', g::text, '', '', '', '', 'unspecified', '', '', '', '', 'ja', "
                "'Asia/Tokyo', '{}'::jsonb, now(), now() FROM generate_series(1, %s) g",
                [args.members],
            )
            cursor.execute("SELECT min(id) FROM customers_customer")
            first = cursor.fetchone()[0]
        print(f"setup: {args.members:,} customers in {time.perf_counter() - started:.1f} s")

        rng = random.Random(42)
        today = date(2026, 11, 1)
        base = datetime(2026, 10, 31, 12, tzinfo=JST)
        rows = [
            bulk.OrderEarnRow(
                customer_id=first + (i % args.members),
                order_id=i + 1,
                number=f"B-{i + 1}",
                total=rng.randrange(300, 60_000),
                placed_at=base - timedelta(days=rng.randrange(0, 730), minutes=i % 1440),
                lines=(),
            )
            for i in range(args.orders)
        ]
        bulk.SKIP_OWN_FK_CHECKS = not args.checked

        def backend_cpu() -> float:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

        db0, cpu0 = backend_cpu(), time.process_time()
        started = time.perf_counter()
        entries, points = bulk.points_earn_batch(rows)
        earn_s = time.perf_counter() - started
        cpu, db = time.process_time() - cpu0, backend_cpu() - db0
        del rows
        print(
            f"earn{' (foreign keys checked per row)' if args.checked else ''}: "
            f"{args.orders:,} orders -> {entries:,} entries, {points:,} points, "
            f"{Account.objects.count():,} accounts created, in {earn_s:.1f} s "
            f"({args.orders / earn_s:,.0f} orders/s); CPU: Python {cpu:.1f} s, "
            f"PostgreSQL backend {db:.1f} s"
        )

        def check() -> None:
            """The projections still equal the ledger."""
            sample = list(Account.objects.order_by("?")[:200])
            bad = 0
            for account in sample:
                balance = sum(
                    LedgerEntry.objects.filter(account=account).values_list("points", flat=True)
                )
                bad += balance != account.balance
            print(f"check: {len(sample)} random accounts replayed, {bad} mismatches")

        if args.earn_only:
            check()
            return
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        def monthly(day: date, label: str) -> float:
            due = Lot.objects.filter(expires_on__lt=day, remaining__gt=0).count()
            started = time.perf_counter()
            expired = services.points_expire(today=day)
            expire_s = time.perf_counter() - started
            started = time.perf_counter()
            tiers = services.tiers_evaluate(today=day)
            tiers_s = time.perf_counter() - started
            print(
                f"{label} ({day}): expire {expired.points:,} points on {expired.accounts:,} "
                f"accounts ({due:,} lots due) in {expire_s:.1f} s; tiers: "
                f"{Account.objects.count():,} members evaluated, {tiers.entries:,} changes in "
                f"{tiers_s:.1f} s; total {expire_s + tiers_s:.1f} s"
            )
            return expire_s + tiers_s

        # First run: a year of expiries at once and every member's first tier.
        monthly(date(2026, 10, 1), "first run")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        # The next month: what the scheduled job does every month.
        monthly(today, "monthly run")
        check()


if __name__ == "__main__":
    main()
