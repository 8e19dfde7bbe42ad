"""Scoring a whole customer base from its purchase summary: pure, no database.

The service reads the summary with SQL, calls `score_population`, and stores the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from kizuna.analytics.scoring import bgnbd, clv, diagnostics, gammagamma, paretonbd, rfm
from kizuna.analytics.scoring.fitting import (
    FitError,
    FitResult,
    FloatArray,
    single_threaded_blas,
    timer,
)
from kizuna.analytics.scoring.summary import IntArray

MODELS: dict[str, ModuleType] = {"bgnbd": bgnbd, "paretonbd": paretonbd}
ALGORITHM_VERSION = "1"


@dataclass(frozen=True)
class Parameters:
    model: str = "bgnbd"
    horizon_months: int = 12
    annual_discount_rate: float = 0.10
    at_risk_threshold: float = 0.5
    min_customers: int = 50
    min_repeat_customers: int = 20

    def check(self) -> dict[str, str]:
        """Problems keyed by parameter name (empty when all is well)."""
        errors = {}
        if self.model not in MODELS:
            errors["model"] = f"choose one of {', '.join(MODELS)}"
        if not 1 <= self.horizon_months <= 120:
            errors["horizon_months"] = "between 1 and 120 months"
        if not 0 <= self.annual_discount_rate <= 1:
            errors["annual_discount_rate"] = "between 0 and 1 (0.1 = 10% a year)"
        if not 0 < self.at_risk_threshold < 1:
            errors["at_risk_threshold"] = "strictly between 0 and 1"
        if self.min_customers < 10:
            errors["min_customers"] = "at least 10"
        if self.min_repeat_customers < 5:
            errors["min_repeat_customers"] = "at least 5"
        return errors

    @property
    def model_version(self) -> str:
        return f"rfm5+{self.model}+gg/{ALGORITHM_VERSION}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "horizon_months": self.horizon_months,
            "annual_discount_rate": self.annual_discount_rate,
            "at_risk_threshold": self.at_risk_threshold,
            "min_customers": self.min_customers,
            "min_repeat_customers": self.min_repeat_customers,
        }


@dataclass
class Purchases:
    """Per customer (one entry each, customers with at least one purchase): from SQL."""

    customer_id: IntArray
    orders: IntArray
    purchase_days: IntArray  # distinct days with a purchase (x + 1)
    first_day: IntArray  # days since 1970-01-01 in the business's time zone
    last_day: IntArray
    total: FloatArray  # net value of all purchases (minor units)
    first_value: FloatArray  # net value of the first purchase day
    as_of_day: int
    repeat_by_day: IntArray | None = None  # repeat purchase days per day since min first_day
    tracking_sample: np.ndarray | None = None  # customers counted in repeat_by_day (all if None)

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass
class Scores:
    customer_id: IntArray
    orders: IntArray
    frequency: IntArray
    recency_days: IntArray
    age_days: IntArray
    first_day: IntArray
    last_day: IntArray
    monetary: FloatArray
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segment: np.ndarray  # codes into rfm.SEGMENTS
    p_alive: FloatArray
    expected_30d: FloatArray
    expected_horizon: FloatArray
    expected_aov: FloatArray
    clv: FloatArray
    expected_gap: FloatArray
    days_overdue: IntArray
    at_risk: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass
class Outcome:
    """`scores` is None when the run must keep the previous scores; `reason` says why."""

    scores: Scores | None
    reason: str  # "", "too_small", "invalid", "not_converged"
    message: str
    fits: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def score_population(data: Purchases, parameters: Parameters) -> Outcome:
    with single_threaded_blas():
        return _score_population(data, parameters)


def _score_population(data: Purchases, parameters: Parameters) -> Outcome:
    timings: dict[str, float] = {}
    model = MODELS[parameters.model]
    x = (data.purchase_days - 1).astype(np.float64)
    T = (data.as_of_day - data.first_day).astype(np.float64)
    t_x = (data.last_day - data.first_day).astype(np.float64)
    recency = (data.as_of_day - data.last_day).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(x > 0, (data.total - data.first_value) / np.maximum(x, 1), 0.0)
    repeaters = int(np.count_nonzero(x > 0))
    spenders = int(np.count_nonzero((x > 0) & (m > 0)))
    base = {"customers": len(data), "repeat_customers": repeaters}
    if len(data) < parameters.min_customers or spenders < parameters.min_repeat_customers:
        return Outcome(
            None,
            "too_small",
            f"{len(data)} customers with purchases, {spenders} with repeat purchases of "
            f"positive value: at least {parameters.min_customers} and "
            f"{parameters.min_repeat_customers} are needed to fit the models",
            summary=base,
        )

    clock = timer()
    fits: dict[str, Any] = {}
    try:
        repeat_fit: FitResult = model.fit(x, t_x, T)
        fits["repeat"] = repeat_fit.as_dict()
        spend_fit: FitResult = gammagamma.fit(x, m)
        fits["spend"] = spend_fit.as_dict()
    except FitError as exc:
        return Outcome(None, exc.kind, str(exc), fits=fits, summary=base)
    timings["fit"] = clock()
    for name, result in (("repeat", repeat_fit), ("spend", spend_fit)):
        if not result.converged:
            return Outcome(
                None,
                "not_converged",
                f"the {result.model} fit did not converge: {result.message}",
                fits=fits,
                summary=base,
                timings=timings,
            )
        del name

    clock = timer()
    params = repeat_fit.params
    months = clv.month_times(parameters.horizon_months)
    curve = model.purchase_curve(params, np.append(months, 30.0), x, t_x, T)
    expected_30d = curve[-1]
    curve = curve[:-1]
    alive = model.p_alive(params, x, t_x, T)
    aov = gammagamma.expected_average_value(spend_fit.params, x, m)
    value = clv.discounted_value(curve, aov, parameters.annual_discount_rate)
    gap = model.expected_gap(params, x, T)
    overdue = np.maximum(recency - gap, 0.0).round().astype(np.int64)
    at_risk = (1.0 - alive) >= parameters.at_risk_threshold
    timings["predict"] = clock()

    clock = timer()
    r, f, mm = rfm.score(recency, data.orders, data.total)
    codes = rfm.segment_codes(r, f)
    timings["rfm"] = clock()

    clock = timer()
    diag: dict[str, Any] = {"histogram": diagnostics.repeat_histogram(model, params, x, T)}
    if data.repeat_by_day is not None and len(data):
        start = int(data.first_day.min())
        sampled = data.tracking_sample
        first_days = data.first_day if sampled is None else data.first_day[sampled]
        diag["tracking"] = diagnostics.tracking(
            model,
            params,
            first_days,
            data.repeat_by_day,
            start_day=start,
            end_day=data.as_of_day,
        )
        diag["tracking"]["customers"] = len(first_days)
    timings["diagnostics"] = clock()

    scores = Scores(
        customer_id=data.customer_id,
        orders=data.orders,
        frequency=x.astype(np.int64),
        recency_days=recency,
        age_days=T.astype(np.int64),
        first_day=data.first_day,
        last_day=data.last_day,
        monetary=data.total,
        r=r,
        f=f,
        m=mm,
        segment=codes,
        p_alive=alive,
        expected_30d=expected_30d,
        expected_horizon=curve[-1],
        expected_aov=aov,
        clv=value,
        expected_gap=gap,
        days_overdue=overdue,
        at_risk=at_risk,
    )
    # CLV histogram for the console: 30 equal bins up to the 99th percentile, the last one
    # holding everyone above it.
    top = float(np.percentile(value, 99)) or float(value.max()) or 1.0
    edges = np.linspace(min(0.0, float(value.min())), top, 31)
    counts, _edges = np.histogram(np.minimum(value, top), bins=edges)
    summary = {
        **base,
        "clv_histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "at_risk": int(at_risk.sum()),
        "total_clv": float(value.sum()),
        "average_clv": float(value.mean()),
        "mean_p_alive": float(alive.mean()),
        "expected_purchases": float(curve[-1].sum()),
        "segments": {
            name: int(count)
            for name, count in zip(
                rfm.SEGMENTS, np.bincount(codes, minlength=len(rfm.SEGMENTS)), strict=True
            )
        },
    }
    return Outcome(scores, "", "", fits=fits, diagnostics=diag, summary=summary, timings=timings)
