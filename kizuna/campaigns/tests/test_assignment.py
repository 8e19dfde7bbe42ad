"""Deterministic split: same answer every time, in any order, in the proportions asked."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from kizuna.campaigns.assignment import HOLDOUT, MAIN, REMAINDER, TEST, assign, unit


def _assign_all(ids: list[int], **kwargs: Any) -> dict[int, tuple[str, int | None]]:
    out = {}
    for cid in ids:
        a = assign(seed="42", customer_id=cid, **kwargs)
        out[cid] = (a.group, a.variant)
    return out


def test_assignment_is_deterministic_and_order_independent() -> None:
    ids = list(range(1, 2001))
    kwargs: dict[str, Any] = {"holdout_percent": 10, "test_percent": 30, "weights": [1, 1, 2]}
    first = _assign_all(ids, **kwargs)
    again = _assign_all(list(reversed(ids)), **kwargs)
    assert first == again
    subset = _assign_all(ids[::7], **kwargs)  # a smaller audience: same answer per customer
    assert all(subset[c] == first[c] for c in subset)
    other_seed = {c: assign(seed="43", customer_id=c, **kwargs) for c in ids}
    assert sum((a.group, a.variant) != first[c] for c, a in other_seed.items()) > 500


def test_proportions_follow_the_percentages_and_weights() -> None:
    n = 40_000
    result = _assign_all(list(range(n)), holdout_percent=10, test_percent=25, weights=[1, 3])
    groups = Counter(g for g, _v in result.values())
    assert abs(groups[HOLDOUT] / n - 0.10) < 0.01
    assert abs(groups[TEST] / n - 0.9 * 0.25) < 0.01
    assert abs(groups[REMAINDER] / n - 0.9 * 0.75) < 0.01
    variants = Counter(v for g, v in result.values() if g == TEST)
    assert abs(variants[1] / (variants[0] + variants[1]) - 0.75) < 0.02
    assert all(v is None for g, v in result.values() if g in (HOLDOUT, REMAINDER))


def test_a_plain_split_has_no_rest() -> None:
    result = _assign_all(list(range(5000)), holdout_percent=0, test_percent=100, weights=[1, 1])
    assert {g for g, _v in result.values()} == {MAIN}
    one = _assign_all(list(range(500)), holdout_percent=0, test_percent=20, weights=[1])
    assert {g for g, _v in one.values()} == {MAIN} and {v for _g, v in one.values()} == {0}


def test_unit_is_uniform_in_zero_one() -> None:
    values = [unit("s", i, "x") for i in range(10_000)]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(values) / len(values) - 0.5) < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [
        {"holdout_percent": 100, "test_percent": 100, "weights": [1]},
        {"holdout_percent": 0, "test_percent": 0, "weights": [1]},
        {"holdout_percent": 0, "test_percent": 100, "weights": []},
        {"holdout_percent": 0, "test_percent": 100, "weights": [1, 0]},
    ],
)
def test_bad_parameters_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        assign(seed="1", customer_id=1, **kwargs)
