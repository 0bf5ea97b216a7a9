"""Sample-complexity calculators from the lecture's two worked bounds (both are upper bounds:
real errors are often far better).

Finite hypothesis class (k hypotheses, m samples, confidence 1 − δ), by Hoeffding and a union
bound:  ε(ĥ) ≤ min_h ε(h) + 2·√(log(2k/δ)/m).  The estimation term falls as m^(−1/2) and grows
only with log k, so large but finite classes are learnable.

Smooth density (β-Hölder in d dimensions, kernel estimator at a point):
E[(p̂_n(x0) − p(x0))²] ≤ C·ψ_n²,  ψ_n = n^(−β/(2β+d))  (the lecture's d = 1 form is β/(2β+1)).
Smoother densities (larger β) approach the parametric 1/n rate.
"""

from __future__ import annotations

import math

from practicum.errors import ConfigError


def _positive(name: str, value: float) -> None:
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{name} = {value} must be a positive number", f"give a positive {name}")


def _probability(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ConfigError(f"{name} = {value} must lie in (0, 1)", "e.g. 0.05")


def finite_class_bound(m: float, k: float, delta: float = 0.05, best_error: float = 0.0) -> float:
    """Upper bound on the true error of the empirical-risk minimiser over k hypotheses."""
    _positive("m (samples)", m)
    _positive("k (hypotheses)", k)
    _probability("delta", delta)
    if not 0 <= best_error <= 1:
        raise ConfigError(f"best_error = {best_error} must lie in [0, 1]", "give the best hypothesis' error")
    return best_error + 2.0 * math.sqrt(math.log(2.0 * k / delta) / m)


def finite_class_samples(excess: float, k: float, delta: float = 0.05) -> int:
    """Samples m for which the bound's estimation term 2√(log(2k/δ)/m) is at most `excess`."""
    _positive("excess", excess)
    _positive("k (hypotheses)", k)
    _probability("delta", delta)
    return math.ceil(4.0 * math.log(2.0 * k / delta) / excess ** 2)


def density_rate(smoothness: float, d: int = 1) -> float:
    """The exponent of ψ_n = n^(−β/(2β+d))."""
    _positive("smoothness β", smoothness)
    if d < 1:
        raise ConfigError(f"dimension d = {d} must be ≥ 1", "give a positive integer")
    return smoothness / (2.0 * smoothness + d)


def density_mse_bound(n: float, smoothness: float, d: int = 1, constant: float = 1.0) -> float:
    """C·ψ_n² = C·n^(−2β/(2β+d)): the worst-case squared error of a smooth density estimate."""
    _positive("n (samples)", n)
    _positive("constant C", constant)
    return constant * n ** (-2.0 * density_rate(smoothness, d))


def density_samples(target_mse: float, smoothness: float, d: int = 1, constant: float = 1.0) -> int:
    """Samples n for which C·n^(−2β/(2β+d)) ≤ target_mse."""
    _positive("target_mse", target_mse)
    _positive("constant C", constant)
    exponent = 2.0 * density_rate(smoothness, d)
    return math.ceil((constant / target_mse) ** (1.0 / exponent) * (1 - 1e-12))
