"""The real worker: `kizuna worker` runs a task queued by another process, with the queue on
SQLite (the embedded default) and on a real Redis server (the scale-out setting)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

KIZUNA = [sys.executable, "-m", "kizuna"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is missing: `python3 dev.py test` installs it with apt-get"
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def _heartbeats(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from core_workerheartbeat").fetchone()[0])


HEARTBEAT = b"kizuna.core.tasks.worker_heartbeat"


def _queued(queue: str, env: dict[str, str]) -> int:
    """Heartbeat tasks waiting in the queue's own storage (read without kizuna). Only those
    are counted: the worker's own schedules (every minute) may enqueue others meanwhile."""
    if queue == "redis":
        client = redis.Redis.from_url(env["KIZUNA_QUEUE_URL"])
        keys = cast(list[bytes], client.keys("huey.redis.kizuna*"))
        messages = [
            message
            for key in keys
            if client.type(key) == b"list"
            for message in cast(list[bytes], client.lrange(key, 0, -1))
        ]
    else:
        with sqlite3.connect(Path(env["KIZUNA_DATA_DIR"]) / "queue.sqlite3") as conn:
            messages = [bytes(row[0]) for row in conn.execute("select data from task")]
    return sum(HEARTBEAT in message for message in messages)


@pytest.mark.parametrize("queue", ["sqlite", "redis"])
def test_worker_runs_a_task_enqueued_by_another_process(
    tmp_path: Path, queue: str, request: pytest.FixtureRequest
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    if queue == "redis":
        env["KIZUNA_QUEUE_URL"] = request.getfixturevalue("redis_url")
        env["KIZUNA_CACHE_URL"] = env["KIZUNA_QUEUE_URL"][:-1] + "1"
    subprocess.run([*KIZUNA, "migrate", "--verbosity", "0"], env=env, check=True)
    db = tmp_path / "kizuna.sqlite3"
    # Enqueue from a separate process, as the web server would.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from kizuna.core.tasks import worker_heartbeat; "
            "worker_heartbeat()",
        ],
        env=env,
        check=True,
    )
    assert _heartbeats(db) == 0  # queued, not yet run
    assert _queued(queue, env) == 1
    worker = subprocess.Popen(
        [*KIZUNA, "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The worker's schedule enqueues a heartbeat of its own at start (every minute): wait
        # until the one enqueued above has run and none is left waiting. Checked here, before
        # the worker stops: a minute turning meanwhile would enqueue another.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_heartbeats(db) == 0 or _queued(queue, env)):
            time.sleep(0.2)
        assert _heartbeats(db) == 1
        assert _queued(queue, env) == 0
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=20)
    assert "kizuna.core.tasks.worker_heartbeat" in output
