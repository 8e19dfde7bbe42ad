"""The real `kizuna` console script in a subprocess, on a throwaway data directory."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

KIZUNA = str(Path(sys.executable).with_name("kizuna"))


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(data_dir), COLUMNS="120", KIZUNA_LANGUAGE="en")
    return env


def _password_works(data_dir: Path, username: str, password: str) -> bool:
    check = (
        "import django; django.setup();"
        "from django.contrib.auth import authenticate;"
        f"print(authenticate(username={username!r}, password={password!r}) is not None)"
    )
    env = _env(data_dir) | {"DJANGO_SETTINGS_MODULE": "kizuna.settings.base"}
    done = subprocess.run(
        [sys.executable, "-c", check],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().endswith("True")


def test_demo_no_serve_end_to_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run = subprocess.run(
        [KIZUNA, "demo", "--no-serve", "--customers", "60", "--seed", "3"],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    match = re.search(r"Password\s+(\S+)", run.stdout)
    assert match, run.stdout
    password = match.group(1)
    assert re.search(r"Username\s+demo\b", run.stdout)
    assert (data_dir / "demo-login.txt").stat().st_mode & 0o777 == 0o600
    assert _password_works(data_dir, "demo", password)
    assert _password_works(data_dir, "demo-marketer", password)
    assert not _password_works(data_dir, "demo", password + "x")
    with sqlite3.connect(data_dir / "kizuna.sqlite3") as db:
        customers = db.execute("SELECT COUNT(*) FROM customers_customer").fetchone()[0]
        orders = db.execute("SELECT COUNT(*) FROM commerce_order").fetchone()[0]
    assert customers == 60 and orders > 60

    # A second run finds the data loaded and prints the same password.
    again = subprocess.run(
        [KIZUNA, "demo", "--no-serve", "--customers", "60"],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout
    assert f"Password     {password}" in again.stdout or re.search(
        rf"Password\s+{re.escape(password)}", again.stdout
    )
    with sqlite3.connect(data_dir / "kizuna.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM customers_customer").fetchone()[0] == 60

    # --reset starts over: the database and the tracking inbox's own file are new.
    inbox = data_dir / "inbox.sqlite3"
    assert inbox.exists()
    with sqlite3.connect(inbox) as db:
        db.execute("CREATE TABLE old_marker (x)")
    reset = subprocess.run(
        [KIZUNA, "demo", "--no-serve", "--reset", "--customers", "40"],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert reset.returncode == 0, reset.stderr + reset.stdout
    with sqlite3.connect(data_dir / "kizuna.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM customers_customer").fetchone()[0] == 40
    with sqlite3.connect(inbox) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "old_marker" not in tables and "tracking_inboxbatch" in tables


def _niceness(pid: int) -> dict[int, int]:
    """Every thread's niceness (field 19 of /proc/PID/task/TID/stat), by thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        found[int(task.name)] = int(fields[16])
    return found


def test_worker_runs_on_the_sqlite_queue(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["KIZUNA_WORKER_NICE"] = "7"
    subprocess.run([KIZUNA, "migrate", "-v", "0"], env=env, check=True, timeout=120)
    worker = subprocess.Popen(
        [KIZUNA, "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert worker.stdout is not None
    reader = threading.Thread(target=lines.extend, args=(worker.stdout,), daemon=True)
    reader.start()
    try:
        # Start-up takes seconds on a loaded machine: wait for the consumer's banner.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("consumer started" in x for x in lines):
            time.sleep(0.1)
        assert worker.poll() is None  # still running
        assert (tmp_path / "queue.sqlite3").exists()
        # Below the web server's CPU priority, every thread (the consumer's and the lanes'),
        # unless this test already runs at a higher niceness (never lowered).
        threads = _niceness(worker.pid)
        assert len(threads) > 1
        assert set(threads.values()) == {max(7, os.nice(0))}, threads
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        reader.join(timeout=10)
    assert any("Huey consumer started with 1 thread" in line for line in lines), lines


def _queued(queue_file: Path, queue: str) -> int:
    with sqlite3.connect(queue_file) as db:
        return int(db.execute("SELECT COUNT(*) FROM task WHERE queue = ?", (queue,)).fetchone()[0])


def test_the_demos_worker_sends_from_every_lane(tmp_path: Path) -> None:
    """`kizuna demo` starts `processes.worker_argv()`: it must consume the sending lanes'
    queues too, or a campaign's or a password reset's deliveries would wait forever."""
    from kizuna.cli import processes

    env = _env(tmp_path)
    env["DJANGO_SETTINGS_MODULE"] = "kizuna.settings.base"
    subprocess.run([KIZUNA, "migrate", "-v", "0"], env=env, check=True, timeout=120)
    enqueue = (
        "import django; django.setup(); from kizuna.messaging import lanes\n"
        "for lane in lanes.LANES: lanes.enqueue(lane, [])"
    )
    subprocess.run([sys.executable, "-c", enqueue], env=env, check=True, timeout=120)
    queue_file = tmp_path / "queue.sqlite3"
    lanes = ("kizuna-transactional", "kizuna-journey", "kizuna-bulk")
    assert [_queued(queue_file, lane) for lane in lanes] == [1, 1, 1]
    worker = subprocess.Popen(processes.worker_argv(), env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(_queued(queue_file, x) for x in lanes):
            assert worker.poll() is None
            time.sleep(0.2)
        assert [_queued(queue_file, lane) for lane in lanes] == [0, 0, 0]
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)


@pytest.mark.parametrize("command", ["worker", "serve", "demo", "apikey", "createuser"])
def test_help_documents_the_options(command: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [KIZUNA, command, "--help"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    expected = {
        "worker": "--workers",
        "serve": "--workers",
        "demo": "--no-serve",
        "apikey": "create",
        "createuser": "--role",
    }[command]
    assert expected in run.stdout
