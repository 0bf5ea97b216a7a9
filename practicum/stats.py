"""Statistics over seeds: the one t interval, the one paired difference, the one minimum-seed rule.

Conventions (every command, benchmark and report uses these):

- **t interval**: mean ± t(1+level)/2, n−1 · s/√n with the sample std (ddof 1); `[lo, hi]`, or
  None with fewer than two values.
- **Minimum seeds for a reported interval**: `MIN_SEEDS_FOR_INTERVAL` (5). Below it a summary
  gives its mean but no interval, and says why (`NO_INTERVAL_NOTE`): a t interval on 2–4 seeds is
  too wide to read and a bootstrap one too narrow to trust.
- **Paired difference**: `a − b` per seed, over the seeds both sides have (the first argument
  minus the second). A gain "of DP over static" is therefore `paired_difference(dp, static)`.
  One set of keys: seeds, per_seed, mean, n_seeds, ci, ci_note, level, df.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

from practicum.errors import ConfigError

MIN_SEEDS_FOR_INTERVAL = 5
NO_INTERVAL_NOTE = ("fewer than {min} seeds ({n}): no interval is printed "
                    "(a t or bootstrap interval is not valid there)")


def t_quantile(level: float, df: float) -> float:
    """The two-sided Student-t quantile for `level` with `df` degrees of freedom (a real number:
    Welch's are fractional; inf gives the normal's)."""
    return float(_scipy_stats.t.ppf((1 + level) / 2, df))


def t_interval(values: Iterable[float], level: float = 0.95) -> list[float] | None:
    """Student-t interval of the mean of `values`: `[lo, hi]`, or None with fewer than 2 values."""
    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if v.size < 2:
        return None
    half = t_quantile(level, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return [float(v.mean() - half), float(v.mean() + half)]


def seed_interval(values: Iterable[float], level: float = 0.95,
                  min_seeds: int = MIN_SEEDS_FOR_INTERVAL) -> tuple[list[float] | None, str | None]:
    """The interval a summary over seeds reports: `(t_interval, None)` from `min_seeds` values on,
    else `(None, why)`."""
    v = list(values)
    if len(v) < min_seeds:
        return None, NO_INTERVAL_NOTE.format(min=min_seeds, n=len(v))
    return t_interval(v, level), None


def paired_difference(a: Mapping[Any, float], b: Mapping[Any, float], level: float = 0.95,
                      min_seeds: int = MIN_SEEDS_FOR_INTERVAL) -> dict[str, Any] | None:
    """`a − b` per seed over the seeds both map (in `a`'s order), their mean and the seed interval;
    None when no seed has both."""
    if not 0 < level < 1:
        raise ConfigError(f"the interval level must lie in (0, 1), not {level}")
    seeds = [s for s in a if s in b]
    if not seeds:
        return None
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    ci, note = seed_interval(diffs, level, min_seeds)
    return {"seeds": seeds, "per_seed": diffs, "mean": float(np.mean(diffs)), "n_seeds": len(diffs),
            "ci": ci, "ci_note": note, "level": level, "df": len(diffs) - 1}


__all__ = ["MIN_SEEDS_FOR_INTERVAL", "NO_INTERVAL_NOTE", "paired_difference", "seed_interval", "t_interval",
           "t_quantile"]
