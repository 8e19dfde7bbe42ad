"""Time helpers: the business runs on JST by default; storage is always UTC."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

JST = ZoneInfo("Asia/Tokyo")


def now() -> datetime:
    return timezone.now()


def business_zone() -> ZoneInfo:
    """The business's time zone (`TIME_ZONE`: JST unless configured)."""
    return ZoneInfo(settings.TIME_ZONE)


def local_date(moment: datetime, zone: ZoneInfo = JST) -> date:
    return moment.astimezone(zone).date()


def age_on(birthday: date, on: date) -> int:
    return on.year - birthday.year - ((on.month, on.day) < (birthday.month, birthday.day))
