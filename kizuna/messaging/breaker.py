"""Per-channel circuit breakers and token buckets, shared by every worker process through
the database (one small row per channel / per bucket key).

Breaker: `THRESHOLD` consecutive channel faults (connection refused or hung, SMTP 421/451
on the session, LINE 5xx/429/garbage, webhook timeouts) open it; while open, every delivery
on the channel is deferred to `retry_at` without spending an attempt; at `retry_at` one
worker wins the half-open probe (an UPDATE that only one can make); its first send closes
the breaker (and queues the deferred deliveries at once) or re-opens it for the next step
of `SCHEDULE`.

Token buckets: a worker takes the tokens for a whole batch in one row update; deliveries
beyond what it got wait (still queued) for as long as the refill takes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from kizuna.core.timeutil import now
from kizuna.messaging.choices import BreakerState
from kizuna.messaging.models import Breaker, RateBucket

THRESHOLD = 5
SCHEDULE = (10, 30, 60, 120, 300, 600)  # seconds open, by how many times it opened in a row
PROBE_TIMEOUT = timedelta(minutes=2)  # a half-open probe that never reported


@dataclass
class View:
    """What a batch knows of one breaker."""

    state: str
    failures: int
    retry_at: datetime | None


def states(channel_ids: set[int]) -> dict[int, View]:
    return {
        b.channel_id: View(b.state, b.failures, b.retry_at)
        for b in Breaker.objects.filter(channel_id__in=channel_ids)
    }


def allow(channel_id: int, view: View | None, moment: datetime) -> tuple[bool, datetime | None]:
    """May this batch send on the channel? (allowed, retry_at when not)."""
    if view is None or view.state == BreakerState.CLOSED:
        return True, None
    if view.state == BreakerState.OPEN and view.retry_at and view.retry_at > moment:
        return False, view.retry_at
    # Open and due, or a half-open probe that went silent: one worker becomes the probe.
    expected = (
        Breaker.objects.filter(channel_id=channel_id, state=BreakerState.OPEN, retry_at__lte=moment)
        if view.state == BreakerState.OPEN
        else Breaker.objects.filter(
            channel_id=channel_id,
            state=BreakerState.HALF_OPEN,
            updated_at__lte=moment - PROBE_TIMEOUT,
        )
    )
    if expected.update(state=BreakerState.HALF_OPEN, updated_at=moment):
        view.state = BreakerState.HALF_OPEN
        return True, None
    return False, moment + timedelta(seconds=SCHEDULE[0])


def record_success(channel_id: int, view: View | None) -> bool:
    """A send worked: reset the count; True when this closed an open/half-open breaker."""
    if view is None or (view.state == BreakerState.CLOSED and view.failures == 0):
        return False
    was_open = view.state != BreakerState.CLOSED
    Breaker.objects.filter(channel_id=channel_id).update(
        state=BreakerState.CLOSED, failures=0, opened_count=0, retry_at=None, updated_at=now()
    )
    view.state, view.failures, view.retry_at = BreakerState.CLOSED, 0, None
    return was_open


def record_fault(channel_id: int, view: View | None, reason: str) -> View:
    """A channel fault: count it; open the breaker at THRESHOLD (at once when probing)."""
    moment = now()
    with transaction.atomic():
        breaker, _created = Breaker.objects.select_for_update().get_or_create(
            channel_id=channel_id, defaults={"updated_at": moment}
        )
        breaker.failures = F("failures") + 1
        breaker.last_error = reason[:300]
        breaker.updated_at = moment
        breaker.save()
        breaker.refresh_from_db()
        opens = breaker.state == BreakerState.HALF_OPEN or (
            breaker.state == BreakerState.CLOSED and breaker.failures >= THRESHOLD
        )
        if opens:
            step = SCHEDULE[min(breaker.opened_count, len(SCHEDULE) - 1)]
            breaker.state = BreakerState.OPEN
            breaker.opened_count += 1
            breaker.retry_at = moment + timedelta(seconds=step)
            breaker.save(update_fields=["state", "opened_count", "retry_at"])
    return View(breaker.state, breaker.failures, breaker.retry_at)


def reset(channel_id: int) -> None:
    """Staff closed the breaker by hand."""
    Breaker.objects.filter(channel_id=channel_id).update(
        state=BreakerState.CLOSED, failures=0, opened_count=0, retry_at=None, updated_at=now()
    )


# --- token buckets ---------------------------------------------------------------------------


def take(key: str, *, rate: float, wanted: int, burst: float | None = None) -> tuple[int, float]:
    """Take up to `wanted` tokens from the bucket `key` (refilled at `rate` per second, at
    most `burst`, default one second's worth). Returns (granted, seconds until the next)."""
    if wanted <= 0:
        return 0, 0.0
    capacity = max(1.0, burst if burst is not None else rate)
    clock = time.time()
    with transaction.atomic():
        bucket, _created = RateBucket.objects.select_for_update().get_or_create(
            key=key, defaults={"tokens": capacity, "refilled_at": clock}
        )
        tokens = min(capacity, bucket.tokens + max(0.0, clock - bucket.refilled_at) * rate)
        granted = min(wanted, int(tokens))
        bucket.tokens = tokens - granted
        bucket.refilled_at = clock
        bucket.save(update_fields=["tokens", "refilled_at"])
    wait = 0.0 if granted == wanted else max(0.05, (1 - (tokens - granted) % 1) / rate)
    return granted, wait
