"""The benches' working directories (databases, logs, generated files): removed when the
bench's process exits, however it exits; `KIZUNA_BENCH_KEEP=1` keeps them (the path is
printed). A sending or ingestion run leaves hundreds of MB to GBs otherwise."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path


def bench_workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("KIZUNA_BENCH_KEEP"):
        print(f"working directory kept: {path}", file=sys.stderr)
    else:
        # At exit, after the bench's own clean-up (servers stopped in its `finally`).
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
