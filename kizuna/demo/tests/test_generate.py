"""The demo generator is pure: these tests need no database."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from kizuna.customers.choices import PREFECTURE_NAMES_EN
from kizuna.demo import business as biz
from kizuna.demo.generate import generate

UNTIL = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_same_seed_gives_the_same_business_and_another_seed_does_not() -> None:
    first = generate(customers=150, seed=7, until=UNTIL)
    again = generate(customers=150, seed=7, until=UNTIL)
    other = generate(customers=150, seed=8, until=UNTIL)
    assert first.digest() == again.digest()
    assert [c.data for c in first.customers] == [c.data for c in again.customers]
    assert first.digest() != other.digest()
    assert [c.data.get("email") for c in first.customers] != [
        c.data.get("email") for c in other.customers
    ]


def test_customers_look_like_a_japanese_coffee_chain() -> None:
    data = generate(customers=400, seed=1, until=UNTIL)
    locales = Counter(c.data["locale"] for c in data.customers)
    assert 0.75 < locales["ja"] / 400 < 0.95
    assert locales["en"] > 0
    kana = re.compile(r"^[\u30a0-\u30ff]+$")
    for customer in data.customers:
        d = customer.data
        assert d["prefecture"] in PREFECTURE_NAMES_EN
        if d["locale"] == "ja":
            assert d["family_name"] and kana.match(d["family_name_kana"])
            assert kana.match(d["given_name_kana"])
        else:
            assert "family_name_kana" not in d
        if "email" in d:
            assert d["email"].split("@")[1] in biz.EMAIL_DOMAINS  # never a real mailbox
        if customer.line_user_id:
            assert re.fullmatch(r"U[0-9a-f]{32}", customer.line_user_id)
    prefectures = Counter(c.data["prefecture"] for c in data.customers)
    assert prefectures.most_common(1)[0][0] == "JP-13"
    assert len({c.data["email"] for c in data.customers if "email" in c.data}) == sum(
        1 for c in data.customers if "email" in c.data
    )


def test_history_is_within_three_years_and_after_each_signup() -> None:
    data = generate(customers=300, seed=3, until=UNTIL)
    start = UNTIL - timedelta(days=365 * 3)
    signup = [c.created_at for c in data.customers]
    assert all(start <= at < UNTIL for at in signup)
    for order in data.orders:
        assert signup[order.customer] < order.placed_at < UNTIL
        assert 1 <= len(order.lines) <= 4
    for event in data.events:
        assert signup[event.customer] < event.at <= UNTIL
    orders = {o.number: o for o in data.orders}
    for refund in data.refunds:
        assert orders[refund.order_number].placed_at <= refund.at <= UNTIL
    numbers = [o.number for o in data.orders]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_purchase_behaviour_mixes_regulars_lapsed_and_one_time_buyers() -> None:
    data = generate(customers=600, seed=5, until=UNTIL)
    per_customer = Counter(o.customer for o in data.orders)
    counts = list(per_customer.values())
    assert sum(1 for n in counts if n == 1) > 0.05 * len(counts)  # one-time buyers
    assert sum(1 for n in counts if n >= 20) > 0.03 * len(counts)  # regulars
    assert len(per_customer) < 600  # some signed up and never bought
    assert 6 < len(data.orders) / 600 < 15
    prices = {m.sku: m.price for m in biz.MENU}
    totals = sorted(sum(prices[s] * q for s, q in o.lines) - o.discount for o in data.orders)
    median = totals[len(totals) // 2]
    assert 500 <= median <= 2500
    assert 0.005 < len(data.refunds) / len(data.orders) < 0.05


def test_customers_have_learnable_tastes() -> None:
    """What a customer buys in the last weeks is predicted from their earlier purchases by a
    model of tastes (ALS) clearly better than by popularity: the generator's flavour
    profiles (see its docstring) are real structure, not noise."""
    import numpy as np

    from kizuna.recommendations.engine.matrix import Interactions
    from kizuna.recommendations.engine.training import Params
    from kizuna.recommendations.services import evaluate_all

    data = generate(customers=3000, seed=2, until=UNTIL)
    column = {m.sku: i for i, m in enumerate(biz.MENU)}
    rows = [
        (o.customer, column[sku], qty, int(o.placed_at.timestamp()))
        for o in data.orders
        for sku, qty in o.lines
    ]
    c, p, w, t = (np.array(x) for x in zip(*rows, strict=True))
    interactions = Interactions(c, p, w.astype(np.float32), t, np.ones(len(c), bool))
    result = evaluate_all(
        interactions,
        products=np.arange(len(biz.MENU)),
        cutoff=UNTIL - timedelta(weeks=8),
        params=Params(threads=1),
        k=10,
    )
    kinds = result["kinds"]
    assert result["test_customers"] > 200
    assert kinds["als"]["map"] > 1.3 * kinds["popularity"]["map"]
