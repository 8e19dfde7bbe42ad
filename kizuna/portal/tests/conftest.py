from collections.abc import Iterator

import pytest
from django.core.cache import cache

from kizuna.loyalty.tests.conftest import customer, other, programme, shop  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Rate-limit counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()
