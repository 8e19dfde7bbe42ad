"""The pure engine: matrix building, each kind's training, ranking with exclusions and
diversity, the holdout split and the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.recommendations.engine import evaluation, training
from kizuna.recommendations.engine import matrix as mx
from kizuna.recommendations.engine import models as engine
from kizuna.recommendations.engine.ranking import rank

PARAMS = training.Params(
    factors=2, regularization=1.0, iterations=10, bpr_factors=8, bpr_iterations=60, threads=1
)


def rows(pairs, *, weights=None, times=None, purchase=None):
    c = np.array([p[0] for p in pairs], np.int64)
    p = np.array([p[1] for p in pairs], np.int64)
    n = len(pairs)
    return mx.Interactions(
        customers=c,
        products=p,
        weights=np.asarray(weights if weights is not None else np.ones(n), np.float32),
        times=np.asarray(times if times is not None else np.zeros(n), np.int64),
        purchase=np.asarray(purchase if purchase is not None else np.ones(n, bool)),
    )


def two_tastes(n_customers=200, seed=3):
    """Products 1-5 are liked by even customers, 6-10 by odd ones."""
    rng = np.random.default_rng(seed)
    pairs = []
    for c in range(1, n_customers + 1):
        liked = np.arange(1, 6) if c % 2 == 0 else np.arange(6, 11)
        for product in rng.choice(liked, size=3, replace=False):
            pairs.append((c, int(product)))
    return pairs


def test_matrix_sums_repeats_and_keeps_views_out_of_bought():
    m = mx.build(
        rows(
            [(10, 7), (10, 7), (11, 8), (11, 9)],
            weights=[1, 2, 1, 0.25],
            purchase=[True, True, True, False],
        ),
        product_ids=np.array([9, 8, 7, 6]),
    )
    assert m.customer_ids.tolist() == [10, 11]
    assert m.product_ids.tolist() == [6, 7, 8, 9]  # sorted; 6 has no interactions
    assert m.weights.toarray().tolist() == [[0, 3, 0, 0], [0, 0, 1, 0.25]]
    assert m.bought.toarray().tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]
    assert m.row_of(11) == 1 and m.row_of(12) is None and m.column_of(9) == 3


def test_matrix_drops_products_outside_the_catalogue():
    m = mx.build(rows([(1, 5), (1, 99)]), product_ids=np.array([5]))
    assert m.shape == (1, 1) and m.weights.nnz == 1


@pytest.mark.parametrize("kind", [engine.ALS, engine.BPR, engine.COOCCURRENCE])
def test_each_personal_kind_learns_the_two_tastes(kind):
    m = mx.build(rows(two_tastes()))
    model = engine.train(kind, m, PARAMS)
    hits = 0
    for customer in range(1, 41):
        row = m.row_of(customer)
        assert row is not None
        seen = model.bought_columns(row)
        blocked = np.zeros(m.shape[1], bool)
        blocked[seen] = True
        top = rank(model.scores(row), n=2, blocked=blocked)
        liked = set(range(0, 5)) if customer % 2 == 0 else set(range(5, 10))
        hits += sum(col in liked for col in top)
    assert hits >= 72  # of 80: nearly all recommendations are of the customer's taste


def test_copurchase_neighbours_are_bought_together_and_normalised():
    pairs = (
        [(c, 1) for c in range(10)] + [(c, 2) for c in range(8)] + [(c, 3) for c in range(8, 10)]
    )
    pairs += [(c, 4) for c in range(20, 40)]
    m = mx.build(rows(pairs))
    co = training.train_copurchase(m, training.Params(neighbours=3, min_support=2))
    one, four = m.column_of(1), m.column_of(4)
    assert one is not None and four is not None
    idx, val = co.related(one)
    assert [int(m.product_ids[i]) for i in idx] == [2, 3]  # 4 is never bought with 1
    assert val[0] == pytest.approx(8 / np.sqrt(10 * 8))
    assert val[1] == pytest.approx(2 / np.sqrt(10 * 2))
    assert co.related(four)[0].size == 0


def test_popularity_overall_and_by_group():
    pairs = [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (1, 1)]
    m = mx.build(rows(pairs))
    pop = training.train_popularity(m, np.array(["JP-13", "JP-13", "JP-13", "JP-27", "JP-27"]))
    assert pop.overall.tolist() == [3, 2]  # distinct buyers: the repeat of (1, 1) counts once
    assert pop.groups == ["JP-13", "JP-27"]
    assert np.argmax(pop.for_group("JP-27")) == 1
    assert np.argmax(pop.for_group("JP-01")) == 0  # unknown group: overall


def test_training_an_empty_matrix_gives_empty_models():
    m = mx.build(mx.Interactions.empty(), product_ids=np.array([1, 2]))
    for kind in engine.KINDS:
        model = engine.train(kind, m, PARAMS)
        assert model.scores(None).shape == (2,)


def test_rank_blocks_breaks_ties_and_caps_categories():
    scores = np.array([5, 4, 4, 3, 2, 1, np.nan], np.float32)
    blocked = np.array([True, False, False, False, False, False, False])
    assert rank(scores, n=3, blocked=blocked) == [1, 2, 3]
    categories = np.array([0, 0, 0, 0, 1, -1, 1])
    assert rank(scores, n=3, blocked=blocked, categories=categories, per_category=1) == [1, 4, 5]
    # the cap leaves the list short: the best of the rest fill it
    assert rank(scores, n=5, blocked=blocked, categories=categories, per_category=1) == [
        1,
        4,
        5,
        2,
        3,
    ]
    assert rank(scores, n=0) == [] and rank(np.zeros(0), n=3) == []
    assert rank(scores, n=3, blocked=np.ones(7, bool)) == []


def test_holdout_split_keeps_new_products_of_known_customers():
    inter = rows(
        [(1, 1), (1, 2), (1, 2), (1, 3), (2, 3), (3, 1)],
        times=[10, 20, 200, 210, 220, 5],
        purchase=[True, True, True, True, False, True],
    )
    m, holdout = evaluation.split(inter, 100, lambda r: mx.build(r, np.array([1, 2, 3])))
    assert m.customer_ids.tolist() == [1, 3]
    # customer 1 bought 2 again (not new) and 3 (new); 2's view is not a purchase
    assert holdout.rows.tolist() == [0] and holdout.truth == [{2}]


def test_metrics_precision_recall_map_coverage():
    recs = [[0, 1, 2], [3, 4, 5]]
    truth = [{0, 2}, {9}]
    out = evaluation.metrics(recs, truth, k=3, n_items=10)
    assert out["precision"] == pytest.approx((2 / 3 + 0) / 2, abs=1e-5)
    assert out["recall"] == pytest.approx((1 + 0) / 2)
    assert out["map"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2, abs=1e-5)
    assert out["coverage"] == pytest.approx(0.6)
    assert evaluation.metrics([], [], 3, 10)["map"] == 0.0


def test_a_model_survives_saving_and_loading(tmp_path):
    m = mx.build(rows(two_tastes(40)))
    groups = np.array(["a", "b"] * 20)
    for kind in engine.KINDS:
        model = engine.train(kind, m, PARAMS, groups)
        model.save(tmp_path / f"{kind}.npz")
        back = engine.Trained.load(tmp_path / f"{kind}.npz")
        assert back.kind == kind
        assert back.customer_ids.tolist() == m.customer_ids.tolist()
        assert (back.bought != m.bought).nnz == 0
        assert np.allclose(back.scores(3, "a"), model.scores(3, "a"))
    assert not list(tmp_path.glob("*.part"))


def test_params_are_checked():
    errors = training.Params(factors=-1, alpha=-1, threads=0).check()
    assert set(errors) == {"factors", "alpha", "threads"}


def test_als_factors_follow_the_catalogue_unless_set():
    assert training.als_factors(training.Params(), 41) == 5
    assert training.als_factors(training.Params(), 10) == 4
    assert training.als_factors(training.Params(), 10_000) == 32
    assert training.als_factors(training.Params(factors=7), 10_000) == 7


def test_bpr_iterations_follow_the_data_unless_set():
    # the demo (~250,000 pairs) keeps 40; a million customers (8 million pairs) get 5
    assert training.bpr_epochs(training.Params(), 200_000) == 40
    assert training.bpr_epochs(training.Params(), 2_000_000) == 20
    assert training.bpr_epochs(training.Params(), 8_000_000) == 5
    assert training.bpr_epochs(training.Params(), 100_000_000) == 5
    assert training.bpr_epochs(training.Params(bpr_iterations=3), 10_000_000) == 3


def test_als_iterations_follow_the_data_unless_set():
    assert training.als_iterations(training.Params(), 200_000) == 12
    assert training.als_iterations(training.Params(), 4_000_000) == 12
    assert training.als_iterations(training.Params(), 8_100_000) == 6
    assert training.als_iterations(training.Params(), 100_000_000) == 4
    assert training.als_iterations(training.Params(iterations=20), 8_100_000) == 20
    assert training.Params(iterations=0).check() == {}
    assert set(training.Params(iterations=-1, bpr_iterations=-1).check()) == {
        "iterations",
        "bpr_iterations",
    }


def test_als_trains_the_iterations_chosen_for_the_size(monkeypatch):
    from implicit.cpu.als import AlternatingLeastSquares

    seen = []
    fit = AlternatingLeastSquares.fit

    def spy(self, *args, **kwargs):
        seen.append(self.iterations)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(AlternatingLeastSquares, "fit", spy)
    m = mx.build(rows(two_tastes(40)))  # 120 pairs
    auto = training.Params(factors=2, threads=1)
    training.train_als(m, auto)
    monkeypatch.setattr(training, "ALS_BUDGET", 600)  # 600 // 120 = 5 iterations
    training.train_als(m, auto)
    training.train_als(m, PARAMS)
    assert seen == [12, 5, 10]


def test_matrix_from_sparse_ids_is_the_matrix_from_dense_ids(monkeypatch):
    # ids within a small range are ranked through a lookup table, spread ones by sorting
    rng = np.random.default_rng(4)
    n = 3_000
    customers = rng.integers(1, 500, n)
    products = rng.integers(1, 60, n)
    interactions = rows(
        list(zip(customers.tolist(), products.tolist(), strict=True)),
        weights=rng.integers(1, 4, n),
        purchase=rng.random(n) < 0.7,
    )
    catalogue = np.arange(5, 50, 2)  # some products unknown, some without interactions
    dense = mx.build(interactions, catalogue)
    monkeypatch.setattr(mx, "_dense", lambda span, count: False)
    spread = mx.build(interactions, catalogue)
    assert np.array_equal(dense.customer_ids, np.unique(customers))
    assert np.array_equal(dense.customer_ids, spread.customer_ids)
    assert np.array_equal(dense.product_ids, spread.product_ids)
    for a, b in ((dense.weights, spread.weights), (dense.bought, spread.bought)):
        assert a.has_canonical_format and b.has_canonical_format
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)
    expected = np.zeros(dense.shape, np.float32)
    for c, p, w in zip(customers, products, interactions.weights, strict=True):
        if p in catalogue:
            expected[np.searchsorted(dense.customer_ids, c), np.searchsorted(catalogue, p)] += w
    assert np.array_equal(dense.weights.toarray(), expected)
