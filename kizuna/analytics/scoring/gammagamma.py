"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV:
Using Iso-Value Curves for Customer Base Analysis", JMR 42(4); Fader & Hardie 2013, "The
Gamma-Gamma Model of Monetary Value").

A customer's transactions are Gamma(p, ν) around their own mean, with ν ~ Gamma(q, γ)
across customers. Data per customer: x transactions averaging m_x (kizuna uses repeat
purchases, as the papers do). Fitted on customers with x > 0 and m_x > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, psi

from kizuna.analytics.scoring.fitting import (
    FitError,
    FitResult,
    FloatArray,
    as_float,
    compress,
    dot,
    maximise,
    timer,
)

MODEL = "gammagamma"
NAMES = ("p", "q", "gamma")


@dataclass(frozen=True)
class Params:
    p: float
    q: float
    gamma: float

    @classmethod
    def of(cls, params: Params | dict[str, float]) -> Params:
        return params if isinstance(params, Params) else cls(**{k: params[k] for k in NAMES})

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}


def log_likelihood(params: Params | dict[str, float], x: ArrayLike, m: ArrayLike) -> FloatArray:
    """Each customer's log-likelihood of their mean spend m over x transactions."""
    g = Params.of(params)
    x, m = as_float(x), as_float(m)
    px = g.p * x
    return (
        gammaln(px + g.q)
        - gammaln(px)
        - gammaln(g.q)
        + g.q * np.log(g.gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + g.q) * np.log(x * m + g.gamma)
    )


def _objective(x: FloatArray, m: FloatArray, w: FloatArray, total: float):
    ux, xi = np.unique(x, return_inverse=True)
    wx = np.bincount(xi, weights=w, minlength=len(ux))
    log_m = np.log(m)
    log_x = np.log(x)
    # sums over customers that do not depend on the parameters
    s_xlogm = float(dot(w, (x * log_m)))
    s_logm = float(dot(w, log_m))
    s_xlogx = float(dot(w, (x * log_x)))

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, gamma = np.exp(theta)
        pu = p * ux
        log_xm_g = np.log(x * m + gamma)
        ll = (
            float(dot(wx, (gammaln(pu + q) - gammaln(pu))))
            - total * gammaln(q)
            + total * q * np.log(gamma)
            + p * s_xlogm
            - s_logm
            + p * s_xlogx
            - float(dot(w, ((p * x + q) * log_xm_g)))
        )
        d_p = (
            float(dot(wx, ux * (psi(pu + q) - psi(pu))))
            + s_xlogm
            + s_xlogx
            - float(dot(w, (x * log_xm_g)))
        )
        d_q = float(dot(wx, psi(pu + q))) - total * psi(q) + total * np.log(gamma)
        d_q -= float(dot(w, log_xm_g))
        d_gamma = total * q / gamma - float(dot(w, ((p * x + q) / (x * m + gamma))))
        grad = np.array([d_p * p, d_q * q, d_gamma * gamma])
        return -ll / total, -grad / total

    return f


def fit(x: ArrayLike, m: ArrayLike, *, start: dict[str, float] | None = None) -> FitResult:
    """Maximum-likelihood estimates of (p, q, γ) from customers with x > 0 and m > 0
    (others are left out of the fit: they carry no information about spend)."""
    elapsed = timer()
    x, m = as_float(x), as_float(m)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) < 2:
        raise FitError("need at least two customers with repeat purchases of positive value")
    scale = float(m.mean())
    rows = compress(x, m / scale)
    cx, cm = rows.columns
    objective = _objective(cx, cm, rows.weight, rows.total)
    first = start or {"p": 1.0, "q": 2.0, "gamma": scale}
    theta0 = np.log([first["p"], first["q"], first["gamma"] / scale])
    params, mean_ll, nit, nfev, ok, message, gnorm = maximise(neg_mean_ll=objective, start=theta0)
    p, q, gamma_s = params
    if ok and q <= 1:
        ok = False
        message = "q <= 1: the fitted spend distribution has no finite mean"
    return FitResult(
        model=MODEL,
        params={"p": float(p), "q": float(q), "gamma": float(gamma_s * scale)},
        # money rescaled by `scale`: log L shifts by -n log(scale)
        log_likelihood=float(mean_ll * rows.total - rows.total * np.log(scale)),
        customers=len(x),
        iterations=nit,
        evaluations=nfev,
        converged=ok,
        message=message,
        seconds=elapsed(),
        gradient_norm=gnorm,
    )


def expected_average_value(
    params: Params | dict[str, float], x: ArrayLike, m: ArrayLike
) -> FloatArray:
    """E[M | x, m_x] = (pγ + p x m_x)/(p x + q - 1): a weighted mean of the population mean
    pγ/(q-1) and the customer's own mean; for x = 0 it is the population mean."""
    g = Params.of(params)
    x, m = as_float(x), as_float(m)
    return (g.p * g.gamma + g.p * x * m) / (g.p * x + g.q - 1)


def population_mean(params: Params | dict[str, float]) -> float:
    g = Params.of(params)
    return g.p * g.gamma / (g.q - 1)


__all__ = [
    "MODEL",
    "NAMES",
    "FitError",
    "Params",
    "expected_average_value",
    "fit",
    "log_likelihood",
    "population_mean",
]
