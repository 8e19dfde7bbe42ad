"""Reading the training data: purchase lines and product views as interaction arrays
(raw SQL, one pass each), the catalogue's product ids, and each customer's group label."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection

from kizuna.catalog.models import Product
from kizuna.commerce.models import Order, OrderLine, OrderStatus
from kizuna.customers.models import Customer, Event
from kizuna.recommendations.engine.matrix import Interactions

VIEW_EVENT = "Product Viewed"
CHUNK = 50_000


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        # whole seconds, truncated as SQLite's strftime('%s') does (a bare CAST rounds)
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _sku_of(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} ->> 'sku')"
    return f"json_extract({column}, '$.sku')"


def _fetch(sql: str, params: list[Any], width: int) -> np.ndarray:
    """The rows of `sql` (`width` integer columns, never NULL) as a float64 array."""
    if connection.vendor == "postgresql":
        return _copy_binary(sql, params, width)
    parts: list[np.ndarray] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(CHUNK)
            if not rows:
                break
            parts.append(np.asarray(rows, dtype=np.float64).reshape(-1, width))
    if not parts:
        return np.zeros((0, width), np.float64)
    return np.concatenate(parts)


_COPY_HEADER = 19  # PGCOPY signature (11 bytes), flags (4), header extension length (4)
_COPY_CHUNK = 8 << 20


def _copy_binary(sql: str, params: list[Any], width: int) -> np.ndarray:
    """PostgreSQL: the rows through `COPY (...) TO STDOUT (FORMAT binary)`, each column cast
    to bigint, parsed by NumPy as fixed-width records (a field count, then a length and an
    8-byte big-endian value per column) instead of one Python tuple per row: at ten million
    rows this is the difference between a minute and a few seconds."""
    record = np.dtype(
        [("count", ">i2")] + [x for i in range(width) for x in ((f"l{i}", ">i4"), (f"v{i}", ">i8"))]
    )
    parts: list[np.ndarray] = []
    pending = bytearray()
    header = True  # until the header (and its extension area, if any) is consumed

    def parse(final: bool) -> None:
        whole = len(pending) // record.itemsize * record.itemsize
        if final:
            whole = (len(pending) - 2) // record.itemsize * record.itemsize  # trailer: -1
        if whole <= 0:
            return
        rows = np.frombuffer(bytes(pending[:whole]), dtype=record)
        if rows.size and (
            np.any(rows["count"] != width) or any(np.any(rows[f"l{i}"] != 8) for i in range(width))
        ):
            raise ValueError("unexpected NULL or width in the interactions COPY")
        parts.append(np.stack([rows[f"v{i}"] for i in range(width)], axis=1).astype(np.float64))
        del pending[:whole]

    names = ", ".join(f"c{i}" for i in range(width))
    columns = ", ".join(f"CAST(c{i} AS BIGINT)" for i in range(width))
    query = f"COPY (SELECT {columns} FROM ({sql}) AS q ({names})) TO STDOUT (FORMAT binary)"  # noqa: S608
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(query, params) as copy:
            for block in copy:
                pending += block
                if header:
                    if len(pending) < _COPY_HEADER:
                        continue
                    if bytes(pending[:11]) != b"PGCOPY\n\xff\r\n\x00":
                        raise ValueError("not a binary COPY stream")
                    extension = int.from_bytes(pending[15:19], "big")
                    if len(pending) < _COPY_HEADER + extension:
                        continue
                    del pending[: _COPY_HEADER + extension]
                    header = False
                if len(pending) >= _COPY_CHUNK:
                    parse(final=False)
    parse(final=True)
    if not parts:
        return np.zeros((0, width), np.float64)
    return np.concatenate(parts)


def read_interactions(
    *, until: datetime, purchase_weight: float = 1.0, view_weight: float = 0.25
) -> Interactions:
    """Purchase lines of orders placed before `until` (not cancelled or wholly refunded;
    weight `purchase_weight` x quantity) and product views before `until` (weight
    `view_weight` each) of known customers and products."""
    order, line = Order._meta.db_table, OrderLine._meta.db_table
    purchases = _fetch(
        f"SELECT o.customer_id, l.product_id, l.quantity, {_epoch('o.placed_at')} "  # noqa: S608
        f"FROM {line} l JOIN {order} o ON o.id = l.order_id "
        "WHERE l.product_id IS NOT NULL AND o.placed_at < %s AND o.status NOT IN (%s, %s)",
        [until, OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value],
        4,
    )
    event, product = Event._meta.db_table, Product._meta.db_table
    views = np.zeros((0, 3), np.float64)
    if view_weight > 0:
        views = _fetch(
            f"SELECT e.customer_id, p.id, {_epoch('e.occurred_at')} "  # noqa: S608
            f"FROM {event} e JOIN {product} p ON p.sku = {_sku_of('e.properties')} "
            "WHERE e.type = %s AND e.customer_id IS NOT NULL AND e.occurred_at < %s",
            [VIEW_EVENT, until],
            3,
        )
    n_p, n_v = len(purchases), len(views)
    return Interactions(
        customers=np.concatenate([purchases[:, 0], views[:, 0]]).astype(np.int64),
        products=np.concatenate([purchases[:, 1], views[:, 1]]).astype(np.int64),
        weights=np.concatenate(
            [purchases[:, 2] * purchase_weight, np.full(n_v, view_weight)]
        ).astype(np.float32),
        times=np.concatenate([purchases[:, 3], views[:, 2]]).astype(np.int64),
        purchase=np.concatenate([np.ones(n_p, bool), np.zeros(n_v, bool)]),
    )


def product_ids() -> np.ndarray:
    """Every product of the catalogue (inactive ones too: they are blocked when serving)."""
    return np.asarray(list(Product.objects.values_list("pk", flat=True)), dtype=np.int64)


GROUP_FIELD = "prefecture"


def groups(customer_ids: np.ndarray) -> np.ndarray:
    """The group label of each customer (their prefecture; "" when unknown)."""
    labels = dict(Customer.objects.exclude(**{GROUP_FIELD: ""}).values_list("pk", GROUP_FIELD))
    return np.asarray([labels.get(int(c), "") for c in customer_ids.tolist()], dtype=str)


def group_of(customer: Customer) -> str:
    return str(getattr(customer, GROUP_FIELD, "") or "")
