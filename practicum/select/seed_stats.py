"""Across-seed summaries of a selection benchmark: per-arm mean ± std and paired per-seed differences.

`per_seed` maps a seed to {arm: {metric: value}}. Differences are paired by seed (the same rater, pool and
generator seed on both sides), and the interval is Student's t with (seeds − 1) degrees of freedom.
"""

from __future__ import annotations

import math

import numpy as np

from practicum.errors import ConfigError


def t_interval(values, level: float = 0.95) -> list[float] | None:
    """Student-t interval of the mean of `values` (None with fewer than 2 values)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return None
    half = float(stats.t.ppf((1 + level) / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return [float(v.mean() - half), float(v.mean() + half)]


def summarise_arms(per_seed: dict, metrics) -> dict:
    """{arm: {metric: {mean, std (ddof 1; None for one seed), seeds}}} over the seeds that ran the arm."""
    arms: dict[str, dict] = {}
    for seed in sorted(per_seed, key=str):
        for arm, record in per_seed[seed].items():
            for metric in metrics:
                if metric in record:
                    arms.setdefault(arm, {}).setdefault(metric, {})[seed] = float(record[metric])
    out = {}
    for arm, by_metric in arms.items():
        out[arm] = {}
        for metric, values in by_metric.items():
            v = np.asarray(list(values.values()))
            out[arm][metric] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else None,
                                "seeds": [str(s) for s in values]}
    return out


def paired_difference(per_seed: dict, a: str, b: str, metric: str, level: float = 0.95) -> dict | None:
    """a − b per seed where both arms ran; mean, t interval and its degrees of freedom (None if no seed has both)."""
    if not 0 < level < 1:
        raise ConfigError(f"the interval level must lie in (0, 1), not {level}")
    seeds = [s for s in sorted(per_seed, key=str)
             if metric in per_seed[s].get(a, {}) and metric in per_seed[s].get(b, {})]
    if not seeds:
        return None
    diffs = [float(per_seed[s][a][metric]) - float(per_seed[s][b][metric]) for s in seeds]
    return {"seeds": [str(s) for s in seeds], "per_seed": diffs, "mean": float(np.mean(diffs)),
            "ci": t_interval(diffs, level), "level": level, "df": len(diffs) - 1}


__all__ = ["paired_difference", "summarise_arms", "t_interval"]
