"""Quality pools with diminishing utility under repetition (Goyal et al., CVPR 2024, spec §6).

A pool of S samples is seen in epochs k = 0, 1, …; in epoch k the utility exponent is
b_k = b·0.5^(k/τ) (τ = half-life in epochs). Base law y = (a·n/1e5)^b + d (y = error).

`compose` chooses how epochs combine:
- "code" (default, as the reference implements it): y(n) = [(a·n_0/1e5)^b_0 + d]·Π_{k≥1}(n_k/n'_k)^b_k
  with n_k = min(S(k+1), n), n'_k = kS; the factors also scale d (kept for fidelity);
- "reducible": the same factors applied to (y − d) only;
- "effective": n_eff = Σ_k (n_k − n'_k)·0.5^(k/τ) and y = (a·n_eff/1e5)^b + d.

`best_pool` (FADU): sort pools by b (most negative first); for the union of the top k pools
(size k·S0) the epoch-k exponent is the mean over pools of b_i·0.5^(k/(k_union·τ_i)) with
`tau_scale="k"` (the reference multiplies τ by the union size), or b_i·0.5^(k/τ_i) with "none".
The union with the lowest predicted error at the budget wins.
"""

from __future__ import annotations


import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import minimize

from practicum.errors import DataError, FitError

COMPOSES = ("code", "reducible", "effective")
SAMPLE_UNIT = 1e5


def _compose(n, S: float, a: float, d: float, exponent: Callable[[int], float], compose: str) -> np.ndarray:
    """Error after n samples seen of a pool of size S whose epoch-k exponent is exponent(k)."""
    if compose not in COMPOSES:
        raise FitError(f"unknown compose {compose!r}", f"use one of {', '.join(COMPOSES)}")
    n = np.atleast_1d(np.asarray(n, dtype=float))
    epochs = int(math.ceil(float(n.max()) / S)) if n.size else 0
    if compose == "effective":
        n_eff = np.zeros_like(n)
        b0 = exponent(0)
        for k in range(max(epochs, 1)):
            n_k = np.minimum(S * (k + 1), n)
            seen = np.maximum(n_k - k * S, 0.0)
            n_eff = n_eff + seen * (exponent(k) / b0 if b0 != 0 else 1.0)
        return (a * n_eff / SAMPLE_UNIT) ** b0 + d
    n0 = np.minimum(S, n)
    y = (a * n0 / SAMPLE_UNIT) ** exponent(0)
    factor = np.ones_like(n)
    for k in range(1, max(epochs, 1)):
        inside = n > k * S
        n_k = np.minimum(S * (k + 1), n)
        factor = factor * np.where(inside, (n_k / (k * S)) ** exponent(k), 1.0)
    if compose == "code":
        return (y + d) * factor
    return y * factor + d


def pool_error(n, *, a: float, b: float, tau: float, d: float, S: float, compose: str = "code") -> np.ndarray:
    """Predicted error of one pool (utility b < 0, half-life tau epochs, size S) after n samples seen.
    For the "effective" form the decay factor 0.5^(k/τ) weights the samples of epoch k."""
    if S <= 0 or tau <= 0:
        raise DataError("pool size and half-life must be positive", "check S and tau")
    return _compose(n, S, a, d, lambda k: b * 0.5 ** (k / tau), compose)


@dataclass
class PoolLaw:
    a: float
    b: float
    tau: float
    d: float
    S: float
    compose: str = "code"
    objective_: float = math.nan
    family_: str = "goyal"

    @property
    def params_(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "tau": self.tau, "d": self.d}

    def predict(self, n) -> np.ndarray:
        return pool_error(n, a=self.a, b=self.b, tau=self.tau, d=self.d, S=self.S, compose=self.compose)

    def to_dict(self) -> dict[str, Any]:
        return {"family": "goyal", "params": self.params_, "pool_size": self.S, "compose": self.compose,
                "objective": self.objective_}


def fit_pool(n, y, pool_size: float, *, d: float = 0.1, a_max: float | None = None, grid: int = 100,
             compose: str = "code", polish: bool = True) -> PoolLaw:
    """Fit (a, b, τ) of one pool with d fixed (spec §6): the full grid a ∈ linspace(1e-4, a_max, grid),
    b ∈ linspace(−0.005, −0.5, grid), τ ∈ linspace(1, 10, grid), evaluated vectorised (not the
    reference's shuffled 100k-point subset), objective Σ (ŷ − y)² in error space, then a
    Nelder–Mead polish from the best grid point."""
    n, y = np.asarray(n, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if n.shape != y.shape or n.size < 3:
        raise FitError("a pool fit needs at least 3 (samples seen, error) points", "measure more budgets")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(y)) and np.all(n > 0)):
        raise DataError("samples seen must be positive and errors finite", "fix the pool's curve")
    a_max = a_max if a_max is not None else 1.0
    a_grid = np.linspace(1e-4, a_max, grid)
    b_grid = np.linspace(-0.005, -0.5, grid)
    t_grid = np.linspace(1, 10, grid)
    best = (np.inf, None)
    # Vectorised over (a, b) for each τ: the epoch structure depends on τ only through b_k.
    A, B = np.meshgrid(a_grid, b_grid, indexing="ij")
    A, B = A.ravel()[:, None], B.ravel()[:, None]
    S = float(pool_size)
    epochs = int(math.ceil(n.max() / S))
    n_k = [np.minimum(S * (k + 1), n) for k in range(max(epochs, 1))]
    with np.errstate(all="ignore"):
        for tau in t_grid:
            if compose == "effective":
                n_eff = sum(np.maximum(n_k[k] - k * S, 0) * 0.5 ** (k / tau) for k in range(len(n_k)))
                pred = (A * n_eff[None, :] / SAMPLE_UNIT) ** B + d
            else:
                base = (A * np.minimum(S, n)[None, :] / SAMPLE_UNIT) ** B
                log_factor = np.zeros((1, n.size))
                for k in range(1, len(n_k)):
                    inside = n > k * S
                    log_factor = log_factor + np.where(inside, np.log(n_k[k] / (k * S)), 0.0)[None, :] \
                        * (0.5 ** (k / tau))
                factor = np.exp(B * log_factor)
                pred = (base + d) * factor if compose == "code" else base * factor + d
            sse = np.sum((pred - y[None, :]) ** 2, axis=1)
            i = int(np.nanargmin(sse))
            if sse[i] < best[0]:
                best = (float(sse[i]), (float(A[i, 0]), float(B[i, 0]), float(tau)))
    if best[1] is None:
        raise FitError("goyal: no finite fit on the grid", "check the errors lie above d")
    a, b, tau = best[1]
    sse = best[0]
    if polish:
        def objective(p):
            with np.errstate(all="ignore"):
                pred = pool_error(n, a=p[0], b=p[1], tau=p[2], d=d, S=S, compose=compose)
            val = float(np.sum((pred - y) ** 2))
            return val if np.isfinite(val) and p[0] > 0 and p[2] > 0 and p[1] < 0 else np.inf
        res = minimize(objective, [a, b, tau], method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 2000})
        if res.fun < sse:
            (a, b, tau), sse = res.x, float(res.fun)
    return PoolLaw(a=float(a), b=float(b), tau=float(tau), d=d, S=S, compose=compose, objective_=sse)


@dataclass
class PoolChoice:
    budget: float
    errors: list[float]  # predicted error of the union of the top k pools, k = 1..K
    order: list[int]  # pool indices from highest utility (most negative b) down
    best_k: int

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "errors": self.errors, "order": self.order, "best_k": self.best_k,
                "best_pools": self.order[: self.best_k]}


def union_error(n, bs: Sequence[float], taus: Sequence[float], *, S0: float, a: float, d: float,
                tau_scale: str = "k", compose: str = "code") -> np.ndarray:
    """Error of training on the union of the given pools (each of size S0) after n samples seen."""
    if tau_scale not in ("k", "none"):
        raise FitError(f"unknown tau_scale {tau_scale!r}", "use 'k' or 'none'")
    k_union = len(bs)
    scale = k_union if tau_scale == "k" else 1
    bs, taus = np.asarray(bs, dtype=float), np.asarray(taus, dtype=float)
    exponent = lambda epoch: float(np.mean(bs * 0.5 ** (epoch / (scale * taus))))  # noqa: E731
    return _compose(n, k_union * S0, a, d, exponent, compose)


def best_pool(bs: Sequence[float], taus: Sequence[float], budget: float, *, S0: float, a: float = 0.025,
              d: float = 0.1, tau_scale: str = "k", compose: str = "code") -> PoolChoice:
    """Which union of the top-k quality pools gives the lowest error at `budget` samples seen."""
    bs, taus = np.asarray(bs, dtype=float), np.asarray(taus, dtype=float)
    if bs.shape != taus.shape or bs.size == 0:
        raise DataError("give one utility b and one half-life tau per pool", "check the pools")
    order = [int(i) for i in np.argsort(bs, kind="stable")]  # most negative b first
    errors = [float(union_error(budget, bs[order[:k]], taus[order[:k]], S0=S0, a=a, d=d, tau_scale=tau_scale,
                                compose=compose)[0]) for k in range(1, bs.size + 1)]
    return PoolChoice(budget=float(budget), errors=errors, order=order, best_k=int(np.argmin(errors)) + 1)



