"""When each recipient is sent: now, at a time, or in the customer's best hour (send-time
optimisation from the local hours of their past email opens); then throttled so that no
more than N messages start in any minute. Pure functions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Tokyo"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def best_hour(opens: Iterable[datetime], timezone: str, default: int) -> int:
    """The local hour (0-23) in which the customer opened most often; ties go to the
    earlier hour; no opens → `default`."""
    tz = zone(timezone)
    hours = Counter(moment.astimezone(tz).hour for moment in opens)
    if not hours:
        return default
    return min(hours, key=lambda h: (-hours[h], h))


def next_at_hour(after: datetime, hour: int, timezone: str) -> datetime:
    """The first moment at or after `after` that falls in local hour `hour`: `after` itself
    when it is already that hour, else the next hh:00 local."""
    tz = zone(timezone)
    local = after.astimezone(tz)
    if local.hour == hour:
        return after
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(
            hour=hour, minute=0, second=0, microsecond=0
        )
    # Normalise through UTC (a wall-clock hour skipped by a DST change moves forward).
    return candidate.astimezone(ZoneInfo("UTC"))


def throttle(desired: list[datetime], per_minute: int | None) -> list[datetime]:
    """Send times no earlier than `desired` (in the given order, which should be sorted) with
    at most `per_minute` starting in each one-minute window."""
    if not per_minute:
        return list(desired)
    if per_minute < 0:
        raise ValueError("per_minute must be positive")
    out: list[datetime] = []
    window: datetime | None = None
    used = 0
    for moment in desired:
        if window is None or moment >= window + timedelta(minutes=1):
            window, used = moment, 0
        elif used >= per_minute:
            window, used = window + timedelta(minutes=1), 0
        out.append(max(moment, window))
        used += 1
    return out
