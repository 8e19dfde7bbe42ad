from __future__ import annotations

from datetime import date, datetime

from kizuna.core.timeutil import JST
from kizuna.subscriptions.periods import (
    Span,
    add_interval,
    add_months,
    cohort_retention,
    monthly_churn,
    monthly_yen,
)


def test_add_months_clamps_the_day() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    moment = datetime(2026, 5, 10, 9, 30, tzinfo=JST)
    assert add_interval(moment, "year") == datetime(2027, 5, 10, 9, 30, tzinfo=JST)
    assert add_interval(moment, "week", 2) == datetime(2026, 5, 24, 9, 30, tzinfo=JST)


def test_monthly_normalisation() -> None:
    assert monthly_yen(1200, "month") == 1200
    assert monthly_yen(12000, "year") == 1000
    assert round(monthly_yen(1200, "week")) == 5200


def test_cohort_retention_counts_ends_by_month() -> None:
    spans = [
        Span(date(2026, 1, 5), None),
        Span(date(2026, 1, 20), date(2026, 2, 10)),  # ends in month 1
        Span(date(2026, 1, 25), date(2026, 1, 28)),  # ends in month 0
        Span(date(2026, 1, 30), date(2026, 3, 1)),  # ends in month 2
        Span(date(2026, 3, 2), None),
    ]
    rows = cohort_retention(spans, today=date(2026, 4, 15))
    jan, mar = rows
    assert (jan.cohort, jan.size) == (date(2026, 1, 1), 4)
    assert jan.retained == [0.75, 0.5, 0.25]  # April is not over yet
    assert (mar.cohort, mar.size, mar.retained) == (date(2026, 3, 1), 1, [1.0])


def test_monthly_churn() -> None:
    spans = [
        Span(date(2026, 1, 5), None),
        Span(date(2026, 1, 20), date(2026, 2, 10)),
        Span(date(2026, 2, 3), date(2026, 2, 20)),  # started in February: not at its start
    ]
    feb, mar = monthly_churn(spans, months=[date(2026, 2, 1), date(2026, 3, 1)])
    assert (feb.active_at_start, feb.cancelled, feb.rate) == (2, 1, 0.5)
    assert (mar.active_at_start, mar.cancelled, mar.rate) == (1, 0, 0.0)
    assert monthly_churn([], months=[date(2026, 2, 1)])[0].rate is None
