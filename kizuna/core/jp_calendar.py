"""Japanese business days: weekends, national holidays (国民の祝日, including 振替休日 and
国民の休日) from the `holidays` package's JP calendar, and the New Year break most
businesses keep (12/31-1/3, configurable per call).

Usable wherever a send or a wait should land on a working day: messaging quiet hours and send
scheduling ("the next business day at 10:00 JST"), journey waits ("wait 2 business days").
Pure functions of dates; holiday tables are built per year once per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
# 年末年始: not national holidays, but closed days for most Japanese businesses.
NEW_YEAR_BREAK: frozenset[tuple[int, int]] = frozenset({(12, 31), (1, 1), (1, 2), (1, 3)})


@lru_cache(maxsize=64)
def _holidays(year: int) -> dict[date, str]:
    import holidays  # imported on use: building the calendar classes costs start-up time

    return dict(holidays.country_holidays("JP", years=year, language="ja"))


def holiday_name(day: date) -> str | None:
    """The national holiday's Japanese name (「勤労感謝の日」), or None."""
    return _holidays(day.year).get(day)


def is_holiday(day: date) -> bool:
    return day in _holidays(day.year)


def is_business_day(
    day: date,
    *,
    new_year_break: bool = True,
    extra_closed: Iterable[date] = (),
) -> bool:
    """Monday-Friday, not a national holiday, not in the New Year break (unless turned off),
    not one of the business's own closed days."""
    if day.weekday() >= 5 or is_holiday(day):
        return False
    if new_year_break and (day.month, day.day) in NEW_YEAR_BREAK:
        return False
    return day not in set(extra_closed)


def next_business_day(
    day: date,
    *,
    include_today: bool = False,
    new_year_break: bool = True,
    extra_closed: Iterable[date] = (),
) -> date:
    """The first business day after `day` (or `day` itself with include_today=True)."""
    closed = set(extra_closed)
    candidate = day if include_today else day + timedelta(days=1)
    for _ in range(366):
        if is_business_day(candidate, new_year_break=new_year_break, extra_closed=closed):
            return candidate
        candidate += timedelta(days=1)
    raise ValueError("no business day within a year")  # only with a year of closed days


def add_business_days(
    day: date, n: int, *, new_year_break: bool = True, extra_closed: Iterable[date] = ()
) -> date:
    """`n` business days after `day` (n >= 0; 0 is `day` if it is one, else the next)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    closed = set(extra_closed)
    result = next_business_day(
        day, include_today=True, new_year_break=new_year_break, extra_closed=closed
    )
    for _ in range(n):
        result = next_business_day(result, new_year_break=new_year_break, extra_closed=closed)
    return result


def next_business_moment(
    moment: datetime,
    *,
    at: time = time(10, 0),
    zone: ZoneInfo = JST,
    new_year_break: bool = True,
    extra_closed: Iterable[date] = (),
) -> datetime:
    """`moment` if it falls on a business day in `zone`; else the next business day at `at`
    local time (an aware datetime). For "send on a business day" scheduling."""
    closed = set(extra_closed)
    local = moment.astimezone(zone)
    if is_business_day(local.date(), new_year_break=new_year_break, extra_closed=closed):
        return moment
    day = next_business_day(local.date(), new_year_break=new_year_break, extra_closed=closed)
    return datetime.combine(day, at, tzinfo=zone)


def next_business_send_time(
    *,
    now: datetime | None = None,
    at: time = time(10, 0),
    zone: ZoneInfo = JST,
    new_year_break: bool = True,
) -> datetime:
    """The next business day after today (in `zone`) at `at` local time: the send time a
    scheduling form suggests ("next business day, 10:00 JST"). A callable form initial."""
    local = (now or datetime.now(tz=zone)).astimezone(zone)
    day = next_business_day(local.date(), new_year_break=new_year_break)
    return datetime.combine(day, at, tzinfo=zone)
