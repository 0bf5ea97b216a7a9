"""Across-seed summaries of a selection benchmark: per-arm mean ± std and paired per-seed differences.

`per_seed` maps a seed to {arm: {metric: value}}. Differences are paired by seed (the same rater, pool and
generator seed on both sides), and the interval is Student's t with (seeds − 1) degrees of freedom.
"""

from __future__ import annotations

import numpy as np

from practicum import stats


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
    """`practicum.stats.paired_difference` of arm a − arm b on `metric` (seeds as strings, in string
    order). The selection benchmark runs 3 seeds, so its interval is the plain t interval from 2
    seeds on (`min_seeds=2`), not the summaries' 5-seed rule; None if no seed has both arms."""
    seeds = sorted(per_seed, key=str)
    side_a = {str(s): per_seed[s][a][metric] for s in seeds if metric in per_seed[s].get(a, {})}
    side_b = {str(s): per_seed[s][b][metric] for s in seeds if metric in per_seed[s].get(b, {})}
    return stats.paired_difference(side_a, side_b, level, min_seeds=2)


__all__ = ["paired_difference", "summarise_arms"]
