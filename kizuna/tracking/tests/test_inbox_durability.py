"""With the inbox in a SQLite file of its own (the default installation), an accepted batch
is synced to disk before the 200, and a chunk's commit on the main database is synced before
its batches are marked processed: a power loss can then lose a mark (the batch is processed
again, adding nothing) but never events whose batch is marked. Checked in a fresh process
with the installation's settings, tracing the main connection's statements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECK = """
import json, django
django.setup()
from django.core.management import call_command
from django.db import connections
call_command("migrate", verbosity=0)
call_command("migrate", database="inbox", verbosity=0)
from kizuna.core.timeutil import now
from kizuna.tracking import protocol, services
source = services.source_create(name="Web").source
received = now()
batch = {"batch": [{"type": "track", "userId": "u-1", "event": "Viewed", "messageId": "m-1"}]}
accepted = protocol.accept(batch, kind="batch", received_at=received)
services.inbox_accept(source_id=source.id, received_at=received, accepted=accepted)
with connections["inbox"].cursor() as cursor:
    cursor.execute("PRAGMA synchronous")
    inbox_level = cursor.fetchone()[0]
main = connections["default"]
main.ensure_connection()
trace = []
main.connection.set_trace_callback(trace.append)
marked = []
stats = services.inbox_process(mark=lambda ids: marked.append((ids, len(trace))))
main.connection.set_trace_callback(None)
with main.cursor() as cursor:
    cursor.execute("PRAGMA synchronous")
    main_level = cursor.fetchone()[0]
statements = [
    " ".join(s.split()[:2]) if s.startswith("PRAGMA") else s.split()[0].upper() for s in trace
]
print(json.dumps({"inbox": inbox_level, "main_after": main_level, "events": stats.events_added,
                  "statements": statements, "marked_at": marked[0][1] if marked else None}))
"""


def test_the_chunk_is_on_disk_before_its_batches_are_marked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["inbox"] == 2  # FULL: each accepted batch synced
    assert result["events"] == 1
    statements = result["statements"][: result["marked_at"]]  # up to the mark
    full = statements.index("PRAGMA synchronous=FULL")
    commit = len(statements) - 1 - statements[::-1].index("COMMIT")
    assert full < statements.index("BEGIN") < commit  # the chunk's commit synced, then marked
    assert result["main_after"] == 1  # NORMAL again for the connection's other work
