"""`processes.lower_cpu_priority`, in child processes (niceness cannot be raised back)."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import os, sys, threading
from kizuna.cli.processes import lower_cpu_priority
started = threading.Event()
stop = threading.Event()
def earlier():  # a thread running before the call, as set-up starts some
    started.set()
    stop.wait()
thread = threading.Thread(target=earlier)
thread.start()
started.wait()
now = lower_cpu_priority(int(sys.argv[1]))
later = []
after = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))
after.start()
after.join()
tasks = [int(t) for t in os.listdir(f"/proc/{os.getpid()}/task")]
print(now, sorted({os.getpriority(os.PRIO_PROCESS, t) for t in tasks}), later[0])
stop.set()
"""


def _run(target: int, *, start_at: int = 0) -> str:
    def before() -> None:
        os.nice(start_at)

    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(target)],
        preexec_fn=before if start_at else None,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_every_thread_is_lowered_and_new_ones_inherit_it() -> None:
    target = min(max(os.nice(0) + 1, 9), 19)
    assert _run(target) == f"{target} [{target}] {target}"


def test_a_higher_niceness_is_never_lowered() -> None:
    start = min(os.nice(0) + 12, 19)
    assert _run(5, start_at=12) == f"{start} [{start}] {start}"
