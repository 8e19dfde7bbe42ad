"""`processes.supervise`: the demo's web server and worker, watched as real child processes."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
from django.utils import translation
from rich.console import Console

from kizuna.cli import processes


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def _supervised(exit_code: int) -> tuple[int, str, subprocess.Popen[bytes]]:
    """A `web` child that exits with `exit_code` after a moment beside a `worker` that
    would run for a minute; returns supervise's code, what it printed, the worker."""
    # Ctrl-C's handler set explicitly, as Huey's consumer sets its own: a child started with
    # SIGINT ignored (a background job's, as in CI) would keep ignoring it.
    worker = _child(
        "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "time.sleep(60)"
    )
    web = _child(f"import sys, time; time.sleep(0.3); sys.exit({exit_code})")
    out = io.StringIO()
    started = time.monotonic()
    with translation.override("en"):
        code = processes.supervise({"web": web, "worker": worker}, Console(file=out, width=200))
    assert time.monotonic() - started < processes.STOP_TIMEOUT  # stopped, not killed late
    return code, out.getvalue(), worker


@pytest.mark.parametrize("exit_code", [3, 1])
def test_a_child_that_fails_stops_the_rest_and_gives_its_code(exit_code: int) -> None:
    code, printed, worker = _supervised(exit_code)
    assert code == exit_code
    assert f"exit code {exit_code}" in printed
    assert worker.poll() is not None  # the worker was stopped too


def test_a_child_that_stops_cleanly_stops_the_rest_and_is_no_failure() -> None:
    # As when the whole process group gets Ctrl-C and the children stop before the
    # supervisor notices.
    code, printed, worker = _supervised(0)
    assert code == 0
    assert "exit code 0" in printed
    assert worker.poll() is not None
