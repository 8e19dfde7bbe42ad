"""Worker tasks: the only code that talks to SMTP servers, LINE and webhooks.

Sending runs on the lane queues (`kizuna.messaging.lanes`): each lane's task takes delivery
ids and owns the retries: a temporary failure reschedules the delivery with exponential
backoff, a channel whose breaker is open reschedules it for the breaker's retry time, quiet
hours for the morning (retries of one batch with the same delay go in one task). The
periodic sweep and the start-up recovery run on the main queue and hand what is due to the
delivery's own lane.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, on_startup

from kizuna.messaging import lanes, services

logger = logging.getLogger(__name__)
BATCH = services.BATCH


def send_and_reschedule(delivery_ids: list[int]) -> dict[str, int]:
    """Send a batch (the body of every lane's task); schedule its retries on their lane."""
    result = services.delivery_send_batch(delivery_ids=list(delivery_ids))
    if result.requeue:  # released after an unexpected error: the next task sends them
        services.enqueue_now(services.group_by_lane(result.requeue))
    retry = [(pk, delay) for pk, delay in result.retry]
    if retry:
        lane_of = services.lanes_of([pk for pk, _delay in retry])
        grouped: dict[tuple[str, int], list[int]] = defaultdict(list)
        for pk, delay in retry:
            grouped[(lane_of.get(pk, lanes.LANES[-1]), max(1, round(delay)))].append(pk)
        for (lane, delay), ids in grouped.items():
            services.enqueue_now({lane: ids}, delay=float(delay))
    return {
        "sent": len(result.sent),
        "refused": len(result.refused),
        "failed": len(result.failed),
        "retry": len(result.retry),
        "requeued": len(result.requeue),
    }


def send_deliveries(delivery_ids: list[int]) -> None:
    """Queue these deliveries on their lanes (tests, tools)."""
    services.enqueue_now(services.group_by_lane(list(delivery_ids)))


def _queue_due(older_than: timedelta = timedelta(0)) -> int:
    due = services.deliveries_due(older_than=older_than)
    services.enqueue_now(services.group_by_lane(due))
    return len(due)


@db_periodic_task(crontab(minute="*"))
def deliveries_sweep() -> int:
    """The safety net: claims of dead workers, wake-ups lost in a crash, due retries,
    deferred deliveries of channels whose breaker is due for a probe."""
    recovered = services.delivery_recover_interrupted()
    if recovered["requeued"]:
        services.enqueue_now(services.group_by_lane(recovered["requeued"]))
    return _queue_due(older_than=timedelta(minutes=1))


@on_startup()
def recover_on_start() -> None:
    lanes.register_all()
    recovered = services.delivery_recover_interrupted()
    if any(recovered.values()):
        logger.warning("messaging: recovered interrupted deliveries %s", recovered)
    _queue_due()


lanes.register_all()
