"""Offline evaluation on a time-based holdout.

Interactions before the cut-off train the models; each customer who has history before the
cut-off and buys products in the holdout window that they had not bought before is a test
case. Each model recommends k products (excluding the customer's earlier purchases) and is
scored by precision@k, recall@k, MAP@k (mean of average precision, normalised by
min(k, relevant)) and catalogue coverage (distinct products recommended / products).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kizuna.recommendations.engine.matrix import Interactions, Matrix


@dataclass
class Holdout:
    train: Interactions
    rows: np.ndarray  # test customers' rows in the training matrix
    truth: list[set[int]]  # per test customer: product columns bought in the holdout


def split(
    interactions: Interactions, cutoff: int, matrix_of: Callable[[Interactions], Matrix]
) -> tuple[Matrix, Holdout]:
    """The training matrix (interactions before `cutoff`, epoch seconds) and the test cases."""
    before = interactions.times < cutoff
    train = interactions.subset(before)
    matrix = matrix_of(train)
    after = interactions.subset(~before & interactions.purchase)
    rows_list: list[int] = []
    truth: list[set[int]] = []
    if len(after) and matrix.shape[0] and matrix.shape[1]:
        rows = np.searchsorted(matrix.customer_ids, after.customers)
        rows = np.minimum(rows, len(matrix.customer_ids) - 1)
        known_c = matrix.customer_ids[rows] == after.customers
        cols = np.searchsorted(matrix.product_ids, after.products)
        cols = np.minimum(cols, len(matrix.product_ids) - 1)
        known_p = matrix.product_ids[cols] == after.products
        keep = known_c & known_p
        per: dict[int, set[int]] = {}
        for r, c in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
            per.setdefault(r, set()).add(c)
        bought = matrix.bought
        for r in sorted(per):
            seen = set(bought.indices[bought.indptr[r] : bought.indptr[r + 1]].tolist())
            new = per[r] - seen
            if new:
                rows_list.append(r)
                truth.append(new)
    return matrix, Holdout(train, np.asarray(rows_list, np.int64), truth)


def metrics(
    recommended: list[list[int]], truth: list[set[int]], k: int, n_items: int
) -> dict[str, float]:
    """precision@k, recall@k, MAP@k and coverage of `recommended` against `truth`."""
    if not truth:
        return {"precision": 0.0, "recall": 0.0, "map": 0.0, "coverage": 0.0, "customers": 0}
    precision = recall = ap_sum = 0.0
    seen: set[int] = set()
    for recs, relevant in zip(recommended, truth, strict=True):
        recs = recs[:k]
        seen.update(recs)
        hits = 0
        ap = 0.0
        for position, item in enumerate(recs, start=1):
            if item in relevant:
                hits += 1
                ap += hits / position
        precision += hits / k
        recall += hits / len(relevant)
        ap_sum += ap / min(k, len(relevant))
    n = len(truth)
    return {
        "precision": round(precision / n, 5),
        "recall": round(recall / n, 5),
        "map": round(ap_sum / n, 5),
        "coverage": round(len(seen) / n_items, 5) if n_items else 0.0,
        "customers": n,
    }


def recommend_rows(model: object, rows: np.ndarray, k: int) -> list[list[int]]:
    """Top-k product columns for each customer row, excluding what the row bought."""
    from kizuna.recommendations.engine.models import Trained
    from kizuna.recommendations.engine.ranking import rank

    assert isinstance(model, Trained)
    out: list[list[int]] = []
    blocked = np.zeros(model.n_items, bool)
    for row in rows.tolist():
        seen = model.bought_columns(row)
        blocked[seen] = True
        out.append(rank(model.scores(row), n=k, blocked=blocked))
        blocked[seen] = False
    return out
