"""A trained model of one kind with what serving needs beside it: the customer and product
ids it knows and which products each customer bought (for the already-bought exclusion).
Saved as one NumPy `.npz` file (no pickles)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from kizuna.recommendations.engine import training
from kizuna.recommendations.engine.kinds import ALS as ALS
from kizuna.recommendations.engine.kinds import BPR as BPR
from kizuna.recommendations.engine.kinds import COOCCURRENCE as COOCCURRENCE
from kizuna.recommendations.engine.kinds import KINDS as KINDS
from kizuna.recommendations.engine.kinds import POPULARITY as POPULARITY
from kizuna.recommendations.engine.matrix import Matrix, _index_of


@dataclass
class Trained:
    kind: str
    customer_ids: np.ndarray
    product_ids: np.ndarray
    bought: sp.csr_matrix
    factors: training.Factors | None = None
    copurchase: training.CoPurchase | None = None
    popularity: training.Popularity | None = None

    @property
    def n_items(self) -> int:
        return len(self.product_ids)

    def row_of(self, customer_id: int) -> int | None:
        return _index_of(self.customer_ids, customer_id)

    def column_of(self, product_id: int) -> int | None:
        return _index_of(self.product_ids, product_id)

    def bought_columns(self, row: int) -> np.ndarray:
        return self.bought.indices[self.bought.indptr[row] : self.bought.indptr[row + 1]]

    def scores(self, row: int | None, group: str | None = None) -> np.ndarray:
        """A score per product for the customer at `row` (None: no history)."""
        if self.factors is not None and row is not None:
            return self.factors.scores(row)
        if self.copurchase is not None and row is not None:
            return self.copurchase.for_basket(self.bought_columns(row), self.n_items)
        if self.popularity is not None:
            return self.popularity.for_group(group)
        return np.zeros(self.n_items, np.float32)

    def personal(self, row: int | None) -> bool:
        """Whether `scores(row)` is personal (False: a popularity list)."""
        return row is not None and self.popularity is None

    def share_rows(self, other: Trained) -> bool:
        """Use `other`'s customer ids and bought matrix when they are equal to this model's
        (the kinds of one training run are trained over the same matrix): one copy per
        process instead of one per kind, about 40 MB each at ten million order lines."""
        if self.bought is other.bought:
            return True
        if (
            self.customer_ids.shape != other.customer_ids.shape
            or self.bought.shape != other.bought.shape
            or self.bought.nnz != other.bought.nnz
            or not np.array_equal(self.customer_ids, other.customer_ids)
            or not np.array_equal(self.bought.indptr, other.bought.indptr)
            or not np.array_equal(self.bought.indices, other.bought.indices)
        ):
            return False
        self.customer_ids, self.bought = other.customer_ids, other.bought
        return True

    def save(self, path: Path) -> None:
        """Write the model to `path` atomically (a temporary file renamed into place)."""
        arrays: dict[str, np.ndarray] = {
            "kind": np.array(self.kind),
            "customer_ids": self.customer_ids,
            "product_ids": self.product_ids,
            "bought_indptr": self.bought.indptr,
            "bought_indices": self.bought.indices,
        }
        if self.factors is not None:
            arrays["user"], arrays["item"] = self.factors.user, self.factors.item
        if self.copurchase is not None:
            arrays["neighbours"] = self.copurchase.neighbours
            arrays["neighbour_scores"] = self.copurchase.scores
        if self.popularity is not None:
            arrays["overall"] = self.popularity.overall
            arrays["groups"] = np.array(self.popularity.groups, dtype=str)
            arrays["by_group"] = self.popularity.by_group
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        with open(temporary, "wb") as handle:
            savez: Any = np.savez  # its stub types **arrays as allow_pickle
            savez(handle, **arrays)
        os.replace(temporary, path)

    @staticmethod
    def load(path: Path) -> Trained:
        with np.load(path, allow_pickle=False) as data:
            customer_ids, product_ids = data["customer_ids"], data["product_ids"]
            indices = data["bought_indices"]
            bought = sp.csr_matrix(
                (np.ones(len(indices), np.float32), indices, data["bought_indptr"]),
                shape=(len(customer_ids), len(product_ids)),
            )
            model = Trained(str(data["kind"]), customer_ids, product_ids, bought)
            if "user" in data:
                model.factors = training.Factors(data["user"], data["item"])
            if "neighbours" in data:
                model.copurchase = training.CoPurchase(data["neighbours"], data["neighbour_scores"])
            if "overall" in data:
                model.popularity = training.Popularity(
                    data["overall"], [str(g) for g in data["groups"]], data["by_group"]
                )
        return model


def train(
    kind: str, matrix: Matrix, params: training.Params, groups: np.ndarray | None = None
) -> Trained:
    """Train one kind over `matrix` (`groups`: a label per customer row, for popularity)."""
    model = Trained(kind, matrix.customer_ids, matrix.product_ids, matrix.bought)
    if kind == ALS:
        model.factors = training.train_als(matrix, params)
    elif kind == BPR:
        model.factors = training.train_bpr(matrix, params)
    elif kind == COOCCURRENCE:
        model.copurchase = training.train_copurchase(matrix, params)
    elif kind == POPULARITY:
        model.popularity = training.train_popularity(matrix, groups)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return model
