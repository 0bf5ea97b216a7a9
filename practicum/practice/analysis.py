"""The study's numbers, from a flat table of points (strategy, seed, size, accuracy).

Conventions (the same in the terminal summary, summary.json and report.html):

- **Pairing by seed.** Every comparison is made inside one seed (the same vanilla bank, the
  same learner initialisation) and only then summarised over seeds.
- **Shared log-size grid.** A seed's curve is a piecewise-linear function of log(size) through
  its measured points. Strategies are compared at the sizes of one grid (the static sizes,
  extended geometrically over DP's range); a curve is read only inside its measured range,
  never extrapolated.
- **Target fixed from static alone.** n* = the static size with the best mean accuracy over seeds
  (ties: the smallest). Each seed's target is its own static accuracy at n*, so the target is
  known before DP is looked at.
- **Per-seed multiplier** m_s = n* / n_DP,s where n_DP,s is the (log-interpolated) smallest DP
  size whose accuracy reaches seed s's target. If DP never reaches it within its largest pool
  D_s, the seed is **censored**: DP needs more than D_s images (a lower bound on DP's size, i.e.
  m_s < n*/D_s). Censored seeds are counted (`reached_fraction`) and listed, never scored 0.
- **Summary over seeds**: the geometric mean of m_s with a t interval on log m_s (n − 1 degrees
  of freedom), only when every seed reached the target and there are at least
  `practicum.stats.MIN_SEEDS_FOR_INTERVAL` seeds; otherwise no interval, with the reason in `ci_note`.
- **Gains at equal size** (DP − static, DP − dynamic-vanilla): per seed at grid sizes above the
  start size (equal for both strategies by construction, so not a gain), then mean and t interval
  over seeds under the same rule.
- **Fitted-law multiplier**: `practicum.scaling.compare.data_multiplier` on test error, with one
  law family for both strategies (chosen on static alone) and static's best mean error as the
  target; its interval is compare's (each curve's leave-one-seed-out jackknife, the two log
  variances added, a Welch–Satterthwaite t), printed only with at least
  `practicum.stats.MIN_SEEDS_FOR_INTERVAL` seeds and where compare's coverage check allows it.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from practicum.errors import PracticumError
from practicum.scaling import data_multiplier, fit
from practicum.stats import MIN_SEEDS_FOR_INTERVAL, NO_INTERVAL_NOTE, paired_difference, seed_interval

# ---------------------------------------------------------------- curves

def per_seed(points: list[dict], strategy: str, key: str = "test_accuracy") -> dict[int, dict[int, float]]:
    """{seed: {size: accuracy}} for one strategy (`key`: test_accuracy, or val_accuracy for choices)."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    for p in points:
        if p["strategy"] == strategy and p.get(key) is not None:
            out[int(p["seed"])][int(p["size"])] = float(p[key])
    return dict(out)


def interpolate(curve: dict[int, float], size: float) -> float | None:
    """The curve's accuracy at `size`, linear in log size between measured points; None outside."""
    sizes = sorted(curve)
    if not sizes or size < sizes[0] - 1e-9 or size > sizes[-1] + 1e-9:
        return None
    for lo, hi in zip(sizes, sizes[1:] + [sizes[-1]]):
        if lo - 1e-9 <= size <= hi + 1e-9:
            if hi == lo:
                return curve[lo]
            frac = (math.log(size) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return curve[lo] + frac * (curve[hi] - curve[lo])
    return None


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


def shared_grid(points: list[dict], base: str = "static", others: tuple[str, ...] = ()) -> list[int]:
    """The base strategy's sizes, continued geometrically (same ratio) to cover the others' largest size."""
    sizes = sorted({int(p["size"]) for p in points if p["strategy"] == base})
    if not sizes:
        return []
    top = max([int(p["size"]) for p in points if p["strategy"] in others] + [sizes[-1]])
    ratio = sizes[-1] / sizes[-2] if len(sizes) > 1 else 2.0
    grid = list(sizes)
    while grid[-1] < top and ratio > 1:
        grid.append(int(round(grid[-1] * ratio)))
    return grid


def grid_curve(points: list[dict], strategy: str, grid: list[int], key: str = "test_accuracy"
               ) -> dict[int, dict[str, Any]]:
    """{size: mean, min, max and seed count} of the seeds' interpolated curves at each grid size.

    A size is listed when at least one seed's measured range covers it; `n_seeds` says how many,
    so a mean of fewer seeds is visible as such."""
    by_seed = per_seed(points, strategy, key)
    out = {}
    for size in grid:
        values = [v for v in (interpolate(c, size) for c in by_seed.values()) if v is not None]
        if values:
            out[size] = {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values)),
                         "n_seeds": len(values)}
    return out


def mean_curve(points: list[dict], strategy: str, key: str = "test_accuracy") -> dict[int, float]:
    """{size: mean accuracy} at the measured sizes that every seed of the strategy measured."""
    by_seed = per_seed(points, strategy, key)
    if not by_seed:
        return {}
    common = set.intersection(*(set(c) for c in by_seed.values()))
    return {n: float(np.mean([c[n] for c in by_seed.values()])) for n in sorted(common)}


# ---------------------------------------------------------------- the data multiplier

def static_target(points: list[dict], strategy: str = "static", key: str = "test_accuracy") -> dict[str, Any]:
    """n*: the static size with the best mean accuracy over the sizes every seed measured."""
    curve = mean_curve(points, strategy, key)
    if not curve:
        return {"static_size": None, "target": None}
    best = max(curve, key=lambda n: (curve[n], -n))
    return {"static_size": int(best), "target": curve[best]}


def measured_multiplier(points: list[dict], a: str = "static", b: str = "dp", level: float = 0.95,
                        key: str = "test_accuracy") -> dict[str, Any]:
    """Per-seed multipliers of `b` over `a` read off the measured curves (module docstring), their
    geometric mean and t interval. The law-based multiplier is `practicum.scaling.data_multiplier`;
    the study's summary keeps this one under its `data_multiplier*` keys."""
    target = static_target(points, a, key)
    pa, pb = per_seed(points, a, key), per_seed(points, b, key)
    seeds = sorted(set(pa) & set(pb))
    n_star = target["static_size"]
    rows = []
    for s in seeds:
        if n_star is None or n_star not in pa[s]:
            continue
        goal = pa[s][n_star]
        need = reach_size(pb[s], goal)
        largest = max(pb[s])
        rows.append({"seed": s, "target": goal, "dp_size": need, "reached": need is not None,
                     "multiplier": None if need is None else n_star / need,
                     "dp_largest": largest, "dp_needs_more_than": None if need is not None else largest,
                     "multiplier_below": None if need is not None else n_star / largest})
    reached = [r for r in rows if r["reached"]]
    out: dict[str, Any] = {"static_size": n_star, "target": target["target"], "per_seed": rows,
                           "seeds": [r["seed"] for r in rows], "n_seeds": len(rows),
                           "reached_fraction": (len(reached) / len(rows)) if rows else None,
                           "level": level, "multiplier": None, "ci": None, "ci_note": None,
                           "multiplier_reached_only": None}
    if not rows:
        out["ci_note"] = "no seed has both curves"
        return out
    logs = [math.log(r["multiplier"]) for r in reached]
    if reached:
        out["multiplier_reached_only"] = float(math.exp(np.mean(logs)))
    if len(reached) < len(rows):
        bounds = sorted(r["dp_needs_more_than"] for r in rows if not r["reached"])
        who = "DP" if b == "dp" else b
        out["ci_note"] = (f"{who} did not reach the target in {len(rows) - len(reached)} of {len(rows)} seeds "
                          f"(it needs more than {', '.join(str(b) for b in bounds)} images there); "
                          "no multiplier over seeds is given")
        return out
    out["multiplier"] = float(math.exp(np.mean(logs)))
    ci, why = seed_interval(logs, level)
    out["ci"] = None if ci is None else [float(math.exp(ci[0])), float(math.exp(ci[1]))]
    out["ci_note"] = why
    return out


def paired_gain(points: list[dict], a: str, b: str, level: float = 0.95, start_size: int | None = None,
                grid: list[int] | None = None, key: str = "test_accuracy") -> dict[int, dict[str, Any]]:
    """{size: mean and seed interval of the gain of `b` over `a` (acc_b − acc_a, i.e.
    `paired_difference(b, a)`)}, at grid sizes above the start size.

    Both curves are read on the shared log-size grid inside each seed's measured range."""
    pa, pb = per_seed(points, a, key), per_seed(points, b, key)
    grid = grid if grid is not None else shared_grid(points, a, (b,))
    out = {}
    for size in grid:
        if start_size is not None and size <= start_size:
            continue  # equal for both by construction
        at_a, at_b = {}, {}
        for s in sorted(set(pa) & set(pb)):
            va, vb = interpolate(pa[s], size), interpolate(pb[s], size)
            if va is not None and vb is not None:
                at_a[s], at_b[s] = va, vb
        d = paired_difference(at_b, at_a, level)
        if d is not None:
            out[int(size)] = {"mean": d["mean"], "ci": d["ci"], "ci_note": d["ci_note"], "n_seeds": d["n_seeds"]}
    return out


# ---------------------------------------------------------------- fitted laws (practicum.scaling)

def _curve_arrays(points: list[dict], strategy: str, key: str = "test_accuracy"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sizes, test errors, seeds) of every point of one strategy."""
    rows = [p for p in points if p["strategy"] == strategy and p.get(key) is not None]
    x = np.array([p["size"] for p in rows], dtype=float)
    err = np.array([1.0 - p[key] for p in rows], dtype=float)
    seeds = np.array([p["seed"] for p in rows])
    return x, err, seeds


def fit_law(points: list[dict], strategy: str, family: str = "auto"):
    """A scaling law of test error vs size for one strategy, or None with the reason."""
    x, err, seeds = _curve_arrays(points, strategy)
    if len(np.unique(x)) < 3:
        return None, f"{strategy}: fewer than 3 sizes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit(x, err, family, metric="error", seeds=seeds), None
    except PracticumError as exc:
        return None, f"{strategy}: {exc}"


FITTED_METHOD = ("practicum.scaling.compare.data_multiplier: each curve's leave-one-seed-out jackknife, "
                 "log variances added, Welch-Satterthwaite t")


def fitted_multiplier(points: list[dict], a: str = "static", b: str = "dp", level: float = 0.95) -> dict[str, Any]:
    """x_a(y*) / x_b(y*) from two laws of ONE family (chosen on `a` alone), y* = a's best mean error,
    by `practicum.scaling.compare.data_multiplier` (module docstring)."""
    law_a, why = fit_law(points, a)
    if law_a is None:
        return {"multiplier": None, "note": why}
    family = law_a.family_
    target = static_target(points, a)
    if target["target"] is None:
        return {"multiplier": None, "note": "no static size measured by every seed"}
    y_star = 1.0 - target["target"]
    n_seeds = len(set(per_seed(points, a)) & set(per_seed(points, b)))
    enough = n_seeds >= MIN_SEEDS_FOR_INTERVAL
    out: dict[str, Any] = {"multiplier": None, "family": family, "target_error": y_star, "ci": None, "level": level,
                           "n_seeds": n_seeds, "method": FITTED_METHOD}
    (xa, ea, sa), (xb, eb, sb) = _curve_arrays(points, a), _curve_arrays(points, b)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # below the seed minimum no interval is printed, so none is computed (n_boot=0)
            result = data_multiplier(xa, ea, xb, eb, target=y_star, metric="error", family=family, seeds_a=sa,
                                     seeds_b=sb, level=level, n_boot=1000 if enough else 0)
    except PracticumError:
        out["note"] = f"the {family} laws cannot both reach error {y_star:.4f}"
        return out
    out["multiplier"] = result.multiplier
    if not enough:
        out["ci_note"] = NO_INTERVAL_NOTE.format(min=MIN_SEEDS_FOR_INTERVAL, n=n_seeds)
    else:
        out["ci"] = None if result.ci is None else list(result.ci)
        out["ci_note"] = result.ci_note
    return out
