"""Monthly KPIs and cohort retention from per-(customer, month) purchase rows: pure NumPy.

Rows are (customer, month, orders, purchase days, net value, first day, last day) for each
customer and local calendar month with at least one purchase; months are year * 12 +
month - 1 and days are days since 1970-01-01 (as `sql.read_monthly` returns them).

Definitions (docs/analytics.md):
- active customers at a month's end: bought in the ACTIVE_WINDOW_DAYS days up to it;
- churn rate of a month: customers who became inactive during it (their last purchase is
  now more than the window ago) over those active at the end of the month before;
- repeat-purchase rate: of the customers who have bought by the month's end, the share that
  bought on at least two days;
- AOV: net revenue / orders of the month; purchase frequency: orders per buying customer;
- revenue from repeat customers: net revenue from customers who first bought in an earlier
  month.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

ACTIVE_WINDOW_DAYS = 90
EPOCH = date(1970, 1, 1)
CID, MONTH, ORDERS, DAYS, VALUE, FIRST, LAST = range(7)


def month_start(month: int) -> date:
    return date(month // 12, month % 12 + 1, 1)


def month_end_day(month: int) -> int:
    return (month_start(month + 1) - EPOCH).days - 1


def _sorted(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 7)
    return rows[np.lexsort((rows[:, MONTH], rows[:, CID]))]


def _customer_starts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each customer, customer index of each row)."""
    new = np.ones(len(rows), dtype=bool)
    new[1:] = rows[1:, CID] != rows[:-1, CID]
    return np.flatnonzero(new), np.cumsum(new) - 1


def monthly_kpis(
    rows: np.ndarray,
    *,
    first_month: int,
    last_month: int,
    as_of_day: int,
    customers_created: list[int] | None = None,
    window: int = ACTIVE_WINDOW_DAYS,
) -> dict[str, list[Any]]:
    rows = _sorted(rows)
    months = np.arange(first_month, last_month + 1)
    n = len(months)
    empty: list[Any] = [None] * n
    if len(rows) == 0:
        zeros = [0] * n
        return {
            "customers": customers_created or zeros,
            "buyers": zeros,
            "new_buyers": zeros,
            "active_customers": zeros,
            "churn_rate": empty,
            "repeat_rate": empty,
            "aov": empty,
            "purchase_frequency": empty,
            "revenue": zeros,
            "repeat_revenue": zeros,
            "orders": zeros,
        }
    lo = min(int(rows[:, MONTH].min()), first_month) - 1
    hi = last_month
    span = hi - lo + 1
    ends = np.array([min(month_end_day(m), as_of_day) for m in range(lo, hi + 1)])
    month = rows[:, MONTH] - lo
    starts, owner = _customer_starts(rows)

    # buyers and repeaters to date
    first_of = month[starts]
    cumulative_days = np.cumsum(rows[:, DAYS])
    before = np.concatenate([[0], cumulative_days[starts[1:] - 1]])
    own_cumulative = cumulative_days - before[owner]
    reached = own_cumulative >= 2
    repeat_month = np.full(len(starts), -1)
    hit = np.flatnonzero(reached)
    if len(hit):
        first_hit = np.unique(owner[hit], return_index=True)
        repeat_month[first_hit[0]] = month[hit[first_hit[1]]]
    buyers = np.cumsum(np.bincount(first_of, minlength=span))
    repeaters = np.cumsum(np.bincount(repeat_month[repeat_month >= 0], minlength=span))

    # activity: each row keeps its customer active from its month until the next row's
    # month or until the window after its last day runs out, whichever comes first
    next_month = np.full(len(rows), span)
    same = rows[1:, CID] == rows[:-1, CID]
    next_month[:-1] = np.where(same, month[1:], span)
    lapse_day = rows[:, LAST] + window  # inactive from this day on, unless they buy again
    last_active = np.searchsorted(ends, lapse_day, side="left") - 1  # last j with end < lapse
    until = np.minimum(next_month - 1, last_active)
    cover = np.zeros(span + 1, dtype=np.int64)
    valid = until >= month
    np.add.at(cover, month[valid], 1)
    np.add.at(cover, until[valid] + 1, -1)
    active = np.cumsum(cover)[:span]
    # lapses: a row whose next purchase comes after its window lapses in the month that
    # holds its lapse day
    gap_ok = np.ones(len(rows), dtype=bool)
    gap_ok[:-1] = ~same | (rows[1:, FIRST] > lapse_day[:-1])
    lapse_month = np.searchsorted(ends, lapse_day, side="left")
    lapsing = gap_ok & (lapse_month < span)
    lapses = np.bincount(lapse_month[lapsing], minlength=span)[:span]

    orders = np.bincount(month, weights=rows[:, ORDERS], minlength=span)
    revenue = np.bincount(month, weights=rows[:, VALUE], minlength=span)
    buying = np.bincount(month, minlength=span)
    returning = month > first_of[owner]
    repeat_revenue = np.bincount(month[returning], weights=rows[returning, VALUE], minlength=span)

    window_index = months - lo

    def pick(values: np.ndarray) -> list[Any]:
        return [v.item() if hasattr(v, "item") else v for v in values[window_index]]

    def ratio(top: np.ndarray, bottom: np.ndarray) -> list[Any]:
        out: list[Any] = []
        for i in window_index:
            out.append(float(top[i] / bottom[i]) if bottom[i] else None)
        return out

    churn = []
    for i in window_index:
        previous = active[i - 1]
        churn.append(float(lapses[i] / previous) if previous else None)
    new_buyers = np.bincount(first_of, minlength=span)
    return {
        "customers": customers_created if customers_created is not None else pick(buyers),
        "buyers": pick(buyers),
        "new_buyers": pick(new_buyers),
        "active_customers": pick(active),
        "churn_rate": churn,
        "repeat_rate": ratio(repeaters, buyers),
        "aov": ratio(revenue, orders),
        "purchase_frequency": ratio(orders, buying),
        "revenue": [float(v) for v in revenue[window_index]],
        "repeat_revenue": [float(v) for v in repeat_revenue[window_index]],
        "orders": [int(v) for v in orders[window_index]],
    }


def cohort_matrix(rows: np.ndarray, *, first_month: int, last_month: int) -> dict[str, Any]:
    """Retention by first-purchase month: share of each cohort buying k months later."""
    rows = _sorted(rows)
    cohorts = list(range(first_month, last_month + 1))
    width = len(cohorts)
    retention: list[list[float | None]] = []
    sizes: list[int] = []
    if len(rows):
        starts, owner = _customer_starts(rows)
        first_of = rows[starts, MONTH]
        offset = rows[:, MONTH] - first_of[owner]
        cohort = first_of[owner]
    for c in cohorts:
        if not len(rows):
            sizes.append(0)
            retention.append([None] * width)
            continue
        members = cohort == c
        size = int(np.count_nonzero(first_of == c))
        sizes.append(size)
        counts = np.bincount(offset[members], minlength=width)[:width]
        line: list[float | None] = []
        for k in range(width):
            if c + k > last_month:
                line.append(None)
            else:
                line.append(float(counts[k] / size) if size else None)
        retention.append(line)
    return {
        "cohorts": [month_start(c).strftime("%Y-%m") for c in cohorts],
        "sizes": sizes,
        "retention": retention,
    }
