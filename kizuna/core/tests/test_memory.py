"""core.memory: the collector set for batch-handling processes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kizuna.core import memory


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_is_loaded_and_makes_young_collections_rarer(
    collector_restored: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    alive = [{"n": i} for i in range(100)]  # tracked containers alive now
    memory.settle_loaded_objects()
    assert gc.get_freeze_count() >= len(alive)
    assert gc.get_threshold() == (memory.YOUNG_COLLECTION_AFTER, 10, 10)
    # A batch's worth of containers that live together no longer triggers collections.
    before = gc.get_stats()[0]["collections"]
    batch: list[dict[str, dict[str, int]]] = [{"message": {}} for _ in range(10_000)]
    assert gc.get_stats()[0]["collections"] == before
    assert len(batch) == 10_000


def test_settle_keeps_a_disabled_or_larger_threshold(collector_restored: None) -> None:
    gc.set_threshold(0)
    memory.settle_loaded_objects()
    assert gc.get_threshold()[0] == 0
    gc.set_threshold(memory.YOUNG_COLLECTION_AFTER * 2, 5, 5)
    memory.settle_loaded_objects()
    assert gc.get_threshold() == (memory.YOUNG_COLLECTION_AFTER * 2, 5, 5)


def test_collections_paused_while_open_and_back_on_after_even_on_error() -> None:
    assert gc.isenabled()
    with memory.collections_paused():
        assert not gc.isenabled()
        before = gc.get_stats()[0]["collections"]
        chunk = [[str(i), {"n": i}] for i in range(3 * memory.YOUNG_COLLECTION_AFTER)]
        assert gc.get_stats()[0]["collections"] == before
        with memory.collections_paused():  # nested: the outer block turns it back on
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    assert len(chunk) == 3 * memory.YOUNG_COLLECTION_AFTER
    with pytest.raises(RuntimeError), memory.collections_paused():
        raise RuntimeError("a chunk failed")
    assert gc.isenabled()


def test_collections_paused_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    try:
        with memory.collections_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
