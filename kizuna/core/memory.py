"""The cyclic garbage collector, set for processes that handle large batches (the
ingestion web handler, the tracking worker).

Python 3.11 collects its youngest generation every 700 net container allocations. A
1,000-message batch creates thousands of dicts and lists that live for the request (the
parsed body, the stored rows), so each batch paid for dozens of collections walking them
again and again as they aged into older generations: a quarter to a third of the CPU per
accepted message. Those objects are freed by reference counting as soon as the request or
chunk is done; the collector is only needed for the rare reference cycle, which waits a
little longer now.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections after this many net container allocations (more than a whole batch
# or chunk creates), instead of 700; the older generations keep their default ratios.
YOUNG_COLLECTION_AFTER = 100_000


def settle_loaded_objects() -> None:
    """Once the project is loaded: move everything alive (Django, the loaded apps) out of
    the collector's reach for good (it lives as long as the process), and collect the
    young generation only every YOUNG_COLLECTION_AFTER allocations.

    Frozen as it is, without a full collection first (as the `gc.freeze` documentation
    does it before a fork): a loaded worker holds no garbage worth it (a collection found
    none), and collecting its ~120,000 objects took 75 ms of every worker's start."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_COLLECTION_AFTER:
        gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, old)


@contextmanager
def collections_paused() -> Iterator[None]:
    """No cyclic collection while open (a chunk of tens of thousands of rows, freed by
    reference counting when it is done): even one every YOUNG_COLLECTION_AFTER allocations
    walks the whole chunk each time. Nested or on other threads, the collector is back on
    when the outermost block that paused it ends."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
