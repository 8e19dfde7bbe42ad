"""Pure period arithmetic and the metrics of subscriptions (no database)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

T = TypeVar("T", date, datetime)

# A price per interval times this is its monthly recurring revenue (a month holds
# 52/12 weeks, a year twelve months).
MONTHLY_FACTOR = {"week": 52 / 12, "month": 1.0, "year": 1 / 12}


def add_months(moment: T, months: int) -> T:
    """`moment` plus whole calendar months, the day clamped to the month's last day
    (31 January + 1 month = 28/29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_interval(moment: T, interval: str, count: int = 1) -> T:
    if interval == "week":
        return moment + timedelta(weeks=count)
    if interval == "month":
        return add_months(moment, count)
    if interval == "year":
        return add_months(moment, 12 * count)
    raise ValueError(f"unknown interval {interval!r}")


def monthly_yen(price_yen: int, interval: str) -> float:
    """A price per `interval` as its monthly recurring revenue."""
    return price_yen * MONTHLY_FACTOR[interval]


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(a: date, b: date) -> int:
    """Whole calendar months from the month of `a` to the month of `b`."""
    return (b.year - a.year) * 12 + (b.month - a.month)


@dataclass(frozen=True)
class Span:
    """One subscription's life in local dates: start, and end (None while it runs)."""

    start: date
    end: date | None


@dataclass(frozen=True)
class CohortRow:
    cohort: date  # first day of the start month
    size: int
    retained: list[float]  # share still subscribed at the end of month k (k = 0, 1, ...)


def cohort_retention(
    spans: Iterable[Span], *, today: date, max_months: int = 12
) -> list[CohortRow]:
    """Retention by start-month cohort: of the subscriptions started in a month, the share
    not ended by the end of each following month. Months not yet over are left out."""
    cohorts: dict[date, list[Span]] = {}
    for span in spans:
        cohorts.setdefault(month_start(span.start), []).append(span)
    rows = []
    for cohort in sorted(cohorts):
        members = cohorts[cohort]
        horizon = min(max_months, months_between(cohort, today))
        retained = []
        for k in range(horizon + 1):
            end_of_k = add_months(cohort, k + 1)  # first day after month k
            if end_of_k > today and k > 0:
                break
            alive = sum(1 for s in members if s.end is None or s.end >= end_of_k)
            retained.append(round(alive / len(members), 4))
        rows.append(CohortRow(cohort=cohort, size=len(members), retained=retained))
    return rows


@dataclass(frozen=True)
class ChurnMonth:
    month: date
    active_at_start: int
    cancelled: int
    rate: float | None


def monthly_churn(spans: Sequence[Span], *, months: Sequence[date]) -> list[ChurnMonth]:
    """For each month: subscriptions running at its start, how many of them ended within
    it, and the ratio (None when none were running)."""
    out = []
    for month in months:
        start, nxt = month_start(month), add_months(month_start(month), 1)
        running = [s for s in spans if s.start < start and (s.end is None or s.end >= start)]
        ended = sum(1 for s in running if s.end is not None and s.end < nxt)
        out.append(
            ChurnMonth(
                month=start,
                active_at_start=len(running),
                cancelled=ended,
                rate=round(ended / len(running), 4) if running else None,
            )
        )
    return out
