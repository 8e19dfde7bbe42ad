"""Worker tasks: the only code that talks to SMTP servers, LINE and webhooks.

Tasks take delivery ids and own the retries: a temporary failure reschedules the delivery
with exponential backoff; quiet hours reschedule it for the morning. A worker that starts
recovers the claims of a predecessor that died and queues whatever is due.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, on_startup

from kizuna.messaging import services

logger = logging.getLogger(__name__)
BATCH = 50


@db_task()
def send_deliveries(delivery_ids: list[int]) -> dict[str, int]:
    result = services.delivery_send_batch(delivery_ids=list(delivery_ids))
    for delivery_id, delay in result.retry:
        send_deliveries.schedule(([delivery_id],), delay=max(1.0, delay))
    return {
        "sent": len(result.sent),
        "refused": len(result.refused),
        "failed": len(result.failed),
        "retry": len(result.retry),
    }


def _queue_due(older_than: timedelta = timedelta(0)) -> int:
    due = services.deliveries_due(older_than=older_than)
    for start in range(0, len(due), BATCH):
        send_deliveries(due[start : start + BATCH])
    return len(due)


@db_periodic_task(crontab(minute="*"))
def deliveries_sweep() -> int:
    """The safety net: claims of dead workers, wake-ups lost in a crash, due retries."""
    recovered = services.delivery_recover_interrupted()
    if recovered["requeued"]:
        send_deliveries(recovered["requeued"])
    return _queue_due(older_than=timedelta(minutes=1))


@on_startup()
def recover_on_start() -> None:
    recovered = services.delivery_recover_interrupted()
    if any(recovered.values()):
        logger.warning("messaging: recovered interrupted deliveries %s", recovered)
    _queue_due()
