"""RFM: recency, frequency and monetary value scored 1-5 by quintile, and the named segments.

Scores: a customer's score on a measure is 1 + ⌊5 × (share of scored customers whose value
is strictly worse)⌋, so equal values always get equal scores (many one-order customers all
get F = 1 rather than being split arbitrarily), and a score of 5 means "better than at least
80% of customers". For recency, worse means longer ago.

Segments come from the R × F grid (the usual "RF grid"; M is reported beside it):

    F →        1               2               3               4               5
    R=5   new             potential       potential       champions       champions
    R=4   promising       potential       potential       loyal           loyal
    R=3   about to sleep  about to sleep  need attention  loyal           loyal
    R=2   hibernating     hibernating     at risk         at risk         cannot lose them
    R=1   lost            hibernating     at risk         at risk         cannot lose them
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.analytics.scoring.rfm_names import ABOUT_TO_SLEEP as ABOUT_TO_SLEEP
from kizuna.analytics.scoring.rfm_names import AT_RISK as AT_RISK
from kizuna.analytics.scoring.rfm_names import CANNOT_LOSE as CANNOT_LOSE
from kizuna.analytics.scoring.rfm_names import CHAMPIONS as CHAMPIONS
from kizuna.analytics.scoring.rfm_names import GRID as GRID
from kizuna.analytics.scoring.rfm_names import HIBERNATING as HIBERNATING
from kizuna.analytics.scoring.rfm_names import LOST as LOST
from kizuna.analytics.scoring.rfm_names import LOYAL as LOYAL
from kizuna.analytics.scoring.rfm_names import NEED_ATTENTION as NEED_ATTENTION
from kizuna.analytics.scoring.rfm_names import NEW as NEW
from kizuna.analytics.scoring.rfm_names import POTENTIAL as POTENTIAL
from kizuna.analytics.scoring.rfm_names import PROMISING as PROMISING
from kizuna.analytics.scoring.rfm_names import SEGMENTS as SEGMENTS

_GRID_CODES = np.array([[SEGMENTS.index(name) for name in row] for row in GRID], dtype=np.int8)


def quintile_scores(values: ArrayLike, *, higher_is_better: bool = True) -> NDArray[np.int8]:
    """1-5 per customer: 1 + floor(5 × share of customers with a strictly worse value)."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    ordered = np.sort(v)
    if higher_is_better:
        worse = np.searchsorted(ordered, v, side="left")  # strictly smaller
    else:
        worse = n - np.searchsorted(ordered, v, side="right")  # strictly larger
    return (1 + (5 * worse) // n).astype(np.int8)


def score(
    recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike
) -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.int8]]:
    """(R, F, M) scores. Recency: days since the last purchase (fewer is better);
    frequency: number of purchases; monetary: net spend."""
    return (
        quintile_scores(recency_days, higher_is_better=False),
        quintile_scores(frequency),
        quintile_scores(monetary),
    )


def segment_codes(r: ArrayLike, f: ArrayLike) -> NDArray[np.int8]:
    """Index into SEGMENTS per customer, from the R × F grid."""
    r = np.asarray(r, dtype=np.int64)
    f = np.asarray(f, dtype=np.int64)
    return _GRID_CODES[r - 1, f - 1]


def segments(r: ArrayLike, f: ArrayLike) -> list[str]:
    return [SEGMENTS[code] for code in segment_codes(r, f)]
