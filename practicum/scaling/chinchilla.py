"""Chinchilla's joint law L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, approach 3).

Two fitting methods (spec §4.2):
- `method="grid"`: log space, log L̂ = LSE(a − α log N, b − β log D, e), objective
  Σ Huber_δ(log L̂ − log L) with δ = 1e-3 (the **sum**, as Epoch showed the mean stops the
  optimiser early), L-BFGS-B with analytic gradients from every point of the grid
  α, β ∈ {0, .5, …, 2}, e ∈ {−1, −.5, …, 1}, a, b ∈ {0, 5, …, 25} (4,500 starts); `max_starts`
  runs only the best grid points by initial objective (for tests and quick looks).
- `method="varpro"`: variable projection (Open-Athena/vpnls): for fixed (α, β), (E, A, B) ≥ 0
  is a non-negative linear least-squares problem, so the fit is a 2-D search over the exponents
  (a dense grid, then Nelder–Mead).

`tie=True` fits α = β (the identifiability remedy when N and D span about one decade each).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.optimize import minimize, nnls
from scipy.special import logsumexp

from practicum.errors import DataError, FitError
from practicum.scaling._threads import blas_single
from practicum.scaling.curve import IdentifiabilityWarning

HUBER_DELTA = 1e-3
PARAMS = ("E", "A", "B", "alpha", "beta")


def huber(r, delta: float = HUBER_DELTA):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


def _huber_grad(r, delta: float = HUBER_DELTA):
    return np.clip(r, -delta, delta)


def _objective(q, logn, logd, logl, w, delta, tie):
    """Σ w·Huber(LSE(a − α log N, b − β log D, e) − log L) and its gradient in q."""
    a, b, e, alpha = q[:4]
    beta = alpha if tie else q[4]
    terms = np.stack([a - alpha * logn, b - beta * logd, np.full_like(logn, e)])
    top = terms.max(axis=0)
    ex = np.exp(terms - top)
    total = ex.sum(axis=0)
    lse = top + np.log(total)
    r = lse - logl
    soft = ex / total  # softmax weights: ∂LSE/∂term
    g = w * _huber_grad(r, delta)
    grad = [np.sum(g * soft[0]), np.sum(g * soft[1]), np.sum(g * soft[2]),
            np.sum(g * soft[0] * -logn) + (np.sum(g * soft[1] * -logd) if tie else 0.0)]
    if not tie:
        grad.append(np.sum(g * soft[1] * -logd))
    return float(np.sum(w * huber(r, delta))), np.array(grad)


def _check(N, D, L, weights):
    try:
        N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    except (TypeError, ValueError):
        raise DataError("N, D and L must be numbers", "remove non-numeric values") from None
    if not (N.shape == D.shape == L.shape):
        raise DataError("N, D and L must have the same length", "pass one (N, D, L) per run")
    if not all(np.all(np.isfinite(v)) for v in (N, D, L)):
        raise DataError("N, D or L has NaN or infinite values", "drop or fix those runs")
    if np.any(N <= 0) or np.any(D <= 0) or np.any(L <= 0):
        raise DataError("N, D and L must be positive", "check the runs' sizes and losses")
    if N.size < 5:
        raise FitError(f"the Chinchilla law has 5 parameters but only {N.size} runs were given",
                       "give at least 5 runs (better: dozens over several decades of N and D)")
    w = np.ones_like(L) if weights is None else np.asarray(weights, dtype=float).ravel()
    return N, D, L, w


@dataclass
class ChinchillaLaw:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective_: float = math.nan
    method: str = "grid"
    tie: bool = False
    n_points: int = 0
    warnings_: list = field(default_factory=list)
    _data: tuple | None = field(default=None, repr=False)
    family_: str = "chinchilla"

    @property
    def params_(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}

    def predict(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta

    def compute_optimal(self, C) -> tuple[np.ndarray, np.ndarray]:
        """(N_opt, D_opt) under C = 6·N·D: G = (αA/(βB))^(1/(α+β)), N_opt = G(C/6)^(β/(α+β)),
        D_opt = G^(−1)(C/6)^(α/(α+β))."""
        C = np.asarray(C, dtype=float)
        s = self.alpha + self.beta
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        return G * (C / 6.0) ** (self.beta / s), (C / 6.0) ** (self.alpha / s) / G

    def tokens_per_parameter(self, C) -> np.ndarray:
        n_opt, d_opt = self.compute_optimal(C)
        return d_opt / n_opt

    def invert(self, target: float, N: float) -> float:
        """Data D needed at model size N to reach loss `target`."""
        rest = target - self.E - self.A / float(N) ** self.alpha
        if rest <= 0:
            raise FitError(f"loss {target:g} is out of reach at N={N:g} (the floor there is {target - rest:.4g})",
                           "choose a larger N or a higher target")
        return float((self.B / rest) ** (1.0 / self.beta))

    @blas_single
    def bootstrap(self, n: int = 1000, seed: int = 0) -> "JointBootstrap":
        """Resample runs with replacement and refit from the point estimate (spec §4.2)."""
        if self._data is None:
            raise FitError("this law was not fitted here", "fit it with fit_chinchilla first")
        N, D, L, w, delta = self._data
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(n):
            idx = rng.integers(0, L.size, L.size)
            try:
                refit = _fit_grid(N[idx], D[idx], L[idx], w[idx], delta=delta, tie=self.tie,
                                  starts=[_to_q(self)])
                rows.append([refit.E, refit.A, refit.B, refit.alpha, refit.beta])
            except FitError:
                continue
        return JointBootstrap(self, np.array(rows).reshape(-1, 5), n)

    def to_dict(self) -> dict[str, Any]:
        return {"family": "chinchilla", "params": self.params_, "method": self.method, "tie": self.tie,
                "objective": self.objective_, "n_points": self.n_points, "warnings": list(self.warnings_)}


@dataclass
class JointBootstrap:
    law: ChinchillaLaw
    thetas: np.ndarray
    n_requested: int

    @property
    def n_ok(self) -> int:
        return int(self.thetas.shape[0])

    def laws(self) -> list[ChinchillaLaw]:
        return [ChinchillaLaw(*row, tie=self.law.tie) for row in self.thetas]

    def param_ci(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        q = [(1 - level) / 2, (1 + level) / 2]
        return {p: tuple(float(v) for v in np.quantile(self.thetas[:, i], q)) for i, p in enumerate(PARAMS)}

    def ci(self, fn: Callable[[ChinchillaLaw], float], level: float = 0.95) -> dict[str, Any]:
        vals = []
        for law in self.laws():
            try:
                vals.append(float(fn(law)))
            except FitError:
                vals.append(math.nan)
        vals = np.asarray(vals)
        ok = vals[np.isfinite(vals)]
        lo, hi = (np.quantile(ok, [(1 - level) / 2, (1 + level) / 2]) if ok.size else (math.nan, math.nan))
        return {"low": float(lo), "high": float(hi), "wide": bool(lo > 0 and hi / lo > 10),
                "undefined_fraction": float(1 - ok.size / max(vals.size, 1))}


def _to_q(law: ChinchillaLaw) -> np.ndarray:
    q = [math.log(law.A), math.log(law.B), math.log(law.E), law.alpha]
    return np.array(q if law.tie else q + [law.beta])


def start_grid(tie: bool = False) -> np.ndarray:
    """The spec's 4,500-point start grid (900 with α = β tied), as rows of (a, b, e, α[, β])."""
    exps = np.arange(0, 2.01, 0.5)
    es = np.arange(-1, 1.01, 0.5)
    ab = np.arange(0, 25.01, 5)
    if tie:
        return np.array([(a, b, e, al) for al in exps for e in es for a in ab for b in ab])
    return np.array([(a, b, e, al, be) for al in exps for be in exps for e in es for a in ab for b in ab])


def _fit_grid(N, D, L, w, *, delta, tie, starts=None, max_starts=None) -> ChinchillaLaw:
    logn, logd, logl = np.log(N), np.log(D), np.log(L)
    if starts is None:
        starts = start_grid(tie)
        if max_starts is not None and max_starts < len(starts):
            init = np.array([_objective(q, logn, logd, logl, w, delta, tie)[0] for q in starts])
            starts = starts[np.argsort(init, kind="stable")[:max_starts]]
    best = None
    for q0 in starts:
        res = minimize(_objective, q0, args=(logn, logd, logl, w, delta, tie), jac=True, method="L-BFGS-B",
                       options={"maxiter": 500, "gtol": 1e-10, "ftol": 1e-13})
        if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise FitError("chinchilla: no start converged", "check the runs span several N and D")
    a, b, e, alpha = best.x[:4]
    beta = alpha if tie else best.x[4]
    return ChinchillaLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=float(alpha), beta=float(beta),
                         objective_=float(best.fun), method="grid", tie=tie, n_points=int(L.size))


def _varpro_inner(alpha, beta, N, D, L, sw):
    design = np.column_stack([np.ones_like(N), N ** -alpha, D ** -beta]) * sw[:, None]
    coef, rnorm = nnls(design, L * sw)
    return coef, rnorm ** 2


def _fit_varpro(N, D, L, w, *, tie, grid_points: int = 40) -> ChinchillaLaw:
    sw = np.sqrt(w)
    exps = np.linspace(0.02, 2.0, grid_points)
    pairs = [(a, a) for a in exps] if tie else list(itertools.product(exps, exps))
    scored = [(_varpro_inner(a, b, N, D, L, sw)[1], a, b) for a, b in pairs]
    _, a0, b0 = min(scored)
    if tie:
        res = minimize(lambda p: _varpro_inner(p[0], p[0], N, D, L, sw)[1], [a0], method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-20, "maxiter": 2000})
        alpha = beta = float(res.x[0])
    else:
        res = minimize(lambda p: _varpro_inner(p[0], p[1], N, D, L, sw)[1], [a0, b0], method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-20, "maxiter": 4000})
        alpha, beta = (float(v) for v in res.x)
    (E, A, B), sse = _varpro_inner(alpha, beta, N, D, L, sw)
    if min(E, A, B) <= 0:
        raise FitError("varpro: a coefficient of the Chinchilla law came out zero (the data do not show all three "
                       "terms)", "use method='grid' or collect a wider range of N and D")
    return ChinchillaLaw(E=float(E), A=float(A), B=float(B), alpha=alpha, beta=beta, objective_=float(sse),
                         method="varpro", tie=tie, n_points=int(L.size))


def _correlation_alpha_beta(law: ChinchillaLaw, N, D, L) -> float:
    """Correlation of α and β from the Gauss–Newton covariance of the log residuals."""
    q = _to_q(law)
    logn, logd = np.log(N), np.log(D)

    def pred(qq):
        return logsumexp(np.stack([qq[0] - qq[3] * logn, qq[1] - qq[4] * logd, np.full_like(logn, qq[2])]), axis=0)

    cols = []
    for i in range(5):
        h = 1e-6 * max(abs(q[i]), 1.0)
        up, dn = q.copy(), q.copy()
        up[i] += h
        dn[i] -= h
        cols.append((pred(up) - pred(dn)) / (2 * h))
    jac = np.column_stack(cols)
    cov = np.linalg.pinv(jac.T @ jac)
    denom = math.sqrt(abs(cov[3, 3] * cov[4, 4]))
    return float(cov[3, 4] / denom) if denom > 0 else 1.0


@blas_single
def fit_chinchilla(N, D, L, *, method: str = "grid", delta: float = HUBER_DELTA, weights=None, tie: bool = False,
                   max_starts: int | None = None, warn: bool = True) -> ChinchillaLaw:
    """Fit L(N, D) = E + A/N^α + B/D^β. See the module docstring for the methods."""
    N, D, L, w = _check(N, D, L, weights)
    if method == "grid":
        law = _fit_grid(N, D, L, w, delta=delta, tie=tie, max_starts=max_starts)
    elif method == "varpro":
        law = _fit_varpro(N, D, L, w, tie=tie)
    else:
        raise FitError(f"unknown method {method!r}", "use 'grid' or 'varpro'")
    law._data = (N, D, L, w, delta)
    if not tie:
        corr = _correlation_alpha_beta(law, N, D, L)
        decades = min(np.log10(N.max() / N.min()), np.log10(D.max() / D.min()))
        if abs(corr) > 0.95 or decades < 1.5:
            msg = (f"chinchilla: alpha and beta are hard to separate (correlation {corr:+.3f}, "
                   f"{decades:.1f} decades of N/D); consider tie=True (alpha = beta) or a wider range")
            law.warnings_.append(msg)
            if warn:
                warnings.warn(msg, IdentifiabilityWarning, stacklevel=2)
    return law
