"""Sending lanes: transactional, journey and bulk deliveries each have their own Huey queue
(a separate Huey instance, `<name>-<lane>`, on the same backend as the main queue: the same
SQLite file or Redis server) and their own worker threads, so a million-recipient campaign
queued in `bulk` never delays a password reset in `transactional`.

A delivery's lane follows from its origin (`lane_for`). `kizuna worker --lane L` consumes
one lane; `kizuna worker` (all) consumes the main queue and every lane in one process.
`KIZUNA_SEND_CONCURRENCY` (default 4) is the one concurrency setting: the number of worker
threads each lane gets in each worker process.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from django.conf import settings
from huey import Huey
from huey.contrib.djhuey import close_db
from huey.utils import load_class

from kizuna.messaging.choices import Lane, Purpose

LANES: tuple[str, ...] = (Lane.TRANSACTIONAL.value, Lane.JOURNEY.value, Lane.BULK.value)
TRANSACTIONAL_SOURCES = ("test:", "password_reset", "receipt", "support", "double_opt_in")


def lane_for(source: str, purpose: str) -> str:
    """campaign:… → bulk, journey:… → journey, transactional purposes (receipts, password
    reset, support replies, double opt-in) and staff test sends → transactional, the rest
    (marketing sent through the API) → bulk."""
    if source.startswith("campaign:"):
        return Lane.BULK
    if source.startswith("journey:"):
        return Lane.JOURNEY
    if purpose == Purpose.TRANSACTIONAL or source.startswith(TRANSACTIONAL_SOURCES):
        return Lane.TRANSACTIONAL
    return Lane.BULK


def concurrency() -> int:
    value = getattr(settings, "KIZUNA_SEND_CONCURRENCY", None)
    if value is None:
        value = os.environ.get("KIZUNA_SEND_CONCURRENCY") or 4
    return max(1, int(value))


def _build(lane: str) -> Huey:
    config: Any = settings.HUEY
    if isinstance(config, Huey):  # a ready instance: its class and storage settings
        kwargs = dict(config.storage_kwargs)
        return type(config)(f"{config.name}-{lane}", immediate=config.immediate, **kwargs)
    config = dict(config)
    name = config.pop("name", "kizuna")
    cls = load_class(config.pop("huey_class", "huey.RedisHuey"))
    config.pop("consumer", None)
    config.update(config.pop("connection", {}))
    config.setdefault("immediate", settings.DEBUG)
    return cls(f"{name}-{lane}", **config)


def huey_for(lane: str) -> Huey:
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}")
    return _huey_for(str(Lane(lane).value))  # one instance per lane, however it is named


@functools.cache
def _huey_for(lane: str) -> Huey:
    return _build(lane)


def _send(delivery_ids: list[int]) -> dict[str, int]:
    from kizuna.messaging import tasks

    return tasks.send_and_reschedule(list(delivery_ids))


def send_task(lane: str) -> Any:
    """The lane's task that sends a batch of delivery ids."""
    return _send_task(str(Lane(lane).value))


@functools.cache
def _send_task(lane: str) -> Any:
    huey = huey_for(lane)
    return huey.task(name=f"messaging.send.{lane}")(close_db(_send))


def enqueue(lane: str, delivery_ids: list[int], delay: float | None = None) -> None:
    task = send_task(lane)
    if delay:
        task.schedule((list(delivery_ids),), delay=delay)
    else:
        task(list(delivery_ids))


def register_all() -> None:
    """Register every lane's task (the worker does this before it starts consuming)."""
    for lane in LANES:
        send_task(lane)


# Messages a bulk-lane worker claims in one transaction and records in one transaction: a
# crash leaves at most this many email messages `unknown` (never resent). The other lanes
# send one at a time (one in flight, the lowest latency).
BULK_GROUP_DEFAULT = 20


def send_group(lane: str) -> int:
    """How many deliveries of `lane` one worker claims (and records) per transaction."""
    if lane != Lane.BULK:
        return 1
    value = getattr(settings, "KIZUNA_SEND_GROUP", None)
    if value is None:
        value = os.environ.get("KIZUNA_SEND_GROUP") or BULK_GROUP_DEFAULT
    return max(1, min(int(value), 500))
