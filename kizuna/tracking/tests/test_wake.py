"""A batch stored just after a wake-up's drain found the inbox empty (its own wake-up
skipped: the web process woke the worker less than WAKE_INTERVAL before) is still processed
by that drain, which looks once more: not a minute later by the periodic drain. Checked in
a fresh process with the installation's settings (the inbox in a file of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECK = """
import json, sys, time, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", database="inbox", verbosity=0)
from kizuna.core.timeutil import now
from kizuna.tracking import protocol, services, tasks
from kizuna.tracking.models import InboxBatch
source = services.source_create(name="Web").source
real = tasks.inbox_process
def pending():
    return InboxBatch.objects.using("inbox").filter(processed_at__isnull=True).count()
def drain_with_a_late_batch(message_id, woken_at):
    looks = []
    def process(**kwargs):
        stats = real(**kwargs)
        looks.append(stats.batches)
        if len(looks) == 1:  # the inbox was empty: a request is stored right after the look
            received = now()
            message = {"type": "track", "userId": "u-1", "event": "V", "messageId": message_id}
            accepted = protocol.accept({"batch": [message]}, kind="batch", received_at=received)
            services.inbox_accept(source_id=source.id, received_at=received, accepted=accepted)
        return stats
    tasks.inbox_process = process
    try:
        args = () if woken_at is None else (woken_at,)
        done = tasks.inbox_drain.call_local(*args)
    finally:
        tasks.inbox_process = real
    return {"done": done, "pending": pending(), "first_look": looks[0]}
results = {"periodic": drain_with_a_late_batch("m-1", None)}
results["cleared"] = tasks.drain()
results["wake-up"] = drain_with_a_late_batch("m-2", time.time())
print(json.dumps(results))
"""


def test_a_wake_up_drain_looks_again_for_batches_stored_after_its_look(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "DJANGO_"))}
    env.update(KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    out = subprocess.run(
        [sys.executable, "-c", CHECK],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # A drain without a wake-up time (the periodic drain's kind) stops at the empty inbox and
    # leaves the late batch for the next drain ...
    assert result["periodic"] == {"done": 0, "pending": 1, "first_look": 0}
    assert result["cleared"] == 1
    # ... a wake-up's drain looks again and processes it.
    assert result["wake-up"] == {"done": 1, "pending": 0, "first_look": 0}
