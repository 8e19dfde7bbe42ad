"""Reading the training data from the database rows (on PostgreSQL through binary COPYs
of bigint arrays parsed by NumPy, on SQLite through the cursor; orders and lines joined in
NumPy): the same interactions as the ORM sees."""

from __future__ import annotations

import struct
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
import pytest

from kizuna.commerce.models import Order, OrderLine, OrderStatus
from kizuna.recommendations import data
from kizuna.recommendations.tests.conftest import AS_OF


def _expected(until: datetime) -> Counter[tuple[int, int, float, int]]:
    rows = (
        OrderLine.objects.filter(product__isnull=False, order__placed_at__lt=until)
        .exclude(order__status__in=[OrderStatus.CANCELLED, OrderStatus.REFUNDED])
        .values_list("order__customer_id", "product_id", "quantity", "order__placed_at")
    )
    return Counter((c, p, float(q), int(t.timestamp())) for c, p, q, t in rows)


def _read(until: datetime) -> Counter[tuple[int, int, float, int]]:
    got = data.read_interactions(until=until, view_weight=0)
    return Counter(
        zip(
            got.customers.tolist(),
            got.products.tolist(),
            got.weights.tolist(),
            got.times.tolist(),
            strict=True,
        )
    )


@pytest.mark.parametrize("chunk", [None, 13])
def test_the_interactions_read_are_the_order_lines_the_orm_sees(shop, monkeypatch, chunk):
    shop(n=24)
    if chunk is not None:  # PostgreSQL: records split across parse chunks
        monkeypatch.setattr(data, "_COPY_CHUNK", chunk)
    order = Order.objects.order_by("id")[0]
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    first = Order.objects.order_by("customer_id").values_list("customer_id", flat=True)[0]
    OrderLine.objects.filter(order__customer_id=first).update(quantity=3)
    until = AS_OF - timedelta(days=100)
    expected = _expected(until)
    assert sum(expected.values()) > 20
    assert any(q == 3.0 for _c, _p, q, _t in expected)  # the weight is the quantity
    assert _read(until) == expected  # the cancelled order's lines are left out of both


def test_nothing_to_read_is_an_empty_set(db):
    got = data.read_interactions(until=AS_OF)
    assert len(got) == 0
    assert got.customers.shape == (0,)


@pytest.mark.parametrize("block", [None, 4])
def test_orders_and_lines_read_in_id_blocks_give_the_join(shop, monkeypatch, block):
    # PostgreSQL reads each table as rows of arrays, one per block of ids: with blocks of 4
    # ids there are many rows, and the gap of deleted lines leaves blocks without any
    shop(n=24)
    if block is not None:
        monkeypatch.setattr(data, "_ARRAY_BLOCK", block)
    orders = list(Order.objects.order_by("id")[:2])
    Order.objects.filter(pk=orders[0].pk).update(status=OrderStatus.REFUNDED)
    Order.objects.filter(pk=orders[1].pk).update(status=OrderStatus.CANCELLED)
    line_ids = list(OrderLine.objects.order_by("id").values_list("id", flat=True))
    middle = len(line_ids) // 2
    OrderLine.objects.filter(pk__in=line_ids[middle : middle + 10]).delete()
    OrderLine.objects.filter(pk=line_ids[-1]).update(product=None)  # not a product any more
    until = AS_OF
    expected = _expected(until)
    assert sum(expected.values()) > 40
    assert _read(until) == expected


def _array_copy(rows: list[list[list[int]]]) -> bytes:
    out = bytearray(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
    for row in rows:
        out += struct.pack(">h", len(row))
        for values in row:
            body = struct.pack(">iiiii", 1, 0, 20, len(values), 1)
            body += b"".join(struct.pack(">iq", 8, v) for v in values)
            out += struct.pack(">i", len(body)) + body
    return bytes(out + struct.pack(">h", -1))


@pytest.mark.parametrize("piece", [1, 7, 1000])
def test_a_copy_of_arrays_is_parsed_however_it_is_split(piece):
    stream = _array_copy([[[1, 2, 3], [10, 20, 30]], [[4], [-(2**40)]], [[5, 6], [50, 60]]])
    blocks = [stream[i : i + piece] for i in range(0, len(stream), piece)]
    got = data._parse_array_copy(blocks, 2)
    assert got.tolist() == [[1, 10], [2, 20], [3, 30], [4, -(2**40)], [5, 50], [6, 60]]


def test_a_copy_of_arrays_cut_short_or_with_a_null_array_is_refused():
    stream = _array_copy([[[1, 2], [3, 4]]])
    with pytest.raises(ValueError, match="incomplete"):
        data._parse_array_copy([stream[:-5]], 2)
    null = stream[:19] + struct.pack(">hi", 2, -1) + stream[-2:]
    with pytest.raises(ValueError, match="NULL"):
        data._parse_array_copy([null], 2)
    assert data._parse_array_copy([_array_copy([])], 2).shape == (0, 2)
    assert np.array_equal(data._parse_array_copy([stream], 2), [[1, 3], [2, 4]])
