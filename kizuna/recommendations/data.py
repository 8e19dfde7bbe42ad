"""Reading the training data: purchase lines and product views as interaction arrays
(raw SQL, one pass each), the catalogue's product ids, and each customer's group label."""

from __future__ import annotations

from collections.abc import Iterable
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
        # (date_part is double precision, cheaper than EXTRACT's numeric; exact to the µs)
        return f"CAST(FLOOR(date_part('epoch', {column})) AS BIGINT)"
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


def _skip_copy_header(pending: bytearray) -> bool:
    """Drop a binary COPY stream's header (and its extension area) from the front of
    `pending` once it has all arrived; False while it has not."""
    if len(pending) < _COPY_HEADER:
        return False
    if bytes(pending[:11]) != b"PGCOPY\n\xff\r\n\x00":
        raise ValueError("not a binary COPY stream")
    extension = int.from_bytes(pending[15:19], "big")
    if len(pending) < _COPY_HEADER + extension:
        return False
    del pending[: _COPY_HEADER + extension]
    return True


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
                    if not _skip_copy_header(pending):
                        continue
                    header = False
                if len(pending) >= _COPY_CHUNK:
                    parse(final=False)
    parse(final=True)
    if not parts:
        return np.zeros((0, width), np.float64)
    return np.concatenate(parts)


_ARRAY_BLOCK = 200_000  # ids per row of arrays in the PostgreSQL read


def _fetch_by_id(table: str, columns: list[str], where: str, params: list[Any]) -> np.ndarray:
    """The rows of `table` matching `where` (alias `t`) as an int64 array of `columns`
    (integer expressions, never NULL); PostgreSQL only. Each row of the answer is one
    block of _ARRAY_BLOCK ids as bigint arrays (`array_agg` over an id range of the primary
    key, in one binary COPY), parsed by NumPy: the client handles a few dozen messages
    instead of one per row (which cost ~1.2 us a row in Python at ten million rows), and
    PostgreSQL scans the table without a join."""
    width = len(columns)
    select = ", ".join(columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {table}")  # noqa: S608
        low, high = cursor.fetchone()
    if low is None:
        return np.zeros((0, width), np.int64)
    arrays = ", ".join(f"array_agg(CAST(c{i} AS BIGINT))" for i in range(width))
    names = ", ".join(f"c{i}" for i in range(width))
    query = (
        f"COPY (SELECT x.* FROM generate_series(%s::bigint, %s::bigint) AS g(b), "  # noqa: S608
        f"LATERAL (SELECT {arrays} FROM (SELECT {select} FROM {table} t WHERE {where} "
        f"AND t.id >= g.b * {_ARRAY_BLOCK} AND t.id < (g.b + 1) * {_ARRAY_BLOCK}) "
        f"AS q ({names})) AS x WHERE x IS NOT NULL) TO STDOUT (FORMAT binary)"
    )
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(query, [low // _ARRAY_BLOCK, high // _ARRAY_BLOCK, *params]) as copy,
    ):
        return _parse_array_copy(copy, width)


def _parse_array_copy(blocks: Iterable[bytes], width: int) -> np.ndarray:
    """The rows of a binary COPY stream (`blocks`, split anywhere) whose rows are each
    `width` bigint arrays of one length: one int64 row per array element."""
    parts: list[np.ndarray] = []
    pending = bytearray()
    header = True  # until the header (and its extension area, if any) is consumed
    for block in blocks:
        pending += block
        if header:
            if not _skip_copy_header(pending):
                continue
            header = False
        used = _array_rows(pending, width, parts)
        del pending[:used]
    if header or _array_rows(pending, width, parts) != len(pending):
        raise ValueError("incomplete binary COPY stream")
    if not parts:
        return np.zeros((0, width), np.int64)
    return np.concatenate(parts)


_INT8_ELEMENT = np.dtype([("length", ">i4"), ("value", ">i8")])
_INT8_OID = 20


def _array_rows(buffer: bytearray, width: int, out: list[np.ndarray]) -> int:
    """Parse the complete rows of `width` bigint arrays at the start of `buffer` (a binary
    COPY stream after its header) into `out` (one rows x width int64 array per row of
    arrays); the number of bytes consumed (all of them once the trailer is reached)."""
    view = memoryview(buffer)
    pos = 0
    while len(view) - pos >= 2:
        count = int.from_bytes(view[pos : pos + 2], "big", signed=True)
        if count == -1:  # the trailer
            return len(view)
        if count != width:
            raise ValueError("unexpected width in the interactions COPY")
        at, columns = pos + 2, []
        for _column in range(width):
            if len(view) - at < 4:
                return pos
            size = int.from_bytes(view[at : at + 4], "big", signed=True)
            at += 4
            if size < 20:  # NULL (-1) or an array without elements
                raise ValueError("unexpected NULL or empty array in the interactions COPY")
            if len(view) - at < size:
                return pos
            ndim, nulls, oid, length, _lower = np.frombuffer(view, ">i4", 5, at)
            if ndim != 1 or nulls != 0 or oid != _INT8_OID or size != 20 + 12 * length:
                raise ValueError("unexpected array in the interactions COPY")
            elements = np.frombuffer(view, _INT8_ELEMENT, int(length), at + 20)
            if np.any(elements["length"] != 8):
                raise ValueError("unexpected element in the interactions COPY")
            columns.append(elements["value"].astype(np.int64))
            at += size
        out.append(np.stack(columns, axis=1))
        pos = at
    return pos


def _join_orders(orders: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each line (order id, ...) whose order is among `orders` (id, customer, epoch):
    the mask of those lines and, for each of them, its order's row."""
    if len(orders) > 1 and not np.all(orders[1:, 0] > orders[:-1, 0]):
        orders = orders[np.argsort(orders[:, 0], kind="stable")]
    at = np.searchsorted(orders[:, 0], lines[:, 0])
    at = np.minimum(at, max(len(orders) - 1, 0))
    known = (orders[at, 0] == lines[:, 0]) if len(orders) else np.zeros(len(lines), bool)
    return known, orders[at[known]]


def read_interactions(
    *, until: datetime, purchase_weight: float = 1.0, view_weight: float = 0.25
) -> Interactions:
    """Purchase lines of orders placed before `until` (not cancelled or wholly refunded;
    weight `purchase_weight` x quantity) and product views before `until` (weight
    `view_weight` each) of known customers and products. On PostgreSQL the order lines
    are joined to their orders here (by order id, in NumPy), both tables read by id
    without a join in the database; elsewhere the database joins them."""
    order, line = Order._meta.db_table, OrderLine._meta.db_table
    if connection.vendor != "postgresql":  # the cursor: fewer rows with the join in SQL
        joined = _fetch(
            f"SELECT o.customer_id, l.product_id, l.quantity, {_epoch('o.placed_at')} "  # noqa: S608
            f"FROM {line} l JOIN {order} o ON o.id = l.order_id "
            "WHERE l.product_id IS NOT NULL AND o.placed_at < %s AND o.status NOT IN (%s, %s)",
            [until, OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value],
            4,
        ).astype(np.int64)
        customers, products = joined[:, 0], joined[:, 1]
        quantities, times = joined[:, 2], joined[:, 3]
    else:
        customers, products, quantities, times = _purchases_by_id(until)
    return _with_views(customers, products, quantities, times, until, purchase_weight, view_weight)


def _purchases_by_id(until: datetime) -> tuple[np.ndarray, ...]:
    """PostgreSQL: the orders and the order lines read by id (no join in the database),
    joined here by order id: customer, product, quantity and epoch of each line."""
    orders = _fetch_by_id(
        Order._meta.db_table,
        ["t.id", "t.customer_id", _epoch("t.placed_at")],
        "t.placed_at < %s AND t.status NOT IN (%s, %s)",
        [until, OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value],
    )
    lines = _fetch_by_id(
        OrderLine._meta.db_table,
        ["t.order_id", "t.product_id", "t.quantity"],
        "t.product_id IS NOT NULL",
        [],
    )
    known, placed = _join_orders(orders, lines)
    lines = lines[known]
    return placed[:, 1], lines[:, 1], lines[:, 2], placed[:, 2]


def _with_views(
    customers: np.ndarray,
    products: np.ndarray,
    quantities: np.ndarray,
    times: np.ndarray,
    until: datetime,
    purchase_weight: float,
    view_weight: float,
) -> Interactions:
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
    n_p, n_v = len(customers), len(views)
    return Interactions(
        customers=np.concatenate([customers, views[:, 0].astype(np.int64)]),
        products=np.concatenate([products, views[:, 1].astype(np.int64)]),
        weights=np.concatenate(
            [quantities * np.float32(purchase_weight), np.full(n_v, view_weight, np.float32)]
        ).astype(np.float32),
        times=np.concatenate([times, views[:, 2].astype(np.int64)]),
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
