"""From transactions to the per-customer summary the models need, and the calibration /
holdout split used to check a model on data it has not seen.

Transactions are (customer, day, value) with whole days. Several transactions of one
customer on one day are one purchase (their values add up), as in the CDNOW data and the
usual practice for BG/NBD and Pareto/NBD: the models describe purchase occasions.

Per customer: x = purchase days after the first one (repeat purchases), t_x = day of the
last purchase - day of the first, T = end day - day of the first, m = mean value of the
repeat purchases (0 when x = 0), as in the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.analytics.scoring.fitting import FloatArray, as_float

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Summary:
    customer: IntArray  # the customer keys, sorted
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray  # mean repeat-purchase value
    first_day: IntArray
    last_day: IntArray
    total: FloatArray  # value of all purchases, the first included

    def __len__(self) -> int:
        return len(self.customer)


def _purchase_days(
    customer: IntArray, day: IntArray, value: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """One row per (customer, day), sorted, with values summed."""
    order = np.lexsort((day, customer))
    c, d, v = customer[order], day[order], value[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(new)
    return c[starts], d[starts], np.add.reduceat(v, starts) if len(v) else v


def summarise(customer: ArrayLike, day: ArrayLike, value: ArrayLike, *, end_day: int) -> Summary:
    """The summary of every customer with a purchase on or before `end_day`."""
    customer = np.asarray(customer, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    value = as_float(value)
    keep = day <= end_day
    c, d, v = _purchase_days(customer[keep], day[keep], value[keep])
    if len(c) == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0)
        return Summary(empty_i, empty_f, empty_f, empty_f, empty_f, empty_i, empty_i, empty_f)
    first_row = np.ones(len(c), dtype=bool)
    first_row[1:] = c[1:] != c[:-1]
    starts = np.flatnonzero(first_row)
    ends = np.append(starts[1:], len(c)) - 1
    count = ends - starts + 1
    total = np.add.reduceat(v, starts)
    first_value = v[starts]
    x = (count - 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(x > 0, (total - first_value) / np.maximum(x, 1), 0.0)
    return Summary(
        customer=c[starts],
        x=x,
        t_x=(d[ends] - d[starts]).astype(np.float64),
        T=(end_day - d[starts]).astype(np.float64),
        m=m,
        first_day=d[starts],
        last_day=d[ends],
        total=total,
    )


@dataclass(frozen=True)
class Holdout:
    calibration: Summary
    purchases: FloatArray  # purchase days in the holdout, per calibration customer
    value: FloatArray  # their value
    length: int  # days in the holdout period


def calibration_holdout(
    customer: ArrayLike,
    day: ArrayLike,
    value: ArrayLike,
    *,
    calibration_end: int,
    observation_end: int,
) -> Holdout:
    """Split at `calibration_end` (inclusive): the calibration summary of customers whose
    first purchase falls in it, and what each of them bought in (calibration_end,
    observation_end]. Customers first seen in the holdout are left out, as in the papers."""
    if observation_end <= calibration_end:
        raise ValueError("the observation period must end after the calibration period")
    customer = np.asarray(customer, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    value = as_float(value)
    calibration = summarise(customer, day, value, end_day=calibration_end)
    later = (day > calibration_end) & (day <= observation_end)
    c, _d, v = _purchase_days(customer[later], day[later], value[later])
    index = np.searchsorted(calibration.customer, c)
    index = np.minimum(index, max(len(calibration.customer) - 1, 0))
    known = calibration.customer[index] == c if len(calibration.customer) else np.zeros(0, bool)
    purchases = np.bincount(index[known], minlength=len(calibration)).astype(np.float64)
    spent = np.bincount(index[known], weights=v[known], minlength=len(calibration))
    return Holdout(
        calibration=calibration,
        purchases=purchases,
        value=as_float(spent),
        length=observation_end - calibration_end,
    )
