"""The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), with the likelihood and the
expressions of Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related
Expressions".

While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); their lifetime is
exponential with rate μ ~ Gamma(s, β). Unlike BG/NBD, a customer who never bought again
can also have left.

The likelihood needs Gaussian hypergeometric functions 2F1(r+s+x, ·; r+s+x+1; z). They are
used after Euler's transformation, 2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z), which
here turns them into 2F1(1, ·; r+s+x+1; z): bounded series whose large powers are taken out
as logarithms, so customers with many purchases do not overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, hyp2f1

from kizuna.analytics.scoring.fitting import (
    FitError,
    FitResult,
    FloatArray,
    as_float,
    compress,
    dot,
    logaddexp,
    single_threaded_blas,
    timer,
    tiny_exp,
)

MODEL = "paretonbd"
NAMES = ("r", "alpha", "s", "beta")


@dataclass(frozen=True)
class Params:
    r: float
    alpha: float
    s: float
    beta: float

    @classmethod
    def of(cls, params: Params | dict[str, float]) -> Params:
        return params if isinstance(params, Params) else cls(**{k: params[k] for k in NAMES})

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "s": self.s, "beta": self.beta}


def _log_term(p: Params, x: FloatArray, t: FloatArray) -> FloatArray:
    """log of 2F1(r+s+x, b; r+s+x+1; z(t)) / (max(α,β)+t)^(r+s+x), the two pieces of A0."""
    c = p.r + p.s + x + 1
    if p.alpha >= p.beta:
        z = (p.alpha - p.beta) / (p.alpha + t)
        # = 2F1(1, r+x; c; z) / ((α+t)^(r+x) (β+t)^s)
        return (
            np.log(hyp2f1(1.0, p.r + x, c, z))
            - (p.r + x) * np.log(p.alpha + t)
            - p.s * np.log(p.beta + t)
        )
    z = (p.beta - p.alpha) / (p.beta + t)
    # = 2F1(1, s+1; c; z) / ((α+t)^(r+x-1) (β+t)^(s+1))
    return (
        np.log(hyp2f1(1.0, p.s + 1, c, z))
        - (p.r + x - 1) * np.log(p.alpha + t)
        - (p.s + 1) * np.log(p.beta + t)
    )


def _log_a0(p: Params, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """log A0 = log(term(t_x) - term(T)), -inf where t_x = T."""
    high = _log_term(p, x, t_x)
    low = _log_term(p, x, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = high + np.log1p(-tiny_exp(np.minimum(low - high, 0.0)))
    return np.where(t_x < T, value, -np.inf)


def log_likelihood(
    params: Params | dict[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Each customer's log-likelihood (Fader & Hardie 2005, eq. 22)."""
    p = Params.of(params)
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    head = gammaln(p.r + x) - gammaln(p.r) + p.r * np.log(p.alpha) + p.s * np.log(p.beta)
    still = -(p.r + x) * np.log(p.alpha + T) - p.s * np.log(p.beta + T)
    left = np.log(p.s) - np.log(p.r + p.s + x) + _log_a0(p, x, t_x, T)
    return head + logaddexp(still, left)


def fit(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, start: dict[str, float] | None = None
) -> FitResult:
    """Maximum-likelihood estimates of (r, α, s, β), by L-BFGS-B on log-parameters with a
    central-difference gradient (four parameters; identical customers weighted once)."""
    from scipy.optimize import minimize

    elapsed = timer()
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    if len(x) == 0 or not np.any(x > 0) or float(T.mean()) <= 0:
        raise FitError("need customers with repeat purchases and a positive age")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T):
        raise FitError("need x >= 0 and 0 <= t_x <= T", kind="invalid")
    scale = float(T.mean())
    rows = compress(x, t_x / scale, T / scale)
    cx, ct, cT = rows.columns
    weight, total = rows.weight, rows.total

    def value(theta: FloatArray) -> float:
        r, alpha, s, beta = np.exp(theta)
        with np.errstate(all="ignore"):
            ll = dot(weight, log_likelihood(Params(r, alpha, s, beta), cx, ct, cT))
        return -float(ll) / total if np.isfinite(ll) else 1e10

    def value_and_grad(theta: FloatArray) -> tuple[float, FloatArray]:
        f0 = value(theta)
        grad = np.empty(4)
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-6
            grad[i] = (value(theta + step) - value(theta - step)) / 2e-6
        return f0, grad

    first = start or {"r": 1.0, "alpha": scale, "s": 1.0, "beta": scale}
    theta0 = np.log([first["r"], first["alpha"] / scale, first["s"], first["beta"] / scale])
    with np.errstate(all="ignore"), single_threaded_blas():
        result = minimize(
            value_and_grad,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-9},
        )
    r, alpha_s, s, beta_s = np.exp(result.x)
    gnorm = float(np.max(np.abs(result.jac)))
    finite = bool(np.isfinite(result.fun) and np.all(np.isfinite(result.x)))
    converged = finite and (bool(result.success) or gnorm < 1e-5)
    ll = -float(result.fun) * total - float(x.sum()) * np.log(scale)
    return FitResult(
        model=MODEL,
        params={
            "r": float(r),
            "alpha": float(alpha_s * scale),
            "s": float(s),
            "beta": float(beta_s * scale),
        },
        log_likelihood=ll,
        customers=len(x),
        iterations=int(result.nit),
        evaluations=int(result.nfev),
        converged=converged,
        message=str(result.message),
        seconds=elapsed(),
        gradient_norm=gnorm,
    )


def p_alive(
    params: Params | dict[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0) (eq. 18)."""
    p = Params.of(params)
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(p.s)
            - np.log(p.r + p.s + x)
            + (p.r + x) * np.log(p.alpha + T)
            + p.s * np.log(p.beta + T)
            + _log_a0(p, x, t_x, T)
        )
    return 1.0 / (1.0 + tiny_exp(np.minimum(log_odds, 700.0)))


def purchase_curve(
    params: Params | dict[str, float],
    times: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Expected purchases in (T, T + t] for each t in `times` (eq. 20), shape (times, n)."""
    p = Params.of(params)
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    times = as_float(np.atleast_1d(times))
    alive = p_alive(p, x, t_x, T)
    rate = (p.r + x) * (p.beta + T) / ((p.alpha + T) * (p.s - 1))
    out = np.empty((len(times), len(x)))
    for i, t in enumerate(times):
        out[i] = alive * rate * (1.0 - np.power((p.beta + T) / (p.beta + T + t), p.s - 1))
    return out


def expected_purchases(
    params: Params | dict[str, float], t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    return purchase_curve(params, [t], x, t_x, T)[0]


def expected_purchases_new(params: Params | dict[str, float], t: ArrayLike) -> FloatArray:
    """E[X(t)] = rβ/(α(s-1)) (1 - (β/(β+t))^(s-1)) (eq. 17)."""
    p = Params.of(params)
    t = as_float(t)
    return p.r * p.beta / (p.alpha * (p.s - 1)) * (1.0 - np.power(p.beta / (p.beta + t), p.s - 1))


def expected_gap(params: Params | dict[str, float], x: ArrayLike, T: ArrayLike) -> FloatArray:
    """1/E[λ | x, T] = (α + T)/(r + x), as for BG/NBD (the same Poisson-gamma purchase part)."""
    p = Params.of(params)
    return (p.alpha + as_float(T)) / (p.r + as_float(x))


__all__ = [
    "MODEL",
    "NAMES",
    "FitError",
    "Params",
    "expected_gap",
    "expected_purchases",
    "expected_purchases_new",
    "fit",
    "log_likelihood",
    "p_alive",
    "purchase_curve",
]
