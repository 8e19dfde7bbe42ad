# ruff: noqa: S603, S103 (a bench starting local processes; a readable CSV header)
"""Import of 1,000,000 customer rows from CSV with `kizuna import customers`.

    .venv/bin/python bench/import_customers.py [--rows 1000000] [--db postgresql|sqlite]

Generates a HubSpot-style contact CSV (record id, names, email, phone, birthday, postal
code) in a fresh data directory, starts PostgreSQL (through pytest-postgresql's executor,
as in bench/ingest_segment.py) unless `--db sqlite`, migrates, and times the CLI import
of the file (all-or-nothing, one transaction); then counts the customers and identities.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_segment import KIZUNA, sql, start_postgres
from workdirs import bench_workdir  # bench/workdirs.py

FAMILY = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤"]
GIVEN = ["花子", "太郎", "陽菜", "蓮", "結衣", "大翔", "美咲", "悠真", "葵", "湊"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "Record ID",
                "Last Name",
                "First Name",
                "Email",
                "Phone Number",
                "Date of Birth",
                "Zip",
            ]
        )
        for i in range(rows):
            writer.writerow(
                [
                    f"hs-{i}",
                    FAMILY[i % 10],
                    GIVEN[(i // 10) % 10],
                    f"c{i}@example.com",
                    f"090{10_000_000 + i:08d}",
                    f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    f"{100 + i % 900:03d}-{i % 10000:04d}",
                ]
            )


def server_cpu(workdir: Path) -> float:
    """CPU seconds of the PostgreSQL server started in `workdir`: the postmaster, its live
    processes, and the backends it has already reaped (its children's times)."""
    pid_file = workdir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return 0.0
    master = int(pid_file.read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = (Path("/proc") / entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == master:  # utime, stime, cutime, cstime
            total += sum(int(x) for x in fields[11:15]) / tick
        elif int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    args = parser.parse_args()
    work = bench_workdir("kz-bench-import-")
    os.chmod(work, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(work),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_LOG_LEVEL="WARNING",
    )
    executor = None
    try:
        if args.db == "postgresql":
            executor, url = start_postgres(work)
            env["KIZUNA_DATABASE_URL"] = url
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
        path = work / "contacts.csv"
        started = time.perf_counter()
        write_csv(path, args.rows)
        generated = time.perf_counter() - started
        load_before = os.getloadavg()
        server_before = server_cpu(work)
        started = time.perf_counter()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [*KIZUNA, "import", "customers", str(path)],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server = server_cpu(work) - server_before
        load_after = os.getloadavg()
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
            cpu_after.ru_stime - cpu_before.ru_stime
        )
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            raise SystemExit(done.returncode)
        counts = sql(
            env,
            "from kizuna.customers.models import Customer, Identity\n"
            "print(Customer.objects.count(), Identity.objects.count())",
        )
        customers, identities = (int(x) for x in counts.split())
        print(f"database: {args.db}, rows: {args.rows:,} ({path.stat().st_size / 1e6:.0f} MB)")
        print(f"CSV generated in {generated:.1f} s")
        print(
            f"kizuna import customers: {seconds:.1f} s = {args.rows / seconds:,.0f} rows/s "
            f"(process start, migrations check and reading included)"
        )
        print(
            f"CPU of the import process: {cpu:.1f} s = {cpu / args.rows * 1e6:.0f} us/row "
            "(PostgreSQL server not included)"
        )
        if args.db == "postgresql":
            print(f"CPU of the PostgreSQL server meanwhile: {server:.1f} s")
        print(
            "load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} "
            "{:.2f}; {} cores".format(*load_before, *load_after, os.cpu_count())
        )
        print(f"customers {customers:,}, identities {identities:,}")
        if customers != args.rows:
            raise SystemExit("customer count differs from the rows")
    finally:
        if executor is not None:
            executor.stop()


if __name__ == "__main__":
    main()
