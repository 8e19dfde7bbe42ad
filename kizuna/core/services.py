from __future__ import annotations

from kizuna.core.models import WorkerHeartbeat
from kizuna.core.timeutil import now


def worker_heartbeat_record(*, worker: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        worker=worker, defaults={"seen_at": now()}
    )
    return heartbeat
