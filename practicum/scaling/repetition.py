"""Repeated data: Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (spec §5).

Effective data D' = U_D + U_D·R_D*·(1 − exp(−R_D/R_D*)), R_D = max(D/U_D − 1, 0) (repetitions =
epochs − 1); effective parameters N' likewise with U_N = min(N, N_opt(U_D)), where
N_opt(U_D) = G·(G·U_D)^(β/α) is the compute-optimal size for which U_D is the optimal token
count. The law: L(N, D, U_D) = E + A/N'^α + B/D'^β. The constants are the C4 fit (α = β tied);
for another domain refit R_D* (pitfall 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from practicum.errors import DataError, FitError
from practicum.scaling._threads import blas_single
from practicum.scaling.chinchilla import HUBER_DELTA, fit_chinchilla, huber

# C4 constants of the reference notebook (huggingface/datablations, Apache-2.0)
C4_LOG_A, C4_LOG_B, C4_LOG_E, C4_ALPHA, C4_BETA = 6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596
R_D_STAR = 15.387756
R_N_STAR = 5.309743


def effective_data(D, U, r_star: float = R_D_STAR):
    """D' for D tokens seen drawn from U unique ones (D ≥ U means D/U epochs)."""
    D, U = np.asarray(D, dtype=float), np.asarray(U, dtype=float)
    if np.any(U <= 0) or np.any(D <= 0):
        raise DataError("D and U must be positive", "pass token counts > 0")
    repeats = np.maximum(D / U - 1.0, 0.0)
    return np.minimum(D, U) + U * r_star * (1.0 - np.exp(-repeats / r_star))


def effective_epochs(epochs, r_star: float = R_D_STAR):
    """D'/U for a number of epochs over the unique data (2, 4, 8, 16, 40 → 1.97, 3.73, 6.62, 10.58, 15.17)."""
    epochs = np.asarray(epochs, dtype=float)
    return effective_data(epochs, np.ones_like(epochs), r_star)


@dataclass
class MuennighoffLaw:
    E: float = math.exp(C4_LOG_E)
    A: float = math.exp(C4_LOG_A)
    B: float = math.exp(C4_LOG_B)
    alpha: float = C4_ALPHA
    beta: float = C4_BETA
    r_d_star: float = R_D_STAR
    r_n_star: float = R_N_STAR
    objective_: float = math.nan
    warnings_: list = field(default_factory=list)
    family_: str = "muennighoff"

    @property
    def params_(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta,
                "r_d_star": self.r_d_star, "r_n_star": self.r_n_star}

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def n_opt(self, U_D):
        """N_opt(U_D) = G·(G·U_D)^(β/α)."""
        return self.G * (self.G * np.asarray(U_D, dtype=float)) ** (self.beta / self.alpha)

    def effective_params(self, N, U_D):
        N = np.asarray(N, dtype=float)
        U_N = np.minimum(N, self.n_opt(U_D))
        repeats = np.maximum(N / U_N - 1.0, 0.0)
        return U_N + U_N * self.r_n_star * (1.0 - np.exp(-repeats / self.r_n_star))

    def predict(self, N, D, U):
        """Loss of N parameters trained on D tokens drawn from U unique ones. The paper's U_D is
        the unique data actually seen, min(U, D): a run of less than one epoch sees D unique
        tokens, not the whole pool, and N_opt (hence N') depends on that."""
        U_D = np.minimum(np.asarray(U, dtype=float), np.asarray(D, dtype=float))
        d_eff = effective_data(D, U_D, self.r_d_star)
        n_eff = self.effective_params(N, U_D)
        return self.E + self.A / n_eff ** self.alpha + self.B / d_eff ** self.beta

    def to_dict(self) -> dict[str, Any]:
        return {"family": "muennighoff", "params": self.params_, "objective": self.objective_,
                "warnings": list(self.warnings_)}


@blas_single
def fit_muennighoff(N, D, U, L, *, delta: float = HUBER_DELTA, tie: bool = True, base=None,
                    max_starts: int | None = 100) -> MuennighoffLaw:
    """Two stages (spec §5): (1) the Chinchilla law with α = β on the single-epoch runs (D ≤ U),
    unless `base` (a ChinchillaLaw or MuennighoffLaw) is given; (2) R_D*, R_N* on all runs, the
    others frozen, minimising Σ Huber_δ(log L̂ − log L) with L-BFGS from R* ∈ linspace(0, 20, 4)²."""
    N, D, U, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, U, L))
    if not (N.shape == D.shape == U.shape == L.shape):
        raise DataError("N, D, U and L must have the same length", "pass one (N, D, U, L) per run")
    if not all(np.all(np.isfinite(v)) and np.all(v > 0) for v in (N, D, U, L)):
        raise DataError("N, D, U and L must be finite and positive", "drop or fix those runs")
    if base is None:
        single = D <= U * (1 + 1e-9)
        if single.sum() < 5:
            raise FitError(f"stage 1 needs at least 5 single-epoch runs (D <= U); got {int(single.sum())}",
                           "add single-epoch runs or pass base= (e.g. the C4 constants: MuennighoffLaw())")
        base = fit_chinchilla(N[single], D[single], L[single], delta=delta, tie=tie, max_starts=max_starts,
                              warn=False)
    law = MuennighoffLaw(E=base.E, A=base.A, B=base.B, alpha=base.alpha, beta=base.beta)
    logl = np.log(L)

    def objective(r):
        trial = MuennighoffLaw(law.E, law.A, law.B, law.alpha, law.beta, float(r[0]), float(r[1]))
        with np.errstate(all="ignore"):
            resid = np.log(trial.predict(N, D, U)) - logl
        return float(np.sum(huber(resid, delta))) if np.all(np.isfinite(resid)) else np.inf

    best = None
    for r0 in ((a, b) for a in np.linspace(0, 20, 4) for b in np.linspace(0, 20, 4)):
        start = np.maximum(np.array(r0, dtype=float), 0.1)  # R* = 0 divides by zero
        res = minimize(objective, start, method="L-BFGS-B", bounds=[(1e-3, 1e4), (1e-3, 1e4)])
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise FitError("muennighoff: stage 2 did not converge", "check the multi-epoch runs")
    law.r_d_star, law.r_n_star = (float(v) for v in best.x)
    law.objective_ = float(best.fun)
    return law
