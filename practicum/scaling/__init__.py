"""Data scaling laws: fit learning curves, extrapolate with honest error bars, compare strategies.

    >>> from practicum.scaling import fit, data_multiplier
    >>> law = fit(sizes, test_error, family="auto")       # chosen by extrapolation on prefixes
    >>> law.predict([1e5]), law.invert(0.05)               # error at 1e5; data for 5 % error
    >>> boot = law.bootstrap(1000, seed=0); boot.predict_ci([1e5])
    >>> data_multiplier(sizes_a, err_a, sizes_b, err_b).multiplier   # how much less data B needs
"""

from practicum.scaling.chinchilla import ChinchillaLaw, fit_chinchilla
from practicum.scaling.compare import MultiplierResult, crossover, data_multiplier
from practicum.scaling.families import DEFAULT_FAMILIES, Family, families, get_family
from practicum.scaling.law import METRICS, IdentifiabilityWarning, ScalingLaw, fit, rmsle
from practicum.scaling.pools import PoolLaw, best_pool, fit_pool, pool_error, union_error
from practicum.scaling.repetition import (
    R_D_STAR,
    R_N_STAR,
    MuennighoffLaw,
    effective_data,
    effective_epochs,
    fit_muennighoff,
)

__all__ = [
    "DEFAULT_FAMILIES", "METRICS", "R_D_STAR", "R_N_STAR", "ChinchillaLaw", "Family", "IdentifiabilityWarning",
    "MultiplierResult", "MuennighoffLaw", "PoolLaw", "ScalingLaw", "best_pool", "crossover", "data_multiplier",
    "effective_data", "effective_epochs", "families", "fit", "fit_chinchilla", "fit_muennighoff", "fit_pool",
    "get_family", "pool_error", "rmsle", "union_error",
]
