"""Significance tests for A/B and multivariate campaign tests. Pure functions over counts,
tested without a database against SciPy and textbook values.

Two variants: the two-proportion z-test (pooled standard error for the test statistic,
unpooled for the Wald confidence interval of the difference). More than two: Pearson's
chi-square test of independence on the (variant x success/failure) table, then the leader
against the runner-up with the z-test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class ProportionTest:
    """B against A: rates, their difference (B - A) with a confidence interval, z and the
    two-sided p-value."""

    successes_a: int
    trials_a: int
    successes_b: int
    trials_b: int
    rate_a: float
    rate_b: float
    difference: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.confidence


def _check(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"invalid counts: {successes} successes in {trials} trials")


def two_proportion_z_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, *, confidence: float = 0.95
) -> ProportionTest:
    """H0: both groups have the same rate. An empty group, or rates of exactly 0 or 1 in both
    groups, gives z = 0 and p = 1 (no evidence of a difference)."""
    _check(successes_a, trials_a)
    _check(successes_b, trials_b)
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    rate_a = successes_a / trials_a if trials_a else 0.0
    rate_b = successes_b / trials_b if trials_b else 0.0
    diff = rate_b - rate_a
    from scipy import stats as sps  # imported on use: ~1 s at every worker start otherwise

    z_crit = float(sps.norm.ppf(1 - (1 - confidence) / 2))
    if not trials_a or not trials_b:
        return ProportionTest(
            successes_a, trials_a, successes_b, trials_b, rate_a, rate_b, diff, 0.0, 1.0,
            -1.0, 1.0, confidence,
        )  # fmt: skip
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    z = diff / se_pooled if se_pooled > 0 else 0.0
    p_value = float(2 * sps.norm.sf(abs(z))) if se_pooled > 0 else 1.0
    se = math.sqrt(rate_a * (1 - rate_a) / trials_a + rate_b * (1 - rate_b) / trials_b)
    return ProportionTest(
        successes_a,
        trials_a,
        successes_b,
        trials_b,
        rate_a,
        rate_b,
        diff,
        z,
        p_value,
        diff - z_crit * se,
        diff + z_crit * se,
        confidence,
    )


@dataclass(frozen=True)
class ChiSquareTest:
    statistic: float
    p_value: float
    dof: int


def chi_square_test(groups: list[tuple[int, int]]) -> ChiSquareTest:
    """Pearson's chi-square (no continuity correction) on [(successes, trials), ...]. A table
    with an empty row or column (nobody, or nobody succeeded / everybody did) gives p = 1."""
    for successes, trials in groups:
        _check(successes, trials)
    if len(groups) < 2:
        raise ValueError("at least two groups are needed")
    table = [[s, t - s] for s, t in groups]
    if any(sum(row) == 0 for row in table) or any(
        sum(col) == 0 for col in zip(*table, strict=True)
    ):
        return ChiSquareTest(0.0, 1.0, len(groups) - 1)
    from scipy import stats as sps

    result = sps.chi2_contingency(table, correction=False)
    return ChiSquareTest(float(result.statistic), float(result.pvalue), int(result.dof))


@dataclass(frozen=True)
class VariantCount:
    key: str
    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


@dataclass(frozen=True)
class WinnerDecision:
    """The variant to send to the rest of the audience and why. `significant` False means the
    data did not single out a winner: the control (the first variant) is kept."""

    winner: str
    significant: bool
    leader: str
    runner_up: str
    comparison: ProportionTest
    omnibus: ChiSquareTest | None

    def as_dict(self) -> dict[str, object]:
        c = self.comparison
        return {
            "winner": self.winner,
            "significant": self.significant,
            "leader": self.leader,
            "runner_up": self.runner_up,
            "leader_rate": c.rate_b,
            "runner_up_rate": c.rate_a,
            "difference": c.difference,
            "z": c.z,
            "p_value": c.p_value,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "confidence": c.confidence,
            "chi_square": None
            if self.omnibus is None
            else {
                "statistic": self.omnibus.statistic,
                "p_value": self.omnibus.p_value,
                "dof": self.omnibus.dof,
            },
        }


def choose_winner(variants: list[VariantCount], *, alpha: float = DEFAULT_ALPHA) -> WinnerDecision:
    """The leader (highest rate; ties go to the earlier variant) wins when it beats the
    runner-up with p < alpha — and, with more than two variants, when the chi-square test over
    all of them also has p < alpha. Otherwise the control (first variant) is kept."""
    if len(variants) < 2:
        raise ValueError("a test needs at least two variants")
    order = sorted(range(len(variants)), key=lambda i: (-variants[i].rate, i))
    leader, runner = variants[order[0]], variants[order[1]]
    comparison = two_proportion_z_test(
        runner.successes, runner.trials, leader.successes, leader.trials, confidence=1 - alpha
    )
    omnibus = (
        chi_square_test([(v.successes, v.trials) for v in variants]) if len(variants) > 2 else None
    )
    significant = comparison.p_value < alpha and (omnibus is None or omnibus.p_value < alpha)
    return WinnerDecision(
        winner=leader.key if significant else variants[0].key,
        significant=significant,
        leader=leader.key,
        runner_up=runner.key,
        comparison=comparison,
        omnibus=omnibus,
    )
