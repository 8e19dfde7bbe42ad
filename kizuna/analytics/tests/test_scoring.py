"""Pure scoring: RFM quintiles and segments, CLV, recovering known parameters from
simulated customers, the population scorer's refusals, monthly KPIs and cohorts."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.analytics.scoring import bgnbd, clv, gammagamma, kpis, rfm
from kizuna.analytics.scoring.population import Parameters, Purchases, score_population


def simulate_bgnbd(
    n: int, params: dict[str, float], *, horizon: float, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Customers of a BG/NBD world, each observed for T ~ U(0, horizon): (x, t_x, T, alive)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    T = rng.uniform(0, horizon, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                alive[i] = False
                break
    return x, t_x, T, alive


def test_quintiles_share_ties_and_follow_the_documented_formula() -> None:
    assert rfm.quintile_scores([1, 1, 1, 1, 1, 1, 2, 3, 4, 5]).tolist() == [1] * 6 + [4, 4, 5, 5]
    # recency: fewer days is better
    assert rfm.quintile_scores([10, 400, 30, 10], higher_is_better=False).tolist() == [3, 1, 2, 3]
    assert rfm.quintile_scores([]).tolist() == []
    assert rfm.quintile_scores([7]).tolist() == [1]


def test_segment_grid_is_the_documented_mapping() -> None:
    assert rfm.segments([5, 5, 4, 3, 2, 1, 1, 1, 3, 4], [5, 1, 1, 3, 5, 1, 2, 3, 1, 2]) == [
        "champions", "new", "promising", "need_attention", "cannot_lose_them", "lost",
        "hibernating", "at_risk", "about_to_sleep", "potential_loyalists",
    ]  # fmt: skip
    assert set(rfm.GRID[r][f] for r in range(5) for f in range(5)) == set(rfm.SEGMENTS)


def test_clv_discounts_monthly_increments() -> None:
    curve = np.array([[0.0, 0.0], [1.0, 2.0], [1.5, 4.0]])  # two months, two customers
    rate = clv.monthly_rate(0.12)
    expected = np.array(
        [1.0 / (1 + rate) + 0.5 / (1 + rate) ** 2, 2 / (1 + rate) + 2 / (1 + rate) ** 2]
    )
    assert clv.discounted_value(curve, [100, 10], 0.12) == pytest.approx(expected * [100, 10])
    assert clv.discounted_value(curve, [1, 1], 0.0) == pytest.approx([1.5, 4.0])
    with pytest.raises(ValueError):
        clv.monthly_rate(-1.5)


def test_bgnbd_recovers_simulated_parameters_and_p_alive_is_calibrated() -> None:
    truth = {"r": 0.6, "alpha": 20.0, "a": 0.9, "b": 4.0}
    x, t_x, T, alive = simulate_bgnbd(20_000, truth, horizon=700)
    fit = bgnbd.fit(x, t_x, T)
    assert fit.converged
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=0.12), name
    predicted = bgnbd.p_alive(fit.params, x, t_x, T)
    # among customers with a repeat purchase, the predicted share alive matches the truth
    repeat = x > 0
    assert predicted[repeat].mean() == pytest.approx(alive[repeat].mean(), abs=0.02)
    low = repeat & (predicted < 0.3)
    assert alive[low].mean() < 0.35


def _purchases(n: int, seed: int = 3) -> Purchases:
    truth = {"r": 0.6, "alpha": 20.0, "a": 0.9, "b": 4.0}
    x, t_x, T, _alive = simulate_bgnbd(n, truth, horizon=700, seed=seed)
    x, t_x, T = x.astype(int), np.floor(t_x).astype(int), np.ceil(T).astype(int)
    t_x = np.minimum(t_x, T)
    as_of = 20_000
    first = as_of - T
    rng = np.random.default_rng(seed)
    spend = rng.gamma(4, 500, n) * (x + 1)
    return Purchases(
        customer_id=np.arange(1, n + 1),
        orders=x + 1,
        purchase_days=x + 1,
        first_day=first,
        last_day=first + t_x,
        total=spend,
        first_value=spend / (x + 1),
        as_of_day=as_of,
    )


def test_population_scores_every_customer_consistently() -> None:
    data = _purchases(3000)
    outcome = score_population(data, Parameters())
    scores = outcome.scores
    assert scores is not None and outcome.reason == ""
    assert len(scores) == 3000
    assert np.all((scores.p_alive >= 0) & (scores.p_alive <= 1))
    assert np.all(scores.expected_horizon >= scores.expected_30d)
    assert np.all(scores.clv >= 0) and np.all(scores.expected_aov > 0)
    assert np.array_equal(scores.at_risk, (1 - scores.p_alive) >= 0.5)
    one_timers = scores.frequency == 0
    assert np.all(scores.p_alive[one_timers] == 1.0)  # BG/NBD: documented
    assert outcome.summary["segments"]["champions"] > 0
    assert sum(outcome.summary["segments"].values()) == 3000
    assert sum(outcome.summary["clv_histogram"]["counts"]) == 3000
    assert outcome.fits["repeat"]["converged"] and outcome.fits["spend"]["converged"]
    assert len(outcome.diagnostics["histogram"]["actual"]) == 8
    # expected AOV of a one-time buyer is the population mean of Gamma-Gamma
    mean = gammagamma.population_mean(outcome.fits["spend"]["params"])
    assert scores.expected_aov[one_timers][0] == pytest.approx(mean)


def test_population_too_small_is_refused_with_the_reason() -> None:
    outcome = score_population(_purchases(30), Parameters())
    assert outcome.scores is None
    assert outcome.reason == "too_small"
    assert "30 customers" in outcome.message


def test_paretonbd_can_score_the_population() -> None:
    outcome = score_population(_purchases(1500), Parameters(model="paretonbd"))
    assert outcome.scores is not None
    assert outcome.fits["repeat"]["model"] == "paretonbd"
    assert np.all(outcome.scores.p_alive[outcome.scores.frequency == 0] < 1)


def test_parameters_are_checked() -> None:
    assert set(Parameters(model="x", horizon_months=0, at_risk_threshold=1.0).check()) == {
        "model",
        "horizon_months",
        "at_risk_threshold",
    }


def _row(customer: int, month: int, first: int, last: int, days: int = 1, value: int = 1000):
    return [customer, month, days, days, value, first, last]


def test_monthly_kpis_follow_the_definitions() -> None:
    m0 = 2025 * 12  # 2025-01
    d = kpis.month_end_day
    jan1 = d(m0 - 1) + 1
    rows = np.array(
        [
            _row(1, m0, jan1 + 4, jan1 + 4),  # customer 1: January and March
            _row(1, m0 + 2, jan1 + 70, jan1 + 70, value=3000),
            _row(2, m0, jan1 + 9, jan1 + 20, days=2),  # customer 2: twice in January only
            _row(3, m0 + 1, jan1 + 40, jan1 + 40),  # customer 3: once in February
        ]
    )
    out = kpis.monthly_kpis(rows, first_month=m0, last_month=m0 + 5, as_of_day=d(m0 + 5))
    assert out["buyers"] == [2, 3, 3, 3, 3, 3]
    assert out["new_buyers"] == [2, 1, 0, 0, 0, 0]
    assert out["repeat_rate"] == pytest.approx([0.5, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    # active = bought in the 90 days up to the month's end
    assert out["active_customers"] == [2, 3, 3, 2, 1, 0]
    # customer 2 (last 21 Jan) lapses on 21 Apr; 3 (10 Feb) on 11 May; 1 (12 Mar) on 10 Jun
    assert out["churn_rate"][3] == pytest.approx(1 / 3)
    assert out["churn_rate"][4] == pytest.approx(1 / 2)
    assert out["churn_rate"][5] == pytest.approx(1.0)
    assert out["repeat_revenue"] == [0, 0, 3000, 0, 0, 0]
    assert out["aov"][0] == pytest.approx(2000 / 3)
    assert out["purchase_frequency"][0] == pytest.approx(1.5)


def test_cohort_matrix_counts_each_cohort_by_month_since_first_purchase() -> None:
    m0 = 2025 * 12
    rows = np.array(
        [
            _row(1, m0, 0, 0), _row(1, m0 + 2, 0, 0),
            _row(2, m0, 0, 0),
            _row(3, m0 + 1, 0, 0), _row(3, m0 + 2, 0, 0),
        ]
    )  # fmt: skip
    out = kpis.cohort_matrix(rows, first_month=m0, last_month=m0 + 2)
    assert out["cohorts"] == ["2025-01", "2025-02", "2025-03"]
    assert out["sizes"] == [2, 1, 0]
    assert out["retention"][0] == [1.0, 0.0, 0.5]
    assert out["retention"][1] == [1.0, 1.0, None]
    assert out["retention"][2] == [None, None, None]
