"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting Your Customers the
Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2)).

While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they
drop out with probability p ~ Beta(a, b). Data per customer: x repeat purchases, the time
t_x of the last one and the age T, both measured from the first purchase (in any one time
unit: kizuna uses days).

Everything here is vectorised over customers. Log-likelihoods are sums of `gammaln` /
`betaln` terms combined with `logaddexp`, so they stay finite for customers with hundreds
of purchases; the Gaussian hypergeometric function of the conditional expectation is used
in its Euler-transformed form, where the large powers cancel analytically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, gammaln, hyp2f1, psi

from kizuna.analytics.scoring.fitting import (
    FitError,
    FitResult,
    FloatArray,
    as_float,
    compress,
    dot,
    logaddexp,
    maximise,
    timer,
    tiny_exp,
)

MODEL = "bgnbd"
NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class Params:
    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def of(cls, params: Params | dict[str, float]) -> Params:
        return params if isinstance(params, Params) else cls(**{k: params[k] for k in NAMES})

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def _check(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (len(x) == len(t_x) == len(T)):
        raise FitError("x, t_x and T must have the same length", kind="invalid")
    if len(x) and (
        np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or np.any((x == 0) & (t_x != 0))
    ):
        raise FitError("need x >= 0, 0 <= t_x <= T, and t_x = 0 when x = 0", kind="invalid")


def _terms(
    p: Params, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(A1, A2, A3): log L = A1 + logaddexp(A2, A3); A3 = -inf where x = 0."""
    ux, xi = np.unique(x, return_inverse=True)  # few distinct x: special functions per value
    base = betaln(p.a, p.b)
    a1_u = gammaln(p.r + ux) - gammaln(p.r) + p.r * np.log(p.alpha)
    a2_u = betaln(p.a, p.b + ux) - base
    with np.errstate(invalid="ignore", divide="ignore"):
        a3_u = np.where(ux > 0, betaln(p.a + 1, p.b + np.maximum(ux, 1) - 1) - base, -np.inf)
    rx = p.r + x
    a2 = a2_u[xi] - rx * np.log(p.alpha + T)
    a3 = a3_u[xi] - rx * np.log(p.alpha + t_x)
    return a1_u[xi], a2, a3


def log_likelihood(params: Params | dict[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike):
    """Each customer's log-likelihood (FHL 2005, eq. 6)."""
    p = Params.of(params)
    a1, a2, a3 = _terms(p, as_float(x), as_float(t_x), as_float(T))
    return a1 + logaddexp(a2, a3)


def _objective(x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray, total: float):
    ux, xi = np.unique(x, return_inverse=True)
    wx = np.bincount(xi, weights=w, minlength=len(ux))  # customers per distinct x
    has = ux > 0
    ux1 = np.maximum(ux, 1)

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(theta)
        base = betaln(a, b)
        a2_u = betaln(a, b + ux) - base
        a3_u = np.where(has, betaln(a + 1, b + ux1 - 1) - base, -np.inf)
        rx = r + x
        l_T = np.log(alpha + T)
        l_t = np.log(alpha + t_x)
        a2 = a2_u[xi] - rx * l_T
        a3 = a3_u[xi] - rx * l_t
        lse = logaddexp(a2, a3)
        # posterior weight of "dropped out after the last purchase"
        w3 = tiny_exp(a3 - lse)
        w2 = 1.0 - w3
        # log L = A1 + lse; A1 depends on x only.
        a1_sum = float(dot(wx, (gammaln(r + ux) - gammaln(r)))) + total * r * np.log(alpha)
        ll = a1_sum + float(dot(w, lse))
        ww3 = w * w3
        d_r = float(dot(wx, (psi(r + ux) - psi(r)))) + total * np.log(alpha)
        d_r -= float(dot(w, (w2 * l_T)) + dot(ww3, l_t))
        d_alpha = total * r / alpha - float(dot(w, rx * (w2 / (alpha + T) + w3 / (alpha + t_x))))
        ab = float(dot(wx, (psi(a + b) - psi(a + b + ux))))
        w3_sum_by_x = np.bincount(xi, weights=ww3, minlength=len(ux))
        d_a = ab + float(w3_sum_by_x.sum()) / a
        d_b = ab + float(dot(wx, (psi(b + ux) - psi(b))))
        d_b -= float(dot(w3_sum_by_x[has], (1.0 / (b + ux[has] - 1))))
        grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll / total, -grad / total

    return f


def fit(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, start: dict[str, float] | None = None
) -> FitResult:
    """Maximum-likelihood estimates of (r, α, a, b).

    Times are rescaled by the mean age for the optimisation (α scales with the time unit,
    the other parameters do not), and identical customers are fitted as one weighted row."""
    elapsed = timer()
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    _check(x, t_x, T)
    if len(x) == 0 or not np.any(x > 0) or float(T.mean()) <= 0:
        raise FitError("need customers with repeat purchases and a positive age")
    scale = float(T.mean())
    rows = compress(x, t_x / scale, T / scale)
    cx, ct, cT = rows.columns
    objective = _objective(cx, ct, cT, rows.weight, rows.total)
    first = start or {"r": 1.0, "alpha": scale, "a": 1.0, "b": 1.0}
    theta0 = np.log([first["r"], first["alpha"] / scale, first["a"], first["b"]])
    params, mean_ll, nit, nfev, ok, message, gnorm = maximise(neg_mean_ll=objective, start=theta0)
    r, alpha_s, a, b = params
    # Back to the caller's time unit: log L shifts by -sum(x) log(scale).
    ll = mean_ll * rows.total - float(x.sum()) * np.log(scale)
    return FitResult(
        model=MODEL,
        params={"r": float(r), "alpha": float(alpha_s * scale), "a": float(a), "b": float(b)},
        log_likelihood=float(ll),
        customers=len(x),
        iterations=nit,
        evaluations=nfev,
        converged=ok,
        message=message,
        seconds=elapsed(),
        gradient_norm=gnorm,
    )


def p_alive(params: Params | dict[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike):
    """P(still alive at T | x, t_x, T) (FHL 2005, eq. 12); 1 for customers with x = 0."""
    p = Params.of(params)
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(p.a)
            - np.log(np.maximum(p.b + x - 1, 1e-300))
            + (p.r + x) * (np.log(p.alpha + T) - np.log(p.alpha + t_x))
        )
    log_odds = np.where(x > 0, log_odds, -np.inf)
    return 1.0 / (1.0 + tiny_exp(np.minimum(log_odds, 700.0)))


def _residual_bracket(p: Params, x: FloatArray, T: FloatArray, t: float) -> FloatArray:
    """1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z), z = t/(α+T+t), through Euler's
    transformation: (1-z)^(a-1) 2F1(a+b-r-1, a-1; a+b+x-1; z). The powers of r+x cancel."""
    z = t / (p.alpha + T + t)
    c = p.a + p.b + x - 1
    return 1.0 - np.power(1.0 - z, p.a - 1) * hyp2f1(p.a + p.b - p.r - 1, p.a - 1, c, z)


def purchase_curve(
    params: Params | dict[str, float],
    times: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Expected purchases in (T, T + t] for each t in `times` and each customer (FHL 2005,
    eq. 10): an array of shape (len(times), customers). The hypergeometric part depends on
    (x, T) only and is evaluated once per distinct pair."""
    p = Params.of(params)
    x, t_x, T = as_float(x), as_float(t_x), as_float(T)
    times = as_float(np.atleast_1d(times))
    alive = p_alive(p, x, t_x, T)
    pairs = np.column_stack([x, T])
    (ux, uT), inverse = _distinct_pairs(pairs)
    scale = (p.a + p.b + ux - 1) / (p.a - 1)
    out = np.empty((len(times), len(x)))
    for i, t in enumerate(times):
        if t <= 0:
            out[i] = 0.0
            continue
        per_pair = scale * _residual_bracket(p, ux, uT, float(t))
        out[i] = alive * per_pair[inverse]
    return out


def _distinct_pairs(pairs: FloatArray) -> tuple[tuple[FloatArray, FloatArray], np.ndarray]:
    _u0, i0 = np.unique(pairs[:, 0], return_inverse=True)
    u1, i1 = np.unique(pairs[:, 1], return_inverse=True)
    key = i0.astype(np.int64) * len(u1) + i1
    keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    del keys
    return (pairs[first, 0], pairs[first, 1]), inverse


def expected_purchases(
    params: Params | dict[str, float], t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[purchases in the next t | x, t_x, T] for each customer."""
    return purchase_curve(params, [t], x, t_x, T)[0]


def expected_purchases_new(params: Params | dict[str, float], t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases within t of a customer's first purchase (eq. 9)."""
    p = Params.of(params)
    t = as_float(t)
    z = t / (p.alpha + t)
    bracket = 1.0 - np.power(1.0 - z, p.a - 1) * hyp2f1(
        p.a + p.b - p.r - 1, p.a - 1, p.a + p.b - 1, z
    )
    return (p.a + p.b - 1) / (p.a - 1) * bracket


def pmf(params: Params | dict[str, float], t: ArrayLike, n: int) -> FloatArray:
    """P(X(t) = n): the chance of exactly n repeat purchases within t (FHL 2005, eq. 8)."""
    p = Params.of(params)
    t = as_float(t)
    base = betaln(p.a, p.b)
    log_q = np.log(p.alpha) - np.log(p.alpha + t)  # log(α/(α+t))
    with np.errstate(divide="ignore"):
        log_z = np.log(t) - np.log(p.alpha + t)  # log(t/(α+t))
    first = np.exp(
        betaln(p.a, p.b + n)
        - base
        + gammaln(p.r + n)
        - gammaln(p.r)
        - gammaln(n + 1)
        + p.r * log_q
        + (n * log_z if n else 0.0)
    )
    if n == 0:
        return first
    j = np.arange(n, dtype=np.float64)
    log_coef = gammaln(p.r + j) - gammaln(p.r) - gammaln(j + 1)
    partial = np.exp(p.r * log_q[..., None] + log_coef + j * np.where(t > 0, log_z, 0.0)[..., None])
    partial = np.where((t[..., None] > 0) | (j == 0), partial, 0.0).sum(axis=-1)
    second = np.exp(betaln(p.a + 1, p.b + n - 1) - base) * (1.0 - partial)
    return first + second


def expected_gap(params: Params | dict[str, float], x: ArrayLike, T: ArrayLike) -> FloatArray:
    """The expected time between purchases while alive, 1/E[λ | x, T] = (α + T)/(r + x):
    the reciprocal of the posterior mean purchase rate of the model's Poisson part."""
    p = Params.of(params)
    return (p.alpha + as_float(T)) / (p.r + as_float(x))
