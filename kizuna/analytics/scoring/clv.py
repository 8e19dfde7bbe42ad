"""Customer lifetime value over a horizon: expected purchases month by month (from a
repeat-purchase model) × expected spend per purchase (Gamma-Gamma), discounted monthly.

    CLV = Σ_{m=1..H} (E[Y(m)] - E[Y(m-1)]) × E[M] / (1 + d)^m

with E[Y(m)] the expected purchases in the customer's next m months and d the monthly
rate equivalent to the annual discount rate: (1 + annual)^(1/12) - 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from kizuna.analytics.scoring.fitting import FloatArray, as_float

MONTH_DAYS = 365.25 / 12


def monthly_rate(annual_rate: float) -> float:
    if annual_rate <= -1:
        raise ValueError("the annual discount rate must be above -100%")
    return float((1.0 + annual_rate) ** (1.0 / 12.0) - 1.0)


def month_times(months: int, unit_days: float = 1.0) -> FloatArray:
    """The ends of months 0..H in the model's time unit (days by default)."""
    return np.arange(months + 1, dtype=np.float64) * MONTH_DAYS / unit_days


def discounted_value(curve: ArrayLike, spend: ArrayLike, annual_rate: float) -> FloatArray:
    """CLV per customer from `curve` (shape (H+1, n): cumulative expected purchases at the end
    of months 0..H, row 0 being zeros) and the expected spend per purchase."""
    curve = np.asarray(curve, dtype=np.float64)
    increments = np.diff(curve, axis=0)
    months = np.arange(1, increments.shape[0] + 1, dtype=np.float64)
    factors = (1.0 + monthly_rate(annual_rate)) ** -months
    return as_float(spend) * (factors[:, None] * increments).sum(axis=0)
