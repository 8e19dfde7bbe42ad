"""A drain's transactions grow while a backlog lasts (`tasks.drain`): twice the size after
each full chunk up to TRACKING_PROCESS_CHUNK_MAX, back to TRACKING_PROCESS_CHUNK after one
short of its size."""

from __future__ import annotations

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


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(messages asked for, messages processed) of each of the drain's transactions."""
    seen: list[tuple[int, int]] = []
    real = tasks.inbox_process

    def recording(**kwargs: Any) -> services.ProcessStats:
        stats = real(**kwargs)
        seen.append((kwargs["max_messages"], stats.messages))
        return stats

    monkeypatch.setattr(tasks, "inbox_process", recording)
    return seen


def test_a_backlog_is_drained_in_growing_chunks(settings: Any, chunks: list) -> None:
    settings.TRACKING_PROCESS_CHUNK, settings.TRACKING_PROCESS_CHUNK_MAX = 1, 4
    _accept_batches(8, "grow")
    assert tasks.drain() == 8
    assert chunks == [(1, 1), (2, 2), (4, 4), (4, 1), (1, 0)]
    assert Event.objects.filter(message_id__startswith="grow-").count() == 8
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
