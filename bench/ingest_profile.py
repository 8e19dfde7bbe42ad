"""Where the tracking worker's CPU goes per event (not a throughput benchmark).

    .venv/bin/python bench/ingest_profile.py [--db sqlite|postgresql] [--events 60000]
        [--chunk 10000] [--users 5000] [--profile 25] [--subscribers own|all]

In a fresh data directory (and, with `--db postgresql`, a throwaway PostgreSQL server of its
own), accepts `--events` SDK-shaped `track` messages for `--users` users (ids as the
official Python SDK sends them, 1,000 per inbox batch, through `protocol.accept` and
`services.inbox_accept` as the /v1/batch handler does), processes one warm-up chunk (the
users' customers and identities are created there), then processes the rest in chunks of
`--chunk` with `services.inbox_process` in this process, other apps' after-commit
subscribers removed (the tracking path alone, as `bench/ingest_segment.py --subscribers
own`; `--subscribers all` keeps them, the installation as shipped). Prints CPU seconds
per 1,000 events of this process (`time.process_time`) and, on
PostgreSQL, of the server backend serving it (/proc), and with `--profile N` the top N
functions by internal time (cProfile: the profiler's own overhead is in those figures, the
plain CPU figure is measured without it first).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _setup(db: str, data_dir: str, url: str | None) -> None:
    os.environ["KIZUNA_DATA_DIR"] = data_dir
    if url:
        os.environ["KIZUNA_DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from kizuna.core import events as bus
    from kizuna.core.timeutil import now
    from kizuna.customers.models import Event
    from kizuna.tracking import protocol, services, tasks

    if args.subscribers == "own":
        bus._subscribers.clear()  # other apps' after-commit reactions (in-transaction ones stay)
    source = services.source_create(name="bench").source
    received = now()
    sent = received.isoformat()
    for start in range(0, args.events, 1000):
        batch = [
            {
                "type": "track",
                "userId": f"user-{i % args.users}",
                "event": "Product Viewed",
                "properties": {"sku": f"SKU-{i % 500}", "price": 1200, "n": i},
                "messageId": str(uuid.uuid4()),
                "timestamp": (received - timedelta(seconds=i)).isoformat(),
                "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
                "integrations": {},
            }
            for i in range(start, min(start + 1000, args.events))
        ]
        accepted = protocol.accept(
            {"batch": batch, "sentAt": sent}, kind="batch", received_at=received
        )
        services.inbox_accept(source_id=source.id, received_at=received, accepted=accepted)
    # Warm-up: the first chunk creates the users' customers and identities.
    services.inbox_process(max_messages=args.chunk)
    tasks.freeze_loaded_objects()  # as the worker does once loaded
    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    remaining = args.events - args.chunk
    # Without --profile every chunk after the warm-up is measured; with it, half of them.
    half = (remaining // 2 // args.chunk * args.chunk or args.chunk) if args.profile else remaining

    def process(limit: int) -> int:
        # The worker's drain (checkpoints and the marks of processed batches on threads).
        return tasks.drain(max_messages=limit, chunk=args.chunk)

    # The processing thread's time in statements and commits (the threads beside it have
    # connections of their own): what the processing would cost with no Python at all.
    in_sql = [0.0]

    def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_sql[0] += time.perf_counter() - started

    import threading

    from django.db import connections

    wrapper = type(connections["default"])
    real_commit = wrapper._commit
    processor = threading.current_thread()

    def timed_commit(self):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return real_commit(self)
        finally:
            if threading.current_thread() is processor:
                in_sql[0] += time.perf_counter() - started

    wrapper._commit = timed_commit  # type: ignore[method-assign]
    server0 = _backend_cpu(backend) if backend else 0.0
    cpu0, wall0, own0 = time.process_time(), time.perf_counter(), time.thread_time()
    with connection.execute_wrapper(timed):
        plain = process(half)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    own = time.thread_time() - own0
    wrapper._commit = real_commit  # type: ignore[method-assign]
    server = (_backend_cpu(backend) - server0) if backend else None
    print(f"database: {connection.vendor}, chunk {args.chunk}, users {args.users}")
    print(f"events processed (measured): {plain}, wall {wall:.2f} s")
    print(f"worker CPU per 1,000 events: {cpu / plain * 1000:.4f} s")
    print(
        f"of which the processing thread (without the checkpoint and marking threads): "
        f"{own / plain * 1000:.4f} s"
    )
    if server is not None:
        print(f"PostgreSQL backend CPU per 1,000 events: {server / plain * 1000:.4f} s")
    print(
        f"processing: {wall / plain * 1e6:.1f} us per event, of which statements and commits "
        f"{in_sql[0] / plain * 1e6:.1f} us"
    )
    if connection.vendor == "sqlite":
        bare = _bare_insert(plain, args.chunk, args.users)
        print(
            f"bare insert of {plain:,} such rows in their stored form (executemany, "
            f"commit per {args.chunk:,}; one transaction): {bare[0] / plain * 1e6:.1f} / "
            f"{bare[1] / plain * 1e6:.1f} us per row"
        )
        best = min(bare)
        print(
            f"ratio bound with no Python in the processing at all (bare insert / statements "
            f"and commits): {best / in_sql[0]:.2f}; measured ratio: {best / wall:.2f}"
        )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        profiled = process(remaining - plain)
        profiler.disable()
        print(f"profiled: {profiled} events")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    stored = Event.objects.filter(type="Product Viewed").count()
    print(f"stored events: {stored} (of {args.events} sent)")
    assert stored == min(args.events, args.chunk + plain + (profiled if args.profile else 0))


def _bare_insert(count: int, chunk: int, users: int) -> tuple[float, float]:
    """The same kind of rows (`bench/ingest_segment.py`'s raw baseline) inserted with a bare
    executemany: commit per `chunk`, and in one transaction. Seconds."""
    import orjson
    from django.db import connection, transaction

    from kizuna.core.timeutil import now
    from kizuna.customers.bulk import EVENT_FIELDS
    from kizuna.customers.models import Customer, Event

    ids = list(Customer.objects.values_list("id", flat=True)[:users])
    at = now()
    adapt = connection.ops.adapt_datetimefield_value
    context = orjson.dumps({"library": {"name": "analytics-python", "version": "2.4.0"}}).decode()
    names = ", ".join(
        connection.ops.quote_name(Event._meta.get_field(f).column) for f in EVENT_FIELDS
    )
    statement = (
        f"INSERT INTO {Event._meta.db_table} ({names}) "  # noqa: S608 (quoted names only)
        f"VALUES ({', '.join(['%s'] * len(EVENT_FIELDS))})"
    )
    spent = []
    for way in ("chunked", "one"):
        rows = [
            (
                str(uuid.uuid4()),  # message ids as the processed events have them
                "Product Viewed Bare",
                ids[i % len(ids)],
                "",
                str(adapt(at - timedelta(seconds=i))),
                str(adapt(at)),
                "bench",
                orjson.dumps({"sku": f"SKU-{i % 500}", "price": 1200, "n": i}).decode(),
                context,
            )
            for i in range(count)
        ]
        started = time.perf_counter()
        if way == "chunked":
            for start in range(0, count, chunk):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(statement, rows[start : start + chunk])
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                for start in range(0, count, chunk):
                    cursor.executemany(statement, rows[start : start + chunk])
        spent.append(time.perf_counter() - started)
    return spent[0], spent[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument(
        "--subscribers",
        choices=["all", "own"],
        default="own",
        help="own: other apps' after-commit subscribers removed (the tracking path alone)",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="kz-bench-") as data_dir:
        if args.db == "postgresql":
            from loyalty_pg import postgres

            with postgres("kizuna_ingest") as url:
                _setup(args.db, data_dir, url)
                run(args)
        else:
            _setup(args.db, data_dir, None)
            run(args)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
