"""A throwaway PostgreSQL server for the loyalty benchmarks (pytest-postgresql's executor,
through tests/support/pg_ctl so it also works as root). Not a benchmark itself."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from pytest_postgresql.executors.proc import PostgreSQLExecutor

ROOT = Path(__file__).resolve().parent.parent
PG_CTL = str(ROOT / "tests" / "support" / "pg_ctl")
# Larger WAL and shared buffers than the defaults (as any production server would have);
# durability settings (fsync, synchronous_commit) are left at their defaults.
OPTIONS = "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=30min"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres(dbname: str = "kizuna_bench") -> Iterator[str]:
    """Start a server, create `dbname`, yield its URL; stop and delete it afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="kz-bench-pg-"))
    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=PG_CTL,
        host="127.0.0.1",
        port=port,
        user="postgres",
        password="",
        dbname=dbname,
        options="",
        datadir=str(tmp / "data"),
        unixsocketdir=str(tmp),
        logfile=str(tmp / "pg.log"),
        startparams="-w",
        postgres_options=OPTIONS,
    )
    executor.start()
    try:
        executor.wait_for_postgres()
        for attempt in range(60):  # on a loaded machine "starting up" can outlast the wait
            try:
                conn = psycopg.connect(
                    host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
                )
                break
            except psycopg.OperationalError:
                if attempt == 59:
                    raise
                time.sleep(0.5)
        with conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        yield f"postgres://postgres@127.0.0.1:{port}/{dbname}"
    finally:
        executor.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def setup_django(url: str, data_dir: str) -> None:
    os.environ["KIZUNA_DATABASE_URL"] = url
    os.environ["KIZUNA_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
