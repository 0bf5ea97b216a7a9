"""The study's numbers, from a flat table of points (strategy, seed, size, test accuracy).

- mean curve of a strategy: mean test accuracy per size over the seeds that have that size;
- data multiplier (the paper's definition): static's best mean accuracy and the static size that
  achieved it, against the smallest DP pool whose mean accuracy reaches it (interpolated on a
  log-size axis between the two DP sizes around the crossing); m = n_static / n_dp;
- its confidence interval: the same computation on seeds resampled with replacement;
- gains at equal size: per-seed paired differences (DP − static, DP − dynamic-vanilla) at the
  sizes both strategies measured, with a bootstrap CI over seeds.

Fitted scaling laws (and a fit-based multiplier) come from `practicum.scaling`, called through
`fit_law` and `fitted_multiplier` only.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Any

import numpy as np


def mean_curve(points: list[dict], strategy: str, seeds: list[int] | None = None) -> dict[int, float]:
    """{size: mean test accuracy} over `seeds` (a resample may repeat seeds)."""
    by_seed = per_seed(points, strategy)
    chosen = list(by_seed) if seeds is None else seeds
    values: dict[int, list[float]] = defaultdict(list)
    for seed in chosen:
        for size, acc in by_seed.get(seed, {}).items():
            values[size].append(acc)
    return {size: float(np.mean(v)) for size, v in sorted(values.items())}


def per_seed(points: list[dict], strategy: str) -> dict[int, dict[int, float]]:
    """{seed: {size: test accuracy}} for one strategy."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    for p in points:
        if p["strategy"] == strategy and p.get("test_accuracy") is not None:
            out[int(p["seed"])][int(p["size"])] = float(p["test_accuracy"])
    return dict(out)


def reach_size(curve: dict[int, float], target: float) -> float | None:
    """Smallest size at which the curve reaches `target`, interpolated in log size; None if never."""
    sizes = sorted(curve)
    for i, size in enumerate(sizes):
        if curve[size] >= target - 1e-12:
            if i == 0:
                return float(size)
            lo, hi = sizes[i - 1], size
            a_lo, a_hi = curve[lo], curve[hi]
            frac = (target - a_lo) / (a_hi - a_lo) if a_hi > a_lo else 1.0
            return float(math.exp(math.log(lo) + frac * (math.log(hi) - math.log(lo))))
    return None


def multiplier_from_curves(static: dict[int, float], dp: dict[int, float]) -> dict[str, Any]:
    """Static's best mean accuracy, the size it needed, and the DP size that reaches it."""
    if not static or not dp:
        return {"multiplier": None, "target": None, "static_size": None, "dp_size": None}
    best_size = max(static, key=lambda n: (static[n], -n))  # the smallest size at the best accuracy
    target = static[best_size]
    dp_size = reach_size(dp, target)
    return {"multiplier": None if dp_size is None else best_size / dp_size, "target": target,
            "static_size": best_size, "dp_size": dp_size}


def data_multiplier(points: list[dict], a: str = "static", b: str = "dp", n_boot: int = 1000,
                    seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """The data multiplier of `b` over `a` with a bootstrap CI over seeds.

    The rules of `practicum.scaling`: whole seeds are resampled only with at least
    `MIN_SEEDS` (5) seeds — with fewer there is no interval, and `ci_note` says why — and a
    resample in which `b` never reaches the target is not counted as a multiplier of 0: it ranks
    below every finite one, so a lower bound landing on it is unbounded (None)."""
    from practicum.scaling.bootstrap import MIN_SEEDS

    seeds = sorted(set(per_seed(points, a)) & set(per_seed(points, b)))
    result = multiplier_from_curves(mean_curve(points, a, seeds), mean_curve(points, b, seeds))
    rng = np.random.default_rng(seed)
    draws = []
    enough = len(seeds) >= MIN_SEEDS
    for _ in range(n_boot if enough else 0):
        sample = [seeds[i] for i in rng.integers(len(seeds), size=len(seeds))]
        draws.append(multiplier_from_curves(mean_curve(points, a, sample), mean_curve(points, b, sample))["multiplier"])
    ci, note = None, ""
    if not enough:
        note = f"no interval: {len(seeds)} seed(s), fewer than the {MIN_SEEDS} a seed bootstrap needs"
    elif not draws:
        note = "no interval: n_boot = 0"
    else:
        key = np.array([-np.inf if d is None else d for d in draws], dtype=float)
        lo, hi = np.quantile(key, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
        ci = [None if lo == -np.inf else float(lo), float(hi)]
        note = "bootstrap over seeds" + ("; lower bound unbounded: DP misses the target in too many resamples"
                                         if ci[0] is None else "")
    result.update(ci=ci, ci_note=note, level=level, seeds=seeds, n_boot=len(draws),
                  reached_fraction=float(np.mean([d is not None for d in draws])) if draws else None)
    return result


def paired_gain(points: list[dict], a: str, b: str, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> dict[int, dict[str, Any]]:
    """{size: mean and CI of acc_b − acc_a over the seeds that measured both at that size}."""
    pa, pb = per_seed(points, a), per_seed(points, b)
    diffs: dict[int, list[float]] = defaultdict(list)
    for s in sorted(set(pa) & set(pb)):
        for size in sorted(set(pa[s]) & set(pb[s])):
            diffs[size].append(pb[s][size] - pa[s][size])
    rng = np.random.default_rng(seed)
    out = {}
    for size, values in sorted(diffs.items()):
        v = np.asarray(values)
        boots = [float(v[rng.integers(len(v), size=len(v))].mean()) for _ in range(n_boot if len(v) > 1 else 0)]
        ci = [float(np.quantile(boots, (1 - level) / 2)), float(np.quantile(boots, (1 + level) / 2))] if boots else None
        out[int(size)] = {"mean": float(v.mean()), "ci": ci, "n_seeds": int(len(v))}
    return out


# ---------------------------------------------------------------- practicum.scaling call sites

def _curve_arrays(points: list[dict], strategy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [p for p in points if p["strategy"] == strategy and p.get("test_accuracy") is not None]
    x = np.array([p["size"] for p in rows], dtype=float)
    err = np.array([1.0 - p["test_accuracy"] for p in rows], dtype=float)
    seeds = np.array([p["seed"] for p in rows])
    return x, err, seeds


def fit_law(points: list[dict], strategy: str, family: str = "auto"):
    """A scaling law of test error vs size for one strategy, or None with the reason."""
    from practicum.errors import PracticumError
    from practicum.scaling import fit

    x, err, seeds = _curve_arrays(points, strategy)
    if len(np.unique(x)) < 3:
        return None, f"{strategy}: fewer than 3 sizes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit(x, err, family, metric="error", seeds=seeds), None
    except PracticumError as exc:
        return None, f"{strategy}: {exc}"


def fitted_multiplier(points: list[dict], a: str = "static", b: str = "dp", n_boot: int = 200) -> dict[str, Any]:
    """The fit-based multiplier of practicum.scaling (x_a(y*) / x_b(y*) at a's best observed error)."""
    from practicum.errors import PracticumError
    from practicum.scaling.compare import data_multiplier as scaling_multiplier

    xa, ea, sa = _curve_arrays(points, a)
    xb, eb, sb = _curve_arrays(points, b)
    if len(np.unique(xa)) < 3 or len(np.unique(xb)) < 3:
        return {"multiplier": None, "note": "fewer than 3 sizes"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = scaling_multiplier(xa, ea, xb, eb, metric="error", seeds_a=sa, seeds_b=sb, n_boot=n_boot)
    except PracticumError as exc:
        return {"multiplier": None, "note": str(exc)}
    out = res.to_dict()
    out.pop("law_a", None), out.pop("law_b", None)
    return out
