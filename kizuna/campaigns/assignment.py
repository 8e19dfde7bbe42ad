"""Deterministic assignment of a campaign's audience to the holdout, the test and its
variants, and the rest (who get the winner). Pure: the same campaign seed and customer id
always give the same answer, whatever order customers come in and whoever else is in the
audience, so a retried or re-run launch assigns everyone exactly as before."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HOLDOUT = "holdout"
TEST = "test"
REMAINDER = "remainder"
MAIN = "main"  # no separate test: every non-holdout recipient gets one of the variants


def unit(seed: str, customer_id: int, salt: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of (seed, salt, customer id)."""
    digest = hashlib.sha256(f"{seed}:{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Assignment:
    group: str
    variant: int | None  # index into the campaign's variants; None for holdout and remainder


def assign(
    *,
    seed: str,
    customer_id: int,
    holdout_percent: float,
    test_percent: float,
    weights: list[int],
) -> Assignment:
    """`holdout_percent` of the audience receives nothing (the control group); of the others,
    `test_percent` are in the test and split over the variants by `weights`; the rest wait
    for the winner. With one variant or `test_percent` = 100 there is no separate rest."""
    if not weights or any(w <= 0 for w in weights):
        raise ValueError("every variant needs a positive weight")
    if not 0 <= holdout_percent < 100 or not 0 < test_percent <= 100:
        raise ValueError("holdout in [0, 100), test in (0, 100]")
    if unit(seed, customer_id, HOLDOUT) < holdout_percent / 100:
        return Assignment(HOLDOUT, None)
    split_test = len(weights) > 1 and test_percent < 100
    if split_test and unit(seed, customer_id, TEST) >= test_percent / 100:
        return Assignment(REMAINDER, None)
    point = unit(seed, customer_id, "variant") * sum(weights)
    cumulative = 0
    for index, weight in enumerate(weights):
        cumulative += weight
        if point < cumulative:
            return Assignment(TEST if split_test else MAIN, index)
    return Assignment(TEST if split_test else MAIN, len(weights) - 1)  # float edge
