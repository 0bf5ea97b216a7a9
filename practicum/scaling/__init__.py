"""Data scaling laws: fit learning curves, extrapolate with honest error bars, compare strategies.

    >>> from practicum.scaling import fit, data_multiplier
    >>> law = fit(sizes, test_error, family="auto")       # chosen by extrapolation on prefixes
    >>> law.predict([1e5]), law.invert(0.05)               # error at 1e5; data for 5 % error
    >>> boot = law.bootstrap(1000, seed=0); boot.predict_ci([1e5])
    >>> data_multiplier(sizes_a, err_a, sizes_b, err_b).multiplier   # how much less data B needs
"""

from practicum.scaling.families import DEFAULT_FAMILIES, Family, families, get_family
from practicum.scaling.law import METRICS, IdentifiabilityWarning, ScalingLaw, fit, rmsle

__all__ = [
    "DEFAULT_FAMILIES", "METRICS", "Family", "IdentifiabilityWarning", "ScalingLaw", "families", "fit",
    "get_family", "rmsle",
]
