from __future__ import annotations

from datetime import timedelta

from kizuna.core.models import WorkerHeartbeat
from kizuna.core.timeutil import now

WORKER_STALE_AFTER = timedelta(minutes=2)


def worker_status() -> dict:
    """Whether any worker has reported within WORKER_STALE_AFTER, and when it last did."""
    latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if latest is None:
        return {"online": False, "seen_at": None, "workers": 0}
    cutoff = now() - WORKER_STALE_AFTER
    return {
        "online": latest.seen_at >= cutoff,
        "seen_at": latest.seen_at,
        "workers": WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).count(),
    }
