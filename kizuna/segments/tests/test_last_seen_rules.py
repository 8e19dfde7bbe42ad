"""`profile.last_seen_at` rules add the range of its UTC day (`Customer.last_seen_on`, the
indexed column) and select exactly the customers the time range alone selects, across the
business's (JST) and UTC day boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from kizuna.core.timeutil import JST, local_date, now
from kizuna.customers.models import Customer
from kizuna.customers.services import customer_create
from kizuna.segments.selectors import rules_preview


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=JST)


@pytest.fixture
def seen(db: Any) -> dict[str, datetime | None]:
    """Customers last seen around the day boundaries the rules below use."""
    at = now()
    three_days_back = _start(local_date(at) - timedelta(days=3))  # 15:00 UTC the day before
    times: dict[str, datetime | None] = {
        "hour_ago": at - timedelta(hours=1),
        "two_days": at - timedelta(days=2, minutes=5),
        "ten_days": at - timedelta(days=10),
        "jst_midnight_before": three_days_back - timedelta(seconds=1),
        "jst_midnight_after": three_days_back + timedelta(seconds=1),
        "utc_midnight_before": datetime.combine(
            three_days_back.astimezone(UTC).date(), time.min, UTC
        )
        - timedelta(microseconds=1),
        "never": None,
    }
    for name, last_seen in times.items():
        customer = customer_create(data={"given_name": name})
        Customer.objects.filter(pk=customer.pk).update(last_seen_at=last_seen)
    return times


def _selected(op: str, value: Any) -> set[str]:
    rules = {
        "version": 1,
        "match": "all",
        "conditions": [{"field": "profile.last_seen_at", "op": op, "value": value}],
    }
    return set(rules_preview(rules=rules).values_list("given_name", flat=True))


def _expected(
    seen: dict[str, datetime | None], low: datetime | None, high: datetime | None
) -> set[str]:
    return {
        name
        for name, at in seen.items()
        if at is not None and (low is None or at >= low) and (high is None or at < high)
    }


def test_the_day_range_selects_what_the_time_range_selects(
    seen: dict[str, datetime | None],
) -> None:
    at = now()
    boundary = local_date(at) - timedelta(days=3)
    cases: list[tuple[str, Any, datetime | None, datetime | None]] = [
        ("within_last_days", 1, at - timedelta(days=1), None),
        ("within_last_days", 3, at - timedelta(days=3), None),
        ("more_than_days_ago", 1, None, at - timedelta(days=1)),
        ("more_than_days_ago", 5, None, at - timedelta(days=5)),
        ("before", boundary.isoformat(), None, _start(boundary)),
        ("after", (boundary - timedelta(days=1)).isoformat(), _start(boundary), None),
        (
            "between",
            [(boundary - timedelta(days=1)).isoformat(), boundary.isoformat()],
            _start(boundary - timedelta(days=1)),
            _start(boundary + timedelta(days=1)),
        ),
    ]
    for op, value, low, high in cases:
        assert _selected(op, value) == _expected(seen, low, high), (op, value)
    # The boundaries above do cut between these customers.
    assert _selected("before", boundary.isoformat()) >= {"jst_midnight_before", "ten_days"}
    assert "jst_midnight_after" not in _selected("before", boundary.isoformat())
    assert "utc_midnight_before" in _selected("before", boundary.isoformat())
    assert _selected("is_not_set", None) == {"never"}


def test_the_rule_filters_on_the_indexed_day(seen: dict[str, datetime | None]) -> None:
    rules = {
        "version": 1,
        "match": "all",
        "conditions": [{"field": "profile.last_seen_at", "op": "within_last_days", "value": 7}],
    }
    where = str(rules_preview(rules=rules).query).split(" WHERE ", 1)[1]
    assert "last_seen_on" in where and "last_seen_at" in where
