"""The significance tests, without a database: hand-worked textbook values and SciPy."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from kizuna.campaigns.stats import (
    VariantCount,
    chi_square_test,
    choose_winner,
    two_proportion_z_test,
)


def test_z_test_matches_the_hand_worked_example() -> None:
    # 200/1000 against 250/1000: pooled p = 0.225, SE = sqrt(.225 * .775 * (2/1000)) = 0.018675,
    # z = 0.05 / 0.018675 = 2.6774, two-sided p = 0.00742; Wald 95% CI of the difference:
    # 0.05 +/- 1.95996 * sqrt(.2*.8/1000 + .25*.75/1000) = (0.01346, 0.08654).
    result = two_proportion_z_test(200, 1000, 250, 1000)
    assert result.rate_a == 0.2 and result.rate_b == 0.25
    assert result.difference == pytest.approx(0.05)
    assert result.z == pytest.approx(2.6774, abs=1e-4)
    assert result.p_value == pytest.approx(0.00742, abs=1e-5)
    assert result.ci_low == pytest.approx(0.01346, abs=1e-5)
    assert result.ci_high == pytest.approx(0.08654, abs=1e-5)
    assert result.significant


def test_z_squared_is_pearsons_chi_square_from_scipy() -> None:
    for a, n_a, b, n_b in [(31, 412, 48, 390), (5, 60, 9, 55), (1200, 10000, 1275, 10000)]:
        z = two_proportion_z_test(a, n_a, b, n_b)
        table = [[a, n_a - a], [b, n_b - b]]
        chi = sps.chi2_contingency(table, correction=False)
        assert z.z**2 == pytest.approx(chi.statistic, rel=1e-9)
        assert z.p_value == pytest.approx(chi.pvalue, rel=1e-9)


def test_no_difference_and_degenerate_groups() -> None:
    same = two_proportion_z_test(50, 500, 50, 500)
    assert same.z == 0 and same.p_value == pytest.approx(1.0) and not same.significant
    nobody = two_proportion_z_test(0, 100, 0, 100)
    assert nobody.z == 0 and nobody.p_value == 1.0
    empty = two_proportion_z_test(0, 0, 10, 100)
    assert empty.p_value == 1.0 and not empty.significant
    # A 90% interval is narrower than the 95% one.
    narrow = two_proportion_z_test(200, 1000, 250, 1000, confidence=0.90)
    assert narrow.ci_high - narrow.ci_low < 0.08654 - 0.01346


@pytest.mark.parametrize(
    "args", [(11, 10, 1, 10), (-1, 10, 1, 10), (1, 10, 1, -5)], ids=["more", "negative", "trials"]
)
def test_impossible_counts_are_refused(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        two_proportion_z_test(*args)


def test_chi_square_over_three_variants() -> None:
    # Expected successes 223.33 per row of 1000 (670/3000): the six (O-E)^2/E terms sum to
    # 7.3025; with 2 degrees of freedom the p-value is exp(-7.3025 / 2) = 0.02596.
    result = chi_square_test([(200, 1000), (250, 1000), (220, 1000)])
    assert result.dof == 2
    assert result.statistic == pytest.approx(7.3025, abs=1e-3)
    assert result.p_value == pytest.approx(math.exp(-result.statistic / 2), rel=1e-9)
    assert result.p_value == pytest.approx(0.02596, abs=1e-5)
    assert chi_square_test([(0, 10), (0, 10)]).p_value == 1.0
    with pytest.raises(ValueError):
        chi_square_test([(1, 10)])


def test_the_significant_leader_wins() -> None:
    decision = choose_winner([VariantCount("A", 200, 1000), VariantCount("B", 250, 1000)])
    assert decision.winner == "B" and decision.significant
    assert decision.leader == "B" and decision.runner_up == "A"
    data = decision.as_dict()
    assert data["p_value"] == pytest.approx(0.00742, abs=1e-5)
    assert data["ci_low"] == pytest.approx(0.01346, abs=1e-5)
    assert data["chi_square"] is None


def test_without_significance_the_control_is_kept() -> None:
    decision = choose_winner([VariantCount("A", 100, 1000), VariantCount("B", 110, 1000)])
    assert decision.leader == "B" and not decision.significant
    assert decision.winner == "A"
    tie = choose_winner([VariantCount("A", 10, 100), VariantCount("B", 10, 100)])
    assert tie.winner == "A" and tie.leader == "A" and not tie.significant


def test_multivariate_needs_the_omnibus_test_too() -> None:
    clear = choose_winner(
        [VariantCount("A", 200, 1000), VariantCount("B", 200, 1000), VariantCount("C", 290, 1000)]
    )
    assert clear.winner == "C" and clear.significant
    assert clear.omnibus is not None and clear.omnibus.p_value < 0.05
    # C leads B by a margin that is not significant: the control stays.
    close = choose_winner(
        [VariantCount("A", 200, 1000), VariantCount("B", 240, 1000), VariantCount("C", 245, 1000)]
    )
    assert close.leader == "C" and close.runner_up == "B" and close.winner == "A"
    assert not close.significant
    with pytest.raises(ValueError):
        choose_winner([VariantCount("A", 1, 10)])
