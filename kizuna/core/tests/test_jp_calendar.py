from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from kizuna.core.jp_calendar import (
    JST,
    add_business_days,
    holiday_name,
    is_business_day,
    next_business_day,
    next_business_moment,
)


def test_national_holidays_and_substitute_holidays() -> None:
    assert holiday_name(date(2026, 11, 23)) == "勤労感謝の日"
    assert holiday_name(date(2026, 11, 24)) is None
    # 2026-05-06 (Wed) is a substitute holiday for Constitution Day falling on Sunday 5/3.
    assert not is_business_day(date(2026, 5, 6))
    # 2026-09-22 (Tue) is a 国民の休日 between Respect for the Aged Day and the equinox.
    assert not is_business_day(date(2026, 9, 22))
    assert is_business_day(date(2026, 11, 24))


def test_weekends_new_year_break_and_own_closed_days() -> None:
    assert not is_business_day(date(2026, 11, 21))  # Saturday
    assert not is_business_day(date(2026, 12, 31))
    assert is_business_day(date(2026, 12, 31), new_year_break=False)
    assert not is_business_day(date(2026, 11, 25), extra_closed=[date(2026, 11, 25)])


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 20), date(2026, 11, 24)),  # Fri → Sat, Sun, Mon holiday → Tue
        (date(2026, 12, 30), date(2027, 1, 4)),  # New Year break
        (date(2026, 4, 28), date(2026, 4, 30)),  # 4/29 昭和の日
    ],
)
def test_next_business_day(day: date, expected: date) -> None:
    assert next_business_day(day) == expected


def test_add_business_days_and_include_today() -> None:
    assert next_business_day(date(2026, 11, 24), include_today=True) == date(2026, 11, 24)
    assert add_business_days(date(2026, 11, 20), 0) == date(2026, 11, 20)
    assert add_business_days(date(2026, 11, 20), 2) == date(2026, 11, 25)
    with pytest.raises(ValueError):
        add_business_days(date(2026, 11, 20), -1)


def test_next_business_moment_in_tokyo_time() -> None:
    # Sunday 22 Nov 2026 15:00 UTC is Monday 23 Nov 00:00 JST, a holiday → Tue 10:00 JST.
    moment = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    assert next_business_moment(moment) == datetime(2026, 11, 24, 10, 0, tzinfo=JST)
    # Tuesday 24 Nov 01:00 UTC is a business day in Tokyo: unchanged.
    working = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert next_business_moment(working, at=time(9, 0)) == working


def test_next_business_send_time_for_scheduling_forms() -> None:
    from kizuna.core.jp_calendar import next_business_send_time

    # Friday 2026-11-20 evening → Tuesday 24th (weekend, then 勤労感謝の日 on Monday) 10:00 JST.
    friday = datetime(2026, 11, 20, 18, 0, tzinfo=JST)
    assert next_business_send_time(now=friday) == datetime(2026, 11, 24, 10, 0, tzinfo=JST)
    # Given in UTC: 2026-12-29 16:00 UTC is already 12/30 in Tokyo; the next day, 12/31, is
    # in the New Year break (then 元日 and a weekend) → Monday 2027-01-04.
    late = datetime(2026, 12, 29, 16, 0, tzinfo=UTC)
    assert next_business_send_time(now=late, at=time(9, 30)) == datetime(
        2027, 1, 4, 9, 30, tzinfo=JST
    )
    assert next_business_send_time(now=late, new_year_break=False) == datetime(
        2026, 12, 31, 10, 0, tzinfo=JST
    )
