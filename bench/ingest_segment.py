# ruff: noqa: S603, S607, S103, E501 (a bench starting local processes; embedded script text)
"""Sustained ingestion through /v1/batch with the official Segment Python SDK.

    .venv/bin/python bench/ingest_segment.py [--db sqlite|postgresql] [--events 200000]
        [--subscribers all|own] [--gunicorn "-k gthread -w 1 --threads 4"]
        [--upload-size 1000] [--sdk-threads 2] [--clients 1] [--chunk 10000]
        [--phases floor,concurrent,backlog]

Starts, in a fresh data directory: the database (PostgreSQL through pytest-postgresql's
executor when asked), gunicorn (`kizuna.wsgi`, which sends /v1/ through the lean ingest
handler) and one `kizuna worker`; sends the events with `segment.analytics.Client`; prints
events/s accepted (SDK flushed, every request 200) and processed (every inbox batch
processed: all events in the timeline), checks zero loss and zero duplicates, and measures
the raw bulk-insert rate of the same event rows into the same database for the ratio
(executemany, as `core.bulk.table_insert`; on PostgreSQL also COPY, `core.bulk.table_copy`).

Two phases, in this order, in the same installation (each with its own message ids):
`concurrent` accepts with the worker running (accepted = until every SDK process flushed;
processed = until nothing is pending, from the first request); `backlog` accepts with no
worker running (accepting alone), then starts the worker and times the drain of that
backlog: from the end of the worker's set-up (Django loaded), and from its first processed
chunk (without the consumer's start and that first chunk: the sustained processing rate).
Ratios against the raw insert are printed for both: against the one measured at the end
of the run, and (`--raw-beside`, the default) against one measured right after that
backlog phase (its rows then deleted), as the machine's speed drifts over a run.

`floor` sends the same events with the
same SDK clients to a gunicorn (same options) serving `bench/wsgi_floor.py`, which reads
each request and answers 200 with no Django and no database: what the load generator can
send on this machine at that moment; each phase's accepted rate is also given against it
(the mean of the floor phases run). A phase may be named more than once
(`--phases concurrent,concurrent`: the second runs with the users' customers existing);
each run sends message ids of its own.

`--subscribers own` runs the worker with the bus's after-commit subscribers of other apps
removed (the tracking code path alone); `all` (the default) is the installation as shipped.
Progress is polled with one plain database connection (no Django process per poll). The
worker's CPU is counted from the end of its set-up (Django loaded), which it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from workdirs import bench_workdir  # bench/workdirs.py

ROOT = Path(__file__).resolve().parent.parent
KIZUNA = [sys.executable, "-m", "kizuna"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(workdir: Path, statements: bool = False):  # type: ignore[no-untyped-def]
    try:
        from pytest_postgresql.executors.proc import PostgreSQLExecutor
    except ImportError:  # pytest-postgresql before 7
        from pytest_postgresql.executor import PostgreSQLExecutor  # type: ignore[no-redef]

    port = free_port()
    executor = PostgreSQLExecutor(
        executable=str(ROOT / "tests" / "support" / "pg_ctl"),
        host="127.0.0.1",
        port=port,
        user="postgres",
        password="",
        options="",
        dbname="kizuna",
        datadir=str(workdir / "pg"),
        unixsocketdir=str(workdir),
        logfile=str(workdir / "pg.log"),
        startparams="-w -o '-c fsync=on -c synchronous_commit=on"
        + (" -c shared_preload_libraries=pg_stat_statements" if statements else "")
        + "'",
        postgres_options="",
    )
    executor.start()
    executor.wait_for_postgres()
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE kizuna",
        ],
        check=True,
        capture_output=True,
    )
    if statements:
        subprocess.run(
            [
                "psql",
                *("-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "kizuna"),
                "-c",
                "CREATE EXTENSION pg_stat_statements",
            ],
            check=True,
            capture_output=True,
        )
    return executor, f"postgresql://postgres@127.0.0.1:{port}/kizuna"


def top_statements(conn, limit: int, events: int) -> list[str]:  # type: ignore[no-untyped-def]
    """The server's statements by total execution time since the last reset (µs per event),
    then a reset: where PostgreSQL's share of a phase goes (`--pg-statements`)."""
    rows = conn.execute(
        "SELECT total_exec_time, calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
        " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s",
        (limit,),
    ).fetchall()
    conn.execute("SELECT pg_stat_statements_reset()")
    return [
        f"  {1000 * ms / events:7.2f} µs/event  {calls:>7,} calls {nrows:>9,} rows  {query}"
        for ms, calls, nrows, query in rows
    ]


def sql(env: dict[str, str], code: str) -> str:
    script = "import django; django.setup()\n" + code
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


WORKER = """
import json, sys, time, django
django.setup()
from django.core.management import call_command
from kizuna.core import events
if sys.argv[1] == "own":
    events._subscribers.clear()  # other apps' after-commit reactions (in-transaction ones stay)
with open(sys.argv[2], "w") as ready:  # set up: from here on the worker is warm
    json.dump({"at": time.time(), "cpu": time.process_time()}, ready)
call_command("worker", workers=1, lane="default")  # the main queue, at KIZUNA_WORKER_NICE
"""


def pending_counter(args: argparse.Namespace, env: dict[str, str], work: Path):  # type: ignore[no-untyped-def]
    """A function returning the number of unprocessed inbox messages (one plain connection)."""
    query = (
        "SELECT COALESCE(SUM(message_count), 0) FROM tracking_inboxbatch WHERE processed_at IS NULL"
    )
    if args.db == "postgresql":
        import psycopg

        conn = psycopg.connect(env["KIZUNA_DATABASE_URL"], autocommit=True)
    else:
        import sqlite3

        # The inbox's own file (the SQLite default), else the main database.
        inbox = work / "inbox.sqlite3"
        conn = sqlite3.connect(
            str(inbox if inbox.exists() else work / "kizuna.sqlite3"), timeout=30
        )

    def pending() -> int:
        return int(conn.execute(query).fetchone()[0])

    return pending, conn


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its live children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(c) for c in children)
    return total


def send_events(
    args: argparse.Namespace, key: str, host: str, part: int, prefix: str, results
) -> None:  # type: ignore[no-untyped-def]
    """One SDK client process sending its share of the events (every `clients`-th one)."""
    from segment.analytics import Client

    failures: list[str] = []
    client = Client(
        key,
        host=host,
        upload_size=args.upload_size,
        max_queue_size=args.events + 10,
        thread=args.sdk_threads,
        on_error=lambda e, batch: failures.append(repr(e)),
    )
    started = time.perf_counter()
    for i in range(part, args.events, args.clients):
        client.track(
            f"user-{i % args.users}",
            "Product Viewed",
            {"sku": f"SKU-{i % 500}", "price": 1200, "n": i},
            message_id=f"{prefix}-{i}",
        )
    enqueued = time.perf_counter() - started
    client.flush()
    client.shutdown()
    results.put({"enqueued": enqueued, "failures": failures, "cpu": time.process_time()})


def send_all(args: argparse.Namespace, key: str, port: int, prefix: str) -> dict[str, object]:
    """Run the SDK client processes; returns the seconds until all flushed, their CPU, errors."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    started = time.perf_counter()
    senders = [
        context.Process(
            target=send_events,
            args=(args, key, f"http://127.0.0.1:{port}", part, prefix, results),
        )
        for part in range(args.clients)
    ]
    for sender in senders:
        sender.start()
    reports = [results.get(timeout=900) for _ in senders]
    for sender in senders:
        sender.join()
    return {
        "started": started,
        "seconds": time.perf_counter() - started,
        "cpu": sum(r["cpu"] for r in reports),
        "failures": [f for r in reports for f in r["failures"]],
    }


def wait_serving(port: int) -> None:
    """Until the web server answers on /v1/ (kizuna: 405 for a GET; the floor app: 200)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/batch", timeout=5)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the web server did not start")


def wait_drained(pending, total: int, timeout: float = 600) -> tuple[float, float | None, int]:  # type: ignore[no-untyped-def]
    """Poll until no inbox message is pending; returns (when drained, when the first
    pending message was seen processed, as perf_counter values; the messages then left)."""
    first: float | None = None
    left_at_first = total
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = pending()
        if first is None and left < total:
            first, left_at_first = time.perf_counter(), left
        if left == 0:
            break
        time.sleep(0.02)
    return time.perf_counter(), first, left_at_first


def stored(env: dict[str, str], prefix: str) -> tuple[int, int]:
    counts = json.loads(
        sql(
            env,
            "import json\nfrom kizuna.customers.models import Event\n"
            f"qs = Event.objects.filter(type='Product Viewed', message_id__startswith='{prefix}-')\n"
            "print(json.dumps([qs.count(), qs.values('message_id').distinct().count()]))",
        )
    )
    return int(counts[0]), int(counts[1])


RAW = """
import json, time
from datetime import timedelta
from django.db import connection, transaction
from kizuna.core.bulk import table_copy, table_insert
from kizuna.core.timeutil import now
from kizuna.customers.bulk import EVENT_FIELDS
from kizuna.customers.models import Customer, Event
ids = list(Customer.objects.values_list('id', flat=True)[:USERS])
at = now()
def rows(prefix):
    return [(f'{prefix}RUN-{i}', 'Product Viewed Raw', ids[i % len(ids)], '', at - timedelta(seconds=i), at,
             'bench', {'sku': f'SKU-{i % 500}', 'price': 1200, 'n': i},
             {'library': {'name': 'analytics-python', 'version': '2.4.0'}}) for i in range(EVENTS)]
out = {}
data = rows('raw')
t = time.perf_counter()
with transaction.atomic():
    table_insert(Event, EVENT_FIELDS, data, batch_size=10000)
out['insert'] = time.perf_counter() - t
if connection.vendor == 'sqlite':
    # The same rows already in the stored form (times and JSON as text), one bare
    # executemany per 10,000: the insert without any adaptation (as the worker writes them).
    import orjson
    adapt = connection.ops.adapt_datetimefield_value
    data = [(r[0] + 't', r[1], r[2], r[3], str(adapt(r[4])), str(adapt(r[5])), r[6],
             orjson.dumps(r[7]).decode(), orjson.dumps(r[8]).decode()) for r in rows('rawtext')]
    names = ', '.join(connection.ops.quote_name(Event._meta.get_field(f).column) for f in EVENT_FIELDS)
    statement = f"INSERT INTO customers_event ({names}) VALUES ({', '.join(['%s'] * len(EVENT_FIELDS))})"
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(data), 10000):
            cursor.executemany(statement, data[start:start + 10000])
    out['insert_text'] = time.perf_counter() - t
if connection.vendor == 'postgresql':
    data = rows('rawcopy')
    t = time.perf_counter()
    with transaction.atomic():
        table_copy(Event, EVENT_FIELDS, data)
    out['copy'] = time.perf_counter() - t
if CLEAN:  # beside a phase: the table as it was for the phases after it
    Event.objects.filter(type='Product Viewed Raw').delete()
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=200_000, help="events per phase")
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--subscribers", choices=["all", "own"], default="all")
    parser.add_argument("--gunicorn", default="-w 2", help="gunicorn worker options")
    parser.add_argument("--upload-size", type=int, default=1000)
    parser.add_argument("--sdk-threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1, help="SDK client processes")
    parser.add_argument(
        "--chunk", type=int, default=10_000, help="messages per processing transaction"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=None,
        help="the worker's CPU niceness (KIZUNA_WORKER_NICE; the installation's default, "
        "10, when not given; 0 = the web server's)",
    )
    parser.add_argument(
        "--pg-statements",
        type=int,
        default=0,
        metavar="N",
        help="PostgreSQL: print each phase's N statements taking the most server time",
    )
    parser.add_argument(
        "--phases",
        default="concurrent,backlog",
        help="concurrent: accept with the worker running (accepted and processed); "
        "backlog: accept with the worker stopped, then start it and time the drain; "
        "floor: the same SDK clients against a server that only reads and answers 200",
    )
    parser.add_argument(
        "--raw-beside",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the raw inserts right after each backlog phase too (their rows deleted)",
    )
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or set(phases) - {"concurrent", "backlog", "floor"}:
        parser.error("--phases: concurrent, backlog and/or floor")
    work = bench_workdir("kz-bench-ingest-")
    os.chmod(work, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(
        KIZUNA_DATA_DIR=str(work),
        DJANGO_SETTINGS_MODULE="kizuna.settings.base",
        KIZUNA_TRACKING_PROCESS_CHUNK=str(args.chunk),
        KIZUNA_TRACKING_RATE="100000/m",
        KIZUNA_LOG_LEVEL="WARNING",
    )
    if args.worker_nice is not None:
        env["KIZUNA_WORKER_NICE"] = str(args.worker_nice)
    executor = None
    if args.db == "postgresql":
        executor, url = start_postgres(work, statements=args.pg_statements > 0)
        env["KIZUNA_DATABASE_URL"] = url
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    ready_file = work / "worker-ready.json"

    def start_gunicorn(app: str, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                app,
                *shlex.split(args.gunicorn),
                *(["--chdir", str(ROOT / "bench")] if app.startswith("wsgi_floor") else []),
                *("-b", f"127.0.0.1:{port}", "--log-level", "warning"),
            ],
            env=env,
        )

    def floor_phase(tag: str) -> list[str]:
        """The SDK against `wsgi_floor.segment_application`: the load generator's ceiling."""
        floor_port = free_port()
        floor = start_gunicorn("wsgi_floor:segment_application", floor_port)
        try:
            wait_serving(floor_port)
            cpu0 = cpu_seconds(floor.pid)
            sent = send_all(args, key, floor_port, tag)
            floor_cpu = cpu_seconds(floor.pid) - cpu0
        finally:
            stop(floor)
        seconds = float(sent["seconds"])  # type: ignore[arg-type]
        floors[tag] = n / seconds
        if sent["failures"]:
            lost.append(f"{tag}: {len(sent['failures'])} SDK errors")  # type: ignore[arg-type]
        return [
            f"-- phase {tag} (the SDK against a server that only reads and answers 200)",
            f"sent (SDK flushed, all 200): {seconds:.1f} s = {n / seconds:,.0f} events/s",
            f"CPU seconds per 1,000 events: SDK clients {1000 * float(sent['cpu']) / n:.3f}, "  # type: ignore[arg-type]
            f"gunicorn {1000 * floor_cpu / n:.3f}",
        ]

    def measure_raw(run: str, *, clean: bool) -> dict[str, float]:
        """The raw inserts (`RAW`), message ids of run `run`; `clean`: their rows deleted
        after (measured beside a phase, the table left as it was for the next ones)."""
        script = RAW.replace("USERS", str(args.users)).replace("EVENTS", str(n))
        script = script.replace("RUN", run).replace("CLEAN", str(clean))
        return dict(json.loads(sql(env, script)))

    def ratios(rate: float, raw: dict[str, float]) -> str:
        text = f"{rate / (n / raw['insert']):.2f} against executemany"
        if "insert_text" in raw:
            text += f", {rate / (n / raw['insert_text']):.2f} against the bare executemany"
        if "copy" in raw:
            text += f", {rate / (n / raw['copy']):.2f} against COPY"
        return text

    def start_worker() -> subprocess.Popen[bytes]:
        """`kizuna worker --workers 1 --lane default`, with other apps' subscribers removed for
        `own`; it writes when it is set up (wall clock and its own CPU) to `ready_file`."""
        ready_file.unlink(missing_ok=True)
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, args.subscribers, str(ready_file)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def worker_ready() -> dict[str, float]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                return dict(json.loads(ready_file.read_text()))
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError("the worker did not start")

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        proc.wait(timeout=30)

    def pg_cpu() -> float:
        if executor is None:
            return 0.0
        postmaster = int((work / "pg" / "postmaster.pid").read_text().split()[0])
        return cpu_seconds(postmaster)

    n = args.events
    lines = [
        f"database: {args.db}, events per phase: {n:,}, users: {args.users:,}, "
        f"subscribers: {args.subscribers}, gunicorn: {args.gunicorn}, "
        f"upload_size: {args.upload_size}, SDK threads: {args.sdk_threads}, "
        f"SDK processes: {args.clients}, chunk: {args.chunk}, "
        f"worker nice: {env.get('KIZUNA_WORKER_NICE', 'default (10)')}"
    ]
    rates: dict[str, float] = {}
    raw_beside: dict[str, dict[str, float]] = {}  # backlog phase: the raw inserts right after it
    accepted: dict[str, float] = {}  # kizuna's accepted events/s by phase
    floors: dict[str, float] = {}  # the floor phases' events/s
    lost: list[str] = []  # phases with an event lost or duplicated, or an SDK error
    try:
        subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
        key = (
            subprocess.run(
                [*KIZUNA, "source", "create", "Bench"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        web = start_gunicorn("kizuna.wsgi", port)
        wait_serving(port)  # web CPU is counted from here (the app loaded)
        pending, conn = pending_counter(args, env, work)
        if executor is not None and args.pg_statements:
            top_statements(conn, 0, 1)  # the reset: migrations and set-up left out
        for number, phase in enumerate(phases):
            # A phase named again gets message ids of its own (the same would be retries).
            tag = phase if phases.index(phase) == number else f"{phase}{number}"
            if phase == "floor":
                lines += floor_phase(tag)
                continue
            web_cpu0, pg_cpu0 = cpu_seconds(web.pid), pg_cpu()
            if phase == "concurrent":
                worker = start_worker()
                ready = worker_ready()
                time.sleep(1)
                sent = send_all(args, key, port, tag)
                drained, _first, _left = wait_drained(pending, n)
                steady = None
                accepted_s = float(sent["seconds"])  # type: ignore[arg-type]
                processed_s = drained - float(sent["started"])  # type: ignore[arg-type]
                label = "processed into timelines (worker running while accepting)"
            else:
                sent = send_all(args, key, port, tag)  # no worker: accepting alone
                accepted_s = float(sent["seconds"])  # type: ignore[arg-type]
                worker = start_worker()
                ready = worker_ready()  # Django set up; the consumer starts and drains
                drained, first, left = wait_drained(pending, n)
                processed_s = time.time() - (time.perf_counter() - drained) - ready["at"]
                label = "backlog processed (from the worker being set up)"
                # From the first chunk seen marked processed: without the consumer's start
                # (task modules imported, the startup hooks) and the first chunk.
                steady = (left / (drained - first)) if first is not None and left else None
            worker_cpu = cpu_seconds(worker.pid) - ready["cpu"]
            web_cpu, server_cpu = cpu_seconds(web.pid) - web_cpu0, pg_cpu() - pg_cpu0
            stop(worker)
            worker = None
            done, distinct = stored(env, tag)
            failures = list(sent["failures"])  # type: ignore[call-overload]
            if done != n or distinct != n or failures:
                errors = len(failures)
                lost.append(
                    f"{tag}: {done:,} stored, {distinct:,} distinct of {n:,}, {errors} SDK errors"
                )
            rates[tag] = n / processed_s
            accepted[tag] = n / accepted_s
            if steady:
                rates[f"{tag}, after its first chunk"] = steady
            lines += [
                f"-- phase {tag}",
                f"accepted (SDK flushed, all 200): {accepted_s:.1f} s = {n / accepted_s:,.0f} events/s",
                f"{label}: {processed_s:.1f} s = {n / processed_s:,.0f} events/s"
                + (f"; after its first chunk {steady:,.0f} events/s" if steady else ""),
                f"stored {done:,}, distinct message ids {distinct:,}, SDK errors {len(failures)}",
                f"CPU seconds per 1,000 events: SDK clients {1000 * float(sent['cpu']) / n:.3f}, "  # type: ignore[arg-type]
                f"gunicorn {1000 * web_cpu / n:.3f}, worker {1000 * worker_cpu / n:.3f}"
                + (f", PostgreSQL server {1000 * server_cpu / n:.3f}" if executor else ""),
            ]
            if executor is not None and args.pg_statements:
                lines.append("server time by statement:")
                lines += top_statements(conn, args.pg_statements, n)
            if phase == "backlog" and args.raw_beside:
                # The machine's speed drifts over a run: the limit measured next to the phase.
                beside = raw_beside[tag] = measure_raw(f"b{number}", clean=True)
                names = {"insert": "executemany", "insert_text": "bare executemany", "copy": "COPY"}
                lines.append(
                    "raw insert of the same rows right after (rows/s): "
                    + ", ".join(f"{names[k]} {n / v:,.0f}" for k, v in beside.items())
                )
        conn.close()
        stop(web)
        web = None
        raw = measure_raw("", clean=False)
        lines.append(
            f"raw bulk insert of the same rows (executemany, one transaction): "
            f"{raw['insert']:.1f} s = {n / raw['insert']:,.0f} rows/s"
        )
        if "insert_text" in raw:
            lines.append(
                f"raw bulk insert of the same rows in their stored form (bare executemany, "
                f"one transaction): {raw['insert_text']:.1f} s = {n / raw['insert_text']:,.0f} rows/s"
            )
        if "copy" in raw:
            lines.append(
                f"raw COPY of the same rows (one transaction): "
                f"{raw['copy']:.1f} s = {n / raw['copy']:,.0f} rows/s"
            )
        for phase, rate in rates.items():
            lines.append(f"ratio processed / raw ({phase}): {ratios(rate, raw)}")
        for phase, beside in raw_beside.items():
            steady_rate = rates.get(f"{phase}, after its first chunk")
            lines.append(
                f"ratio processed / raw measured right after ({phase}): "
                f"{ratios(rates[phase], beside)}"
                + (f"; after its first chunk {ratios(steady_rate, beside)}" if steady_rate else "")
            )
        if floors:
            floor_rate = sum(floors.values()) / len(floors)
            lines.append(
                f"floor (the SDK against a server answering at once): {floor_rate:,.0f} events/s"
                f" (mean of {', '.join(f'{r:,.0f}' for r in floors.values())})"
            )
            for phase, rate in accepted.items():
                lines.append(f"ratio accepted / floor ({phase}): {rate / floor_rate:.2f}")
        print("\n".join(lines))
        if lost:
            raise SystemExit("loss, duplicates or SDK errors: " + "; ".join(lost))
    finally:
        for proc in (web, worker):
            if proc is not None:
                proc.kill()
        if executor is not None:
            executor.stop()


if __name__ == "__main__":
    main()
