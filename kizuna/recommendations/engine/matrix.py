"""The customer x product interaction matrix built from interaction rows.

Rows are (customer id, product id, weight, time); repeated pairs add up. Customers and
products are indexed by their sorted ids, so a row or column is found by binary search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Interactions:
    """Interaction rows as parallel arrays (one purchase line or product view each)."""

    customers: np.ndarray  # int64 customer ids
    products: np.ndarray  # int64 product ids
    weights: np.ndarray  # float32, > 0
    times: np.ndarray  # int64 epoch seconds
    purchase: np.ndarray  # bool: a purchase (True) or a view (False)

    def __len__(self) -> int:
        return int(self.customers.shape[0])

    def subset(self, mask: np.ndarray) -> Interactions:
        return Interactions(
            customers=self.customers[mask],
            products=self.products[mask],
            weights=self.weights[mask],
            times=self.times[mask],
            purchase=self.purchase[mask],
        )

    @staticmethod
    def empty() -> Interactions:
        return Interactions(
            customers=np.zeros(0, np.int64),
            products=np.zeros(0, np.int64),
            weights=np.zeros(0, np.float32),
            times=np.zeros(0, np.int64),
            purchase=np.zeros(0, bool),
        )


@dataclass(frozen=True)
class Matrix:
    customer_ids: np.ndarray  # sorted unique int64
    product_ids: np.ndarray  # sorted unique int64 (the catalogue the model knows)
    weights: sp.csr_matrix  # customers x products, float32 summed weights
    bought: sp.csr_matrix  # customers x products, 1 where the customer purchased it

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.customer_ids), len(self.product_ids))

    def row_of(self, customer_id: int) -> int | None:
        return _index_of(self.customer_ids, customer_id)

    def column_of(self, product_id: int) -> int | None:
        return _index_of(self.product_ids, product_id)


def _index_of(ids: np.ndarray, value: int) -> int | None:
    i = int(np.searchsorted(ids, value))
    if i < len(ids) and int(ids[i]) == value:
        return i
    return None


_DENSE_SPAN = 1 << 22  # ids spread over at most this (or twice the rows) use a lookup table


def _dense(span: int, count: int) -> bool:
    return span <= max(_DENSE_SPAN, 2 * count)


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted unique `values` and the index of each value among them. Database ids are
    dense enough for a lookup table over their range (one pass, no sort: ten million rows
    in a fraction of a second instead of 3-4 s); otherwise `np.unique`."""
    if len(values) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    if not _dense(span, len(values)):
        unique, inverse = np.unique(values, return_inverse=True)
        return unique.astype(np.int64), inverse.astype(np.int32)
    offsets = values - low
    present = np.zeros(span, bool)
    present[offsets] = True
    unique = np.flatnonzero(present).astype(np.int64) + low
    rank = np.cumsum(present, dtype=np.int32) - 1
    return unique, rank[offsets]


def _columns(products: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The index of each of `values` in the sorted unique `products` (-1: not there)."""
    out = np.full(len(values), -1, np.int32)
    if len(products) == 0 or len(values) == 0:
        return out
    low, high = int(products[0]), int(products[-1])
    inside = (values >= low) & (values <= high)
    if _dense(high - low + 1, len(values)):
        table = np.full(high - low + 1, -1, np.int32)
        table[products - low] = np.arange(len(products), dtype=np.int32)
        out[inside] = table[values[inside] - low]
        return out
    at = np.searchsorted(products, values[inside])
    found = products[np.minimum(at, len(products) - 1)] == values[inside]
    out[inside] = np.where(found, at, -1)
    return out


def _csr(
    rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A canonical CSR matrix (sorted indices, repeated pairs summed), int32 indices."""
    matrix = sp.coo_matrix((data, (rows, cols)), shape=shape).tocsr()
    matrix.sum_duplicates()
    return matrix


def build(interactions: Interactions, product_ids: np.ndarray | None = None) -> Matrix:
    """The matrix of `interactions`; with `product_ids`, its columns are those products
    (interactions with other products are dropped) so a catalogue without sales is known."""
    if product_ids is None:
        products = np.unique(interactions.products).astype(np.int64)
    else:
        products = np.unique(np.asarray(product_ids, dtype=np.int64))
    cols = _columns(products, interactions.products)
    known = cols >= 0
    everything = bool(known.all())
    customer_ids, rows = _ranks(interactions.customers)
    if not everything:
        rows, cols = rows[known], cols[known]
    shape = (len(customer_ids), len(products))
    weights = interactions.weights if everything else interactions.weights[known]
    weights = _csr(rows, cols, weights.astype(np.float32, copy=False), shape)
    purchase = interactions.purchase if everything else interactions.purchase[known]
    if purchase.all():  # no views: bought where there is a weight
        bought = sp.csr_matrix(
            (np.ones(weights.nnz, np.float32), weights.indices.copy(), weights.indptr.copy()),
            shape=shape,
        )
    else:
        bought = _csr(
            rows[purchase], cols[purchase], np.ones(int(purchase.sum()), np.float32), shape
        )
        bought.data[:] = 1.0
    return Matrix(customer_ids=customer_ids, product_ids=products, weights=weights, bought=bought)
