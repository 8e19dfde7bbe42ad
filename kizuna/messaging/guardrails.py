"""Checks made at send time, in order; the first that fails is the recorded reason.

Pure decisions over facts looked up by `facts_for`; `check` returns None (send), a
`Refusal` (never send this delivery) or a `Deferral` (send later, e.g. after quiet hours).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from kizuna.core import jp_calendar
from kizuna.messaging.choices import ChannelKind, Frequency, Purpose

REFUSALS = {
    "no_address": "the customer has no address on this channel",
    "no_consent": "no recorded opt-in for marketing on this channel",
    "suppressed": "the address is on the suppression list",
    "line_unreachable": "the customer does not follow the LINE account (blocked or unlinked)",
    "frequency_cap": "frequency cap reached for this channel",
    "sender_identity": "marketing email needs the sender's name, address and physical address",
    "topic_opt_out": "the customer opted out of this topic",
    "channel_inactive": "the channel is switched off",
}


@dataclass(frozen=True)
class Refusal:
    code: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {REFUSALS[self.code]}"


@dataclass(frozen=True)
class Deferral:
    code: str
    until: datetime

    @property
    def reason(self) -> str:
        return f"{self.code}: held until {self.until.isoformat()}"


@dataclass(frozen=True)
class Facts:
    channel_kind: str
    channel_active: bool
    purpose: str
    address: str
    consent: bool
    suppressed: bool
    line_following: bool
    sent_recently: int  # marketing deliveries sent on this channel within the cap window
    cap: int
    timezone: str
    sender_complete: bool
    topic: str
    topics_opted_out: bool


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def cap_window(frequency: str) -> tuple[timedelta, int | None]:
    """The window and the cap of marketing messages a customer's frequency choice allows."""
    if frequency == Frequency.WEEKLY:
        return timedelta(days=7), 1
    if frequency == Frequency.MONTHLY:
        return timedelta(days=30), 1
    return timedelta(days=1), None  # None: the installation's daily cap


def parse_quiet_hours(value: str) -> tuple[int, int] | None:
    """'21-8' → (21, 8); '' or 'off' → None."""
    if not value or value.strip().lower() in ("off", "none", "0"):
        return None
    start, _, end = value.partition("-")
    return int(start) % 24, int(end) % 24


def quiet_day(day: date) -> bool:
    """Sundays and Japan's national holidays (振替休日 included): quiet all day when
    KIZUNA_QUIET_ON_HOLIDAYS is on."""
    return day.weekday() == 6 or jp_calendar.is_holiday(day)


def quiet_until(
    moment: datetime,
    zone_name: str,
    hours: tuple[int, int] | None,
    *,
    holidays: bool = False,
) -> datetime | None:
    """If `moment` falls in the quiet hours of the customer's zone, when they end. With
    `holidays`, Sundays and national holidays are quiet all day: the hold ends at the end
    hour of the quiet hours (midnight when they are off) of the next day that is neither."""
    if hours is None and not holidays:
        return None
    try:
        zone = ZoneInfo(zone_name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    local = moment.astimezone(zone)
    until: datetime | None = None
    if hours is not None:
        start, end = hours
        hour = local.hour
        quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
        if quiet:
            day = local.date() if hour < end else local.date() + timedelta(days=1)
            until = datetime.combine(day, time(end), tzinfo=zone)
    if holidays:
        day = until.date() if until is not None else local.date()
        if quiet_day(day):
            while quiet_day(day):
                day += timedelta(days=1)
            until = datetime.combine(day, time(hours[1] if hours else 0), tzinfo=zone)
    return until


def check(facts: Facts, moment: datetime) -> Refusal | Deferral | None:
    marketing = facts.purpose == Purpose.MARKETING
    if not facts.channel_active:
        return Refusal("channel_inactive")
    if not facts.address:
        return Refusal("no_address")
    if facts.suppressed:
        return Refusal("suppressed")
    if facts.channel_kind == ChannelKind.LINE and not facts.line_following:
        return Refusal("line_unreachable")
    if marketing and not facts.consent:
        return Refusal("no_consent")
    if marketing and facts.topics_opted_out:
        return Refusal("topic_opt_out")
    if marketing and facts.channel_kind == ChannelKind.EMAIL and not facts.sender_complete:
        return Refusal("sender_identity")
    if marketing and facts.sent_recently >= facts.cap:
        return Refusal("frequency_cap")
    if marketing and facts.channel_kind == ChannelKind.LINE:
        until = quiet_until(
            moment,
            facts.timezone,
            parse_quiet_hours(settings.KIZUNA_QUIET_HOURS),
            holidays=getattr(settings, "KIZUNA_QUIET_ON_HOLIDAYS", False),
        )
        if until is not None:
            return Deferral("quiet_hours", until)
    return None
