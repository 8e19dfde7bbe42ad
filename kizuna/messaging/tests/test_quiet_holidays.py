"""Quiet hours on Japanese Sundays and national holidays (KIZUNA_QUIET_ON_HOLIDAYS):
guardrails hold LINE marketing until the next day that is neither, at the quiet hours' end."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from django.test import override_settings

from kizuna.messaging import guardrails

JST = ZoneInfo("Asia/Tokyo")
NIGHT = (21, 8)
# 2026-11-21 Saturday, 22 Sunday, 23 Monday 勤労感謝の日, 24 Tuesday.


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=JST)


def test_off_by_default_only_the_night_is_quiet() -> None:
    assert guardrails.quiet_until(at(21, 22), "Asia/Tokyo", NIGHT) == at(22, 8)
    assert guardrails.quiet_until(at(23, 12), "Asia/Tokyo", NIGHT) is None


def test_sundays_and_holidays_are_quiet_all_day() -> None:
    def until(moment: datetime) -> datetime | None:
        return guardrails.quiet_until(moment, "Asia/Tokyo", NIGHT, holidays=True)

    assert until(at(21, 22)) == at(24, 8)  # Saturday night → past Sunday and the holiday
    assert until(at(22, 12)) == at(24, 8)  # Sunday noon
    assert until(at(23, 12)) == at(24, 8)  # 勤労感謝の日
    assert until(at(23, 5)) == at(24, 8)  # early on the holiday
    assert until(at(24, 12)) is None  # a Tuesday afternoon sends
    assert until(at(21, 12)) is None  # Saturday is not a holiday
    assert until(at(24, 6)) == at(24, 8)  # the ordinary night still holds
    # Without night quiet hours the holiday ends at midnight.
    assert guardrails.quiet_until(at(22, 12), "Asia/Tokyo", None, holidays=True) == at(24, 0)
    # The customer's zone decides the day: 23:30 UTC Saturday is Sunday morning in Tokyo.
    utc = datetime(2026, 11, 21, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert guardrails.quiet_until(utc, "Europe/London", None, holidays=True) is None
    assert guardrails.quiet_until(utc, "Asia/Tokyo", None, holidays=True) == at(24, 0)


FACTS = guardrails.Facts(
    channel_kind="line",
    channel_active=True,
    purpose="marketing",
    address="U1",
    consent=True,
    suppressed=False,
    line_following=True,
    sent_recently=0,
    cap=3,
    timezone="Asia/Tokyo",
    sender_complete=True,
    topic="",
    topics_opted_out=False,
)


def test_check_defers_line_marketing_on_a_holiday_when_switched_on() -> None:
    with override_settings(KIZUNA_QUIET_HOURS="21-8", KIZUNA_QUIET_ON_HOLIDAYS=False):
        assert guardrails.check(FACTS, at(23, 12)) is None
    with override_settings(KIZUNA_QUIET_HOURS="21-8", KIZUNA_QUIET_ON_HOLIDAYS=True):
        decision = guardrails.check(FACTS, at(23, 12))
        assert isinstance(decision, guardrails.Deferral)
        assert (decision.code, decision.until) == ("quiet_hours", at(24, 8))
        # Transactional messages are never held.
        assert guardrails.check(replace(FACTS, purpose="transactional"), at(23, 12)) is None
