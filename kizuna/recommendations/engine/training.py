"""Training of each model kind over a `Matrix`: pure functions, deterministic by seed.

- ALS and BPR: implicit-feedback matrix factorisation (the `implicit` package). ALS reads
  confidences `alpha * log1p(weight)`; BPR reads which products a customer interacted with.
- Co-purchase ("frequently bought together"): per product the products most often bought by
  the same customers, scored by normalised co-occurrence (cosine: c_ij / sqrt(n_i * n_j)),
  with a minimum number of shared customers.
- Popularity: distinct buyers per product, overall and per group of customers (the fallback
  for customers without history).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from kizuna.recommendations.engine.matrix import Matrix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Params:
    factors: int = 0  # 0: by catalogue size (als_factors)
    iterations: int = 0  # 0: by the number of interactions (als_iterations)
    regularization: float = 5.0
    alpha: float = 2.0
    bpr_factors: int = 32
    bpr_iterations: int = 0  # 0: by the number of interactions (bpr_epochs)
    bpr_learning_rate: float = 0.05
    bpr_regularization: float = 0.01
    neighbours: int = 30
    min_support: int = 2
    seed: int = 1
    threads: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not 0 <= self.factors <= 10_000:
            errors["factors"] = "factors must be between 0 (automatic) and 10000"
        for name in ("iterations", "bpr_iterations"):
            if not 0 <= getattr(self, name) <= 10_000:
                errors[name] = f"{name} must be between 0 (automatic) and 10000"
        for name in ("bpr_factors", "neighbours"):
            if not 1 <= getattr(self, name) <= 10_000:
                errors[name] = f"{name} must be between 1 and 10000"
        for name in ("regularization", "alpha", "bpr_learning_rate", "bpr_regularization"):
            if not getattr(self, name) > 0:
                errors[name] = f"{name} must be greater than 0"
        if not 1 <= self.threads <= 64:
            errors["threads"] = "threads must be between 1 and 64"
        if self.min_support < 1:
            errors["min_support"] = "min_support must be at least 1"
        return errors


@dataclass
class Factors:
    user: np.ndarray  # customers x f, float32
    item: np.ndarray  # products x f, float32

    def scores(self, row: int) -> np.ndarray:
        return np.asarray(self.item @ self.user[row], dtype=np.float32)


@dataclass
class CoPurchase:
    neighbours: np.ndarray  # products x K int32, -1 where there are fewer than K
    scores: np.ndarray  # products x K float32

    def related(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.neighbours[column] >= 0
        return self.neighbours[column][keep], self.scores[column][keep]

    def for_basket(self, columns: np.ndarray, n_items: int) -> np.ndarray:
        """Scores of every product for a customer who bought `columns`: the sum of the
        co-purchase scores of their products' neighbours."""
        out = np.zeros(n_items, np.float32)
        if len(columns) == 0:
            return out
        idx = self.neighbours[columns].ravel()
        val = self.scores[columns].ravel()
        keep = idx >= 0
        np.add.at(out, idx[keep], val[keep])
        return out


@dataclass
class Popularity:
    overall: np.ndarray  # products, float32 (distinct buyers)
    groups: list[str] = field(default_factory=list)
    by_group: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def for_group(self, group: str | None) -> np.ndarray:
        # overall popularity, scaled below one buyer, breaks ties within the group
        tie = self.overall / (float(self.overall.max(initial=0.0)) + 1.0)
        if group is not None and group in self.groups:
            return np.asarray(self.by_group[self.groups.index(group)] + tie, dtype=np.float32)
        return self.overall


def als_factors(params: Params, n_items: int) -> int:
    """ALS factors: as configured, or (0) one per 8 products within 4..32: a small
    catalogue is overfitted by many factors (on the demo's 41 products, 32 factors score
    below popularity on the holdout; 5 score 1.5-2x above it)."""
    if params.factors:
        return params.factors
    return max(4, min(32, n_items // 8))


ALS_BUDGET = 50_000_000


def als_iterations(params: Params, nnz: int) -> int:
    """ALS iterations: as configured, or (0) 12 up to ALS_BUDGET / 12 (about 4 million)
    customer-product pairs, then ALS_BUDGET / pairs, at least 4: 6 at a million customers
    (8 million pairs), where ALS has converged (holdout MAP@10 on the synthetic set of
    bench/recommendations_1m.py at half size: 0.1053 with 12, 0.1046 with 6) and 12
    iterations took a minute of the two-minute budget."""
    if params.iterations:
        return params.iterations
    return max(4, min(12, ALS_BUDGET // max(nnz, 1)))


BPR_SAMPLE_BUDGET = 40_000_000


def bpr_epochs(params: Params, nnz: int) -> int:
    """BPR iterations: as configured, or (0) a budget of BPR_SAMPLE_BUDGET sampled triples
    within 5..40 iterations (each iteration samples one triple per pair): 40 on the demo
    (more scored lower on its holdout), 5 at a million customers (8 million pairs), where
    fewer iterations also scored higher on the synthetic holdout (see docs/benchmarks.md)."""
    if params.bpr_iterations:
        return params.bpr_iterations
    return max(5, min(40, BPR_SAMPLE_BUDGET // max(nnz, 1)))


def _quiet_blas() -> Any:
    # implicit's own threads do the work; a BLAS thread pool inside them oversubscribes.
    return threadpool_limits(limits=1, user_api="blas")


def _confidence(matrix: Matrix, params: Params) -> sp.csr_matrix:
    conf = matrix.weights.copy()
    conf.data = (params.alpha * np.log1p(conf.data)).astype(np.float32)
    return conf


def train_als(matrix: Matrix, params: Params) -> Factors:
    from implicit.cpu.als import AlternatingLeastSquares

    n_c, n_p = matrix.shape
    factors = als_factors(params, n_p)
    if n_c == 0 or n_p == 0:
        return Factors(np.zeros((n_c, factors), np.float32), np.zeros((n_p, factors), np.float32))
    with _quiet_blas(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=params.regularization,
            iterations=als_iterations(params, matrix.weights.nnz),
            num_threads=params.threads,
            random_state=params.seed,
            dtype=np.float32,
        )
        model.fit(_confidence(matrix, params), show_progress=False)
    return Factors(
        np.ascontiguousarray(model.user_factors), np.ascontiguousarray(model.item_factors)
    )


def train_bpr(matrix: Matrix, params: Params) -> Factors:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    n_c, n_p = matrix.shape
    width = params.bpr_factors + 1  # implicit adds the item bias as one more factor
    if n_c == 0 or n_p < 2 or matrix.weights.nnz == 0:
        return Factors(np.zeros((n_c, width), np.float32), np.zeros((n_p, width), np.float32))
    binary = matrix.weights.copy()
    binary.data[:] = 1.0
    with _quiet_blas(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = BayesianPersonalizedRanking(
            factors=params.bpr_factors,
            learning_rate=params.bpr_learning_rate,
            regularization=params.bpr_regularization,
            iterations=bpr_epochs(params, binary.nnz),
            num_threads=params.threads,
            random_state=params.seed,
            dtype=np.float32,
        )
        model.fit(binary, show_progress=False)
    return Factors(
        np.ascontiguousarray(model.user_factors), np.ascontiguousarray(model.item_factors)
    )


def train_copurchase(matrix: Matrix, params: Params) -> CoPurchase:
    """Each product's `params.neighbours` most co-purchased products (cosine-normalised)."""
    n_p = matrix.shape[1]
    k = params.neighbours
    neighbours = np.full((n_p, k), -1, np.int32)
    scores = np.zeros((n_p, k), np.float32)
    bought = matrix.bought
    if bought.nnz == 0:
        return CoPurchase(neighbours, scores)
    counts = np.asarray(bought.sum(axis=0)).ravel().astype(np.float32)
    co = (bought.T @ bought).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co.data[co.data < params.min_support] = 0
    co.eliminate_zeros()
    rows = np.repeat(np.arange(n_p), np.diff(co.indptr))
    co.data = (co.data / np.sqrt(counts[rows] * counts[co.indices])).astype(np.float32)
    for i in range(n_p):
        start, end = co.indptr[i], co.indptr[i + 1]
        if start == end:
            continue
        idx, val = co.indices[start:end], co.data[start:end]
        if end - start > k:
            top = np.argpartition(-val, k - 1)[:k]
            idx, val = idx[top], val[top]
        order = np.lexsort((idx, -val))
        neighbours[i, : len(order)] = idx[order]
        scores[i, : len(order)] = val[order]
    return CoPurchase(neighbours, scores)


def train_popularity(matrix: Matrix, groups: np.ndarray | None = None) -> Popularity:
    """Distinct buyers per product; with `groups` (one label per customer row, "" for
    none), also per group label."""
    bought = matrix.bought
    overall = np.asarray(bought.sum(axis=0)).ravel().astype(np.float32)
    if groups is None or len(groups) == 0 or bought.shape[0] == 0:
        return Popularity(overall)
    labels, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    indicator = sp.csr_matrix(
        (np.ones(len(codes), np.float32), (codes, np.arange(len(codes)))),
        shape=(len(labels), len(codes)),
    )
    by_group = np.asarray((indicator @ bought).todense(), dtype=np.float32)
    keep = labels != ""
    return Popularity(overall, [str(x) for x in labels[keep]], by_group[keep])
