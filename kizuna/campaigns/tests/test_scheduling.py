"""Send-time optimisation and throttling, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kizuna.campaigns.scheduling import best_hour, next_at_hour, throttle

JST = ZoneInfo("Asia/Tokyo")


def test_best_hour_is_the_most_frequent_local_hour_of_opens() -> None:
    opens = [
        datetime(2026, 11, 1, 11, 5, tzinfo=UTC),  # 20:05 JST
        datetime(2026, 11, 3, 11, 40, tzinfo=UTC),  # 20:40 JST
        datetime(2026, 11, 4, 0, 10, tzinfo=UTC),  # 09:10 JST
    ]
    assert best_hour(opens, "Asia/Tokyo", 10) == 20
    assert best_hour(opens, "UTC", 10) == 11
    # A tie goes to the earlier hour; no opens → the default; a bad zone → Tokyo.
    assert best_hour(opens[1:], "Asia/Tokyo", 10) == 9
    assert best_hour([], "Asia/Tokyo", 10) == 10
    assert best_hour(opens, "Not/AZone", 10) == 20


def test_next_at_hour() -> None:
    after = datetime(2026, 12, 1, 10, 30, tzinfo=JST)
    assert next_at_hour(after, 10, "Asia/Tokyo") == after  # already that hour: now
    assert next_at_hour(after, 20, "Asia/Tokyo") == datetime(2026, 12, 1, 20, tzinfo=JST)
    assert next_at_hour(after, 9, "Asia/Tokyo") == datetime(2026, 12, 2, 9, tzinfo=JST)
    # In New York 10:30 JST is 20:30 the day before: 21:00 there is half an hour later.
    ny = next_at_hour(after, 21, "America/New_York")
    assert ny - after == timedelta(minutes=30)


def test_throttle_spreads_over_minutes() -> None:
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    times = throttle([start] * 250, 100)
    assert times[:100] == [start] * 100
    assert times[100:200] == [start + timedelta(minutes=1)] * 100
    assert times[200:] == [start + timedelta(minutes=2)] * 50
    # Later desired times are kept; a new window starts with them.
    later = start + timedelta(minutes=10)
    assert throttle([start, start, later], 1) == [start, start + timedelta(minutes=1), later]
    assert throttle([start] * 3, None) == [start] * 3
    with pytest.raises(ValueError):
        throttle([start], -1)
