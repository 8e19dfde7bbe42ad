"""The CDNOW 1/10 sample shipped in kizuna/analytics/data (see its README)."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
EPOCH = date(1970, 1, 1)
CALIBRATION_END = date(1997, 9, 30)  # 39 weeks after 1997-01-01 (inclusive)
OBSERVATION_END = date(1998, 6, 30)


@cache
def summary() -> dict[str, np.ndarray]:
    table = np.genfromtxt(
        DATA / "cdnow_customers_summary_with_transactions.csv", delimiter=",", names=True
    )
    names = table.dtype.names or ()
    return {name: np.asarray(table[name], dtype=float) for name in names}


@cache
def transactions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer, day since 1970-01-01, value) per transaction line."""
    customers, days, values = [], [], []
    for line in (DATA / "CDNOW_sample.txt").read_text().splitlines():
        _master, customer, when, _cds, value = line.split()
        customers.append(int(customer))
        days.append((date(int(when[:4]), int(when[4:6]), int(when[6:])) - EPOCH).days)
        values.append(float(value))
    return np.array(customers), np.array(days), np.array(values)


def day(moment: date) -> int:
    return (moment - EPOCH).days
