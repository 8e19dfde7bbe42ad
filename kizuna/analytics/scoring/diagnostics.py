"""Data for the model diagnostics charts: how well the fitted repeat-purchase model
reproduces what happened.

- the repeat-purchase histogram: how many customers made 0, 1, 2, ... repeat purchases,
  actual versus expected under the model (each customer observed for their own T);
- the tracking plot: cumulative repeat purchases by calendar day, actual versus expected
  (every customer's expected E[X(t)] since their first purchase, added up).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kizuna.analytics.scoring.fitting import as_float, dot


def repeat_histogram(
    model: ModuleType, params: dict[str, float], x: ArrayLike, T: ArrayLike, *, buckets: int = 8
) -> dict[str, Any]:
    """Customers by number of repeat purchases 0 .. buckets-2 and "buckets-1 or more":
    actual and (if the model has a pmf) expected counts."""
    x = as_float(x)
    T = as_float(T)
    top = buckets - 1
    actual = np.bincount(np.minimum(x, top).astype(np.int64), minlength=buckets)[:buckets]
    labels = [str(k) for k in range(top)] + [f"{top}+"]
    expected: list[float] | None = None
    pmf = getattr(model, "pmf", None)
    if pmf is not None and len(T):
        ages, counts = np.unique(T, return_counts=True)
        shares = [float(dot(counts, pmf(params, ages, k))) for k in range(top)]
        expected = [*shares, float(len(T) - sum(shares))]
    return {
        "labels": labels,
        "actual": [int(v) for v in actual],
        "expected": expected,
    }


def tracking(
    model: ModuleType,
    params: dict[str, float],
    first_day: ArrayLike,
    repeat_by_day: ArrayLike,
    *,
    start_day: int,
    end_day: int,
    step: int = 7,
) -> dict[str, list]:
    """Cumulative repeat purchases at every `step`-th day from start_day to end_day.

    `first_day`: each customer's first-purchase day; `repeat_by_day[i]`: repeat purchases
    made on day start_day + i (purchase days that were not a customer's first)."""
    days = end_day - start_day + 1
    first = np.asarray(first_day, dtype=np.int64) - start_day
    first = first[(first >= 0) & (first < days)]
    newcomers = np.bincount(first, minlength=days).astype(np.float64)
    curve = model.expected_purchases_new(params, np.arange(days, dtype=np.float64))
    expected = np.convolve(newcomers, curve)[:days]
    actual = np.cumsum(as_float(repeat_by_day)[:days])
    points = np.arange(step - 1, days, step)
    if len(points) == 0 or points[-1] != days - 1:
        points = np.append(points, days - 1)
    return {
        "day": [int(start_day + p) for p in points],
        "actual": [float(actual[p]) for p in points],
        "expected": [float(expected[p]) for p in points],
    }
