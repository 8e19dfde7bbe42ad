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


def build(interactions: Interactions, product_ids: np.ndarray | None = None) -> Matrix:
    """The matrix of `interactions`; with `product_ids`, its columns are those products
    (interactions with other products are dropped) so a catalogue without sales is known."""
    customer_ids = np.unique(interactions.customers).astype(np.int64)
    if product_ids is None:
        products = np.unique(interactions.products).astype(np.int64)
    else:
        products = np.unique(np.asarray(product_ids, dtype=np.int64))
    cols = np.searchsorted(products, interactions.products)
    known = cols < len(products)
    known[known] = products[cols[known]] == interactions.products[known]
    rows = np.searchsorted(customer_ids, interactions.customers)
    rows, cols = rows[known], cols[known]
    shape = (len(customer_ids), len(products))
    weights = sp.csr_matrix(
        (interactions.weights[known].astype(np.float32), (rows, cols)), shape=shape
    )
    weights.sum_duplicates()
    purchase = interactions.purchase[known]
    bought = sp.csr_matrix(
        (np.ones(int(purchase.sum()), np.float32), (rows[purchase], cols[purchase])), shape=shape
    )
    bought.sum_duplicates()
    bought.data[:] = 1.0
    return Matrix(customer_ids=customer_ids, product_ids=products, weights=weights, bought=bought)
