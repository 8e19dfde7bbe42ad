"""With the inbox in a SQLite file of its own (the default installation), an accepted batch
is synced to disk before the 200, and a chunk's commit on the main database is synced before
its batches are marked processed: a power loss can then lose a mark (the batch is processed
again, adding nothing) but never events whose batch is marked. Checked in a fresh process
with the installation's settings, through the worker's drain (its marker thread)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECK = """
import json, os, django
django.setup()
from django.core.management import call_command
from django.db import connections
call_command("migrate", verbosity=0)
call_command("migrate", database="inbox", verbosity=0)
from kizuna.core import wal
from kizuna.core.timeutil import now
from kizuna.tracking import protocol, services, tasks
source = services.source_create(name="Web").source
for n in range(2):
    received = now()
    message = {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": f"m-{n}"}
    batch = {"batch": [message]}
    accepted = protocol.accept(batch, kind="batch", received_at=received)
    services.inbox_accept(source_id=source.id, received_at=received, accepted=accepted)
with connections["inbox"].cursor() as cursor:
    cursor.execute("PRAGMA synchronous")
    inbox_level = cursor.fetchone()[0]
steps = []
real_fsync, real_mark = os.fsync, tasks.inbox_mark_processed
def fsync(descriptor):
    steps.append("fsync " + os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")))
    real_fsync(descriptor)
def mark(batch_ids, *, inbox):
    steps.append(f"mark {len(batch_ids)}")
    return real_mark(batch_ids, inbox=inbox)
wal.os.fsync, tasks.inbox_mark_processed = fsync, mark
done = tasks.drain(max_seconds=30, chunk=1)
print(json.dumps({"inbox": inbox_level, "done": done, "steps": steps}))
"""


def test_each_chunk_is_on_disk_before_its_batches_are_marked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["inbox"] == 2  # FULL: each accepted batch synced before the 200
    assert result["done"] == 2
    # Two chunks of one batch: each marked after the main database's log and file synced.
    sync = ["fsync kizuna.sqlite3-wal", "fsync kizuna.sqlite3"]
    assert result["steps"] == [*sync, "mark 1", *sync, "mark 1"]
