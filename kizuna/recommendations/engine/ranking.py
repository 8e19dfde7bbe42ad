"""Turning a score per product into a ranked list: exclusions, then diversity.

`blocked` products are never returned (inactive or out of stock, excluded categories,
already bought unless consumable: the caller builds the mask). Diversity is a cap on how
many products of one category the list may hold; when the cap leaves the list short, the
best remaining products fill it regardless of category.
"""

from __future__ import annotations

import numpy as np


def rank(
    scores: np.ndarray,
    *,
    n: int,
    blocked: np.ndarray | None = None,
    categories: np.ndarray | None = None,
    per_category: int | None = None,
) -> list[int]:
    """The indices of the `n` best products by `scores` (ties by index), honouring
    `blocked` and at most `per_category` products per category (categories < 0 are
    uncapped)."""
    if n <= 0 or len(scores) == 0:
        return []
    candidate = np.isfinite(scores)
    if blocked is not None:
        candidate &= ~blocked
    pool = np.flatnonzero(candidate)
    if len(pool) == 0:
        return []
    want = len(pool) if per_category else min(len(pool), n)
    if per_category and len(pool) > 8 * n:
        want = max(8 * n, n * 4 + 50)
    if want < len(pool):
        top = np.argpartition(-scores[pool], want - 1)[:want]
        pool = pool[top]
    order = pool[np.lexsort((pool, -scores[pool]))]
    if not per_category or categories is None:
        return [int(i) for i in order[:n]]
    chosen: list[int] = []
    skipped: list[int] = []
    used: dict[int, int] = {}
    for i in order.tolist():
        category = int(categories[i])
        if category >= 0 and used.get(category, 0) >= per_category:
            skipped.append(i)
            continue
        used[category] = used.get(category, 0) + 1
        chosen.append(i)
        if len(chosen) == n:
            return chosen
    return chosen + skipped[: n - len(chosen)]
