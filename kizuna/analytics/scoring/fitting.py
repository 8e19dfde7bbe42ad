"""Maximum-likelihood fitting shared by the models: L-BFGS-B on log-parameters with analytic
gradients, and the compression of identical customers into weighted rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

FloatArray = NDArray[np.float64]
# Parameters outside this range mean the optimiser ran off to a boundary: not a usable fit.
PARAM_RANGE = (1e-8, 1e8)
# Largest gradient of the mean log-likelihood (per customer) accepted at a converged fit.
GRADIENT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class FitResult:
    """A fitted model: its parameters and how the fit went."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    customers: int
    iterations: int
    evaluations: int
    converged: bool
    message: str
    seconds: float
    gradient_norm: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "params": self.params,
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "iterations": self.iterations,
            "evaluations": self.evaluations,
            "converged": self.converged,
            "message": self.message,
            "seconds": round(self.seconds, 4),
            "gradient_norm": self.gradient_norm,
        }


class FitError(ValueError):
    """The data cannot be fitted: too few customers to learn from (`kind` "too_small") or
    inconsistent summaries (`kind` "invalid")."""

    def __init__(self, message: str, kind: str = "too_small") -> None:
        super().__init__(message)
        self.kind = kind


# exp() of arguments below this is taken as 0: its true value (< 1e-26) is lost against 1 in
# double precision anyway, and subnormal results would slow every operation on them ~100x.
EXP_FLOOR = -60.0


def tiny_exp(values: FloatArray) -> FloatArray:
    """exp(values), with exp(v) = 0 for v < EXP_FLOOR (no subnormal numbers)."""
    return np.where(values > EXP_FLOOR, np.exp(np.maximum(values, EXP_FLOOR)), 0.0)


def logaddexp(a: FloatArray, b: FloatArray) -> FloatArray:
    """log(exp(a) + exp(b)) without overflow, underflow or subnormal intermediates."""
    high = np.maximum(a, b)
    with np.errstate(invalid="ignore"):
        gap = np.abs(a - b)
    gap = np.where(np.isnan(gap), np.inf, gap)  # -inf - -inf
    return np.where(np.isfinite(high), high + np.log1p(tiny_exp(-gap)), high)


def single_threaded_blas() -> threadpool_limits:
    """L-BFGS-B calls BLAS on vectors of four numbers; OpenBLAS's worker threads then stall
    for milliseconds per call whenever the other cores are busy (a 20x slower fit on a
    loaded machine). Fitting and scoring run with one BLAS thread."""
    return threadpool_limits(limits=1, user_api="blas")


def dot(a: NDArray[Any], b: NDArray[Any]) -> float:
    """Σ a·b without BLAS: OpenBLAS's threads stall for milliseconds per call when the other
    cores are busy, which made one fit 50x slower on a loaded machine."""
    return float(np.multiply(a, b).sum())


def as_float(values: ArrayLike) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64)


@dataclass(frozen=True)
class Rows:
    """Distinct customer rows with how many customers share each one (`weight`)."""

    columns: tuple[FloatArray, ...]
    weight: FloatArray

    @property
    def total(self) -> float:
        return float(self.weight.sum())


def compress(*columns: FloatArray) -> Rows:
    """Collapse identical rows (customers with the same x, t_x, T...) into one weighted row.

    With whole-day recency and age, a million customers have far fewer distinct rows; the
    likelihood is a weighted sum over those, which is what makes fitting fast."""
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for column in columns:
        distinct, inverse = np.unique(column, return_inverse=True)
        span *= max(len(distinct), 1)
        if span >= 2**62:  # cannot happen for (x, t_x, T) in days; stay exact regardless
            unique, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
            return Rows(
                columns=tuple(np.ascontiguousarray(unique[:, i]) for i in range(len(columns))),
                weight=counts.astype(np.float64),
            )
        key = key * len(distinct) + inverse
    _keys, first, counts = np.unique(key, return_index=True, return_counts=True)
    return Rows(
        columns=tuple(np.ascontiguousarray(column[first]) for column in columns),
        weight=counts.astype(np.float64),
    )


Objective = Callable[[FloatArray], tuple[float, FloatArray]]


def maximise(
    *,
    neg_mean_ll: Objective,
    start: FloatArray,
    max_iterations: int = 1000,
) -> tuple[FloatArray, float, int, int, bool, str, float]:
    """Minimise the negative mean log-likelihood over log-parameters.

    Returns (params, mean log-likelihood, iterations, evaluations, converged, message,
    gradient norm). Converged means: the optimiser stopped normally or at a point whose
    gradient is below GRADIENT_TOLERANCE, with finite parameters inside PARAM_RANGE."""
    with np.errstate(all="ignore"), single_threaded_blas():
        result = minimize(
            neg_mean_ll,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
        )
    params = np.exp(result.x)
    value = float(result.fun)
    gradient = np.asarray(result.jac, dtype=np.float64)
    gnorm = float(np.max(np.abs(gradient))) if gradient.size else 0.0
    finite = bool(np.all(np.isfinite(params)) and np.isfinite(value))
    in_range = bool(np.all((params > PARAM_RANGE[0]) & (params < PARAM_RANGE[1])))
    converged = finite and in_range and (bool(result.success) or gnorm < GRADIENT_TOLERANCE)
    message = str(result.message)
    if finite and not in_range:
        message = "a parameter ran off to the edge of its range: " + message
    return (
        params,
        -value,
        int(result.nit),
        int(result.nfev),
        converged,
        message,
        gnorm,
    )


def timer() -> Callable[[], float]:
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
