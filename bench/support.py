"""What several benchmarks share: a free loopback port, waiting for a web server to answer, a
counting SMTP handler for aiosmtpd, and a throwaway PostgreSQL server (pytest-postgresql's
executor, run as the postgres user through tests/support/pg_ctl so that it works as root
too)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_CTL = str(ROOT / "tests" / "support" / "pg_ctl")


def wait_for_http(url: str, *, seconds: float = 60.0) -> None:
    """Until `url` answers at all (any status): a server started by the bench is up."""
    import time

    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpCounter:
    """aiosmtpd handler that accepts every message and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"


def postgres_executor(workdir: Path, *, settings: str, dbname: str = "kizuna_bench") -> Any:
    """A PostgreSQL server (not started) with its data, socket and log in `workdir`; `settings`
    are `-c name=value` server options. Its URL: `postgres://postgres@127.0.0.1:{port}/postgres`."""
    from pytest_postgresql.executors import PostgreSQLExecutor

    os.chmod(workdir, 0o755)  # noqa: S103 (the postgres user must reach the data directory)
    return PostgreSQLExecutor(
        executable=PG_CTL,
        host="127.0.0.1",
        port=free_port(),
        datadir=str(workdir / "data"),
        unixsocketdir=str(workdir),
        logfile=str(workdir / "postgres.log"),
        startparams=f"-w -o '{settings}'",
        dbname=dbname,
        timeout=120,
    )
