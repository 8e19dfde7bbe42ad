"""A drain's transactions grow while a backlog lasts (`tasks.drain`): twice the size after
each full chunk up to TRACKING_PROCESS_CHUNK_MAX, back to TRACKING_PROCESS_CHUNK after one
short of its size; a backlog in sight at the start is taken at the size grown for it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kizuna.customers.models import Event
from kizuna.tracking import protocol, services, tasks
from kizuna.tracking.models import InboxBatch

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _accept_batches(count: int, prefix: str) -> None:
    source = services.source_create(name=f"Shop {prefix}").source
    for n in range(count):
        message = {
            "type": "track",
            "userId": f"u-{n % 3}",
            "event": "Viewed",
            "messageId": f"{prefix}-{n}",
            "timestamp": (T0 + timedelta(minutes=n)).isoformat(),
        }
        received = T0 + timedelta(hours=1)
        accepted = protocol.accept({"batch": [message]}, kind="batch", received_at=received)
        assert not accepted.errors
        services.inbox_accept(source_id=source.id, received_at=received, accepted=accepted)


# Called after each of the drain's transactions (`chunks`), with how many were done so far.
after_chunk: list[Any] = []


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """(messages asked for, messages processed) of each of the drain's transactions."""
    seen: list[tuple[int, int]] = []
    real = tasks.inbox_process

    def recording(**kwargs: Any) -> services.ProcessStats:
        stats = real(**kwargs)
        seen.append((kwargs["max_messages"], stats.messages))
        for hook in after_chunk:
            hook(len(seen))
        return stats

    monkeypatch.setattr(tasks, "inbox_process", recording)
    yield seen
    after_chunk.clear()


def test_a_backlog_growing_during_a_drain_is_taken_in_growing_chunks(
    settings: Any, chunks: list
) -> None:
    settings.TRACKING_PROCESS_CHUNK, settings.TRACKING_PROCESS_CHUNK_MAX = 1, 4
    _accept_batches(1, "first")
    after_chunk.append(lambda done: _accept_batches(8, "grow") if done == 1 else None)
    assert tasks.drain() == 9
    assert chunks == [(1, 1), (2, 2), (4, 4), (4, 2), (1, 0)]
    assert Event.objects.filter(message_id__startswith="grow-").count() == 8
    assert not InboxBatch.objects.filter(processed_at__isnull=True).exists()


def test_a_backlog_in_sight_at_the_start_is_taken_at_the_size_grown_for_it(
    settings: Any, chunks: list
) -> None:
    settings.TRACKING_PROCESS_CHUNK, settings.TRACKING_PROCESS_CHUNK_MAX = 1, 4
    _accept_batches(8, "ceiling")
    assert tasks.drain() == 8
    assert chunks == [(4, 4), (4, 4), (4, 0)]  # 1, 2 and 4 all fit in the 8 pending
    chunks.clear()
    settings.TRACKING_PROCESS_CHUNK, settings.TRACKING_PROCESS_CHUNK_MAX = 2, 16
    _accept_batches(7, "seven")
    assert tasks.drain() == 7
    assert chunks == [(4, 4), (8, 3), (2, 0)]  # 8 would not fit in the 7 pending
    assert not InboxBatch.objects.filter(processed_at__isnull=True).exists()


def test_the_size_comes_back_once_the_backlog_is_gone(settings: Any, chunks: list) -> None:
    settings.TRACKING_PROCESS_CHUNK, settings.TRACKING_PROCESS_CHUNK_MAX = 2, 8
    _accept_batches(3, "first")
    tasks.drain()
    assert chunks == [(2, 2), (4, 1), (2, 0)]
    chunks.clear()
    _accept_batches(2, "later")  # a new drain starts from the base size again
    tasks.drain()
    assert chunks == [(2, 2), (4, 0)]


def test_a_chunk_given_to_the_drain_is_kept(settings: Any, chunks: list) -> None:
    settings.TRACKING_PROCESS_CHUNK, settings.TRACKING_PROCESS_CHUNK_MAX = 1, 4
    _accept_batches(5, "fixed")
    assert tasks.drain(chunk=2) == 5
    assert chunks == [(2, 2), (2, 2), (2, 1), (2, 0)]
