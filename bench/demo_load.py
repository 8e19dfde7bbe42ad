"""Time `kizuna demo --no-serve --reset` on a fresh data directory, stage by stage.

    .venv/bin/python bench/demo_load.py [--customers 20000] [--write-docs]

Prints migrate / generate / insert-per-table / total seconds and the row counts; with
--write-docs, replaces the figures in docs/benchmarks.md. Target: the demo is up in
under 2 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- demo_load:begin -->", "<!-- demo_load:end -->"
TABLES = {
    "customers": "customers_customer",
    "identities": "customers_identity",
    "consents": "customers_consententry",
    "orders": "commerce_order",
    "order lines": "commerce_orderline",
    "refunds": "commerce_refund",
    "events": "customers_event",
}


def run(customers: int) -> tuple[dict[str, float], dict[str, int], float]:
    kizuna = str(Path(sys.executable).with_name("kizuna"))
    with tempfile.TemporaryDirectory(prefix="kizuna-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        timings_file = Path(tmp) / "timings.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
        env.update(KIZUNA_DATA_DIR=str(data_dir), KIZUNA_LANGUAGE="en")
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 (our own console script)
            [kizuna, "demo", "--no-serve", "--reset", "--customers", str(customers),
             "--timings-json", str(timings_file)],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.perf_counter() - started
        timings = json.loads(timings_file.read_text())
        with sqlite3.connect(data_dir / "kizuna.sqlite3") as db:
            counts = {
                name: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
                for name, table in TABLES.items()
            }
        counts["database MB"] = (data_dir / "kizuna.sqlite3").stat().st_size // 1_000_000
    return timings, counts, wall


def render(customers: int, timings: dict[str, float], counts: dict[str, int], wall: float) -> str:
    lines = [
        f"Measured {date.today():%Y-%m-%d} with `python bench/demo_load.py --customers "
        f"{customers}`: {os.cpu_count()} cores, Python {platform.python_version()}, "
        "SQLite (the embedded default), machine shared with other work.",
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    for key, value in timings.items():
        label = key.replace("insert.", "insert: ")
        lines.append(f"| {label} | {value:.1f} |")
    lines.append(f"| wall clock, process start to exit | {wall:.1f} |")
    lines += ["", "| rows | count |", "|---|---:|"]
    lines += [f"| {name} | {count:,} |" for name, count in counts.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    timings, counts, wall = run(args.customers)
    text = render(args.customers, timings, counts, wall)
    print(text)
    if args.write_docs:
        doc = DOC.read_text()
        head, rest = doc.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print(f"\nwrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
