"""Reading the training data from the database rows (on PostgreSQL through a binary COPY
parsed by NumPy, on SQLite through the cursor): the same interactions as the ORM sees."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

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
