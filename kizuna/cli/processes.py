"""Starting and supervising the web server and the worker as child processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

if TYPE_CHECKING:  # rich costs the worker's start ~40 ms; it only prints for `demo`
    from rich.console import Console

STOP_TIMEOUT = 15.0


def gunicorn_argv(*, host: str, port: int, workers: int, threads: int) -> list[str]:
    """gunicorn serving kizuna's WSGI app; the settings module comes from the environment."""
    return [
        sys.executable, "-m", "gunicorn", "kizuna.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-tmp-dir", "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp",  # noqa: S108
        "--graceful-timeout", "10",
        "--error-logfile", "-",
    ]  # fmt: skip


def worker_argv() -> list[str]:
    """`kizuna worker`: the main queue and every sending lane (plain `run_huey` would
    leave the lanes' deliveries queued)."""
    return [sys.executable, "-m", "kizuna", "worker"]


def lower_cpu_priority(niceness: int) -> int:
    """Raise this process's niceness to `niceness` (0-19) unless it is higher already
    (lowering it needs privileges); returns the niceness now. On Linux niceness belongs to
    each thread (a new one inherits its creator's), so the threads already running (set-up
    starts a few) are lowered one by one."""
    target = min(niceness, 19)
    current = os.nice(0)
    if target <= current:
        return current
    tasks = Path(f"/proc/{os.getpid()}/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return os.nice(0)


def child_env() -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
    env["KIZUNA_DATA_DIR"] = str(settings.DATA_DIR)
    return env


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 30.0) -> bool:
    """True once something accepts connections on host:port; False if `process` died first."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host  # noqa: S104
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((target, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(children: Mapping[str, subprocess.Popen]) -> None:
    """Ask each child to stop (gunicorn: TERM = graceful; Huey: INT = graceful), then kill
    whatever is still running after STOP_TIMEOUT."""
    for name, process in children.items():
        if process.poll() is None:
            process.send_signal(signal.SIGINT if name == "worker" else signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in children.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def supervise(children: Mapping[str, subprocess.Popen], console: Console) -> int:
    """Wait until Ctrl-C (or SIGTERM) or until a child exits; stop the others either way.

    Returns 0 after a requested stop or when a child stopped cleanly on its own (exit code
    0: the whole process group was interrupted, say, and the children were quicker), the
    child's code when it failed.
    """

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        while True:
            for name, process in children.items():
                code = process.poll()
                if code is not None:
                    console.print(
                        ("[red]" if code else "")
                        + _("The %(name)s stopped (exit code %(code)s); stopping the rest.")
                        % {"name": name, "code": code}
                    )
                    stop(children)
                    return code
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print(_("Stopping the web server and the worker…"))
        stop(children)
        console.print(_("Stopped."))
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
