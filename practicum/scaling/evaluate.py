"""Extrapolation evaluation (spec §7): fit a prefix, score the rest, rank families over curves.

- `extrapolate(x_fit, y_fit, x_test, y_test, families)`: one fit per family on the fitting
  points, scored on the held-out points by RMSLE (on error/loss, error = 1 − accuracy) and by
  the absolute error at the last anchor; failures (no finite fit) are recorded, not dropped.
- `prefix_split(x, fraction)`: the first `fraction` of the distinct sizes for fitting.
- `mean_ranks(rows)`: per curve, rank the families by RMSLE (ties share the mean rank; a failed
  family ranks last) and average over curves. `last1` is always included.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Sequence

import numpy as np
from scipy.stats import friedmanchisquare, rankdata, wilcoxon

from practicum.errors import PracticumError
from practicum.scaling.law import ScalingLaw, check_curve, loss_space, rmsle


def prefix_split(x, fraction: float) -> np.ndarray:
    """Boolean mask of the points in the first `fraction` of the distinct sizes (at least 2 sizes,
    and at least one size held out)."""
    x = np.asarray(x, dtype=float)
    sizes = np.unique(x)
    if sizes.size < 3:
        raise PracticumError(f"a hold-out split needs at least 3 distinct sizes; got {sizes.size}",
                             "collect more sizes or drop --holdout-frac")
    k = min(max(2, int(round(fraction * sizes.size))), sizes.size - 1)
    return x <= sizes[k - 1]


def extrapolate(x_fit, y_fit, x_test, y_test, families: Sequence[str], *, metric: str = "error",
                seeds_fit=None, **fit_opts) -> dict[str, dict[str, Any]]:
    """{family: {"rmsle", "last_abs_error", "failed", "fit_seconds", "chosen"}} for one curve."""
    x_test = np.asarray(x_test, dtype=float)
    y_test = np.asarray(y_test, dtype=float)
    truth = loss_space(y_test, metric)
    last = x_test == x_test.max()
    names = list(families) + ([] if "last1" in families else ["last1"])
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        start = time.perf_counter()
        row: dict[str, Any] = {"failed": False}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                law = ScalingLaw(name, metric=metric, warn=False, **fit_opts).fit(
                    x_fit, y_fit, seeds=seeds_fit, u_check=x_test)
            pred = law.predict(x_test)
            row["rmsle"] = rmsle(loss_space(pred, metric), truth)
            row["last_abs_error"] = float(np.mean(np.abs(pred[last] - y_test[last])))
            row["chosen"] = law.family_
            if not np.isfinite(row["rmsle"]):
                row["failed"] = True
        except PracticumError as exc:
            row.update(rmsle=math.inf, last_abs_error=math.inf, failed=True, error=exc.problem)
        row["fit_seconds"] = time.perf_counter() - start
        out[name] = row
    return out


def mean_ranks(per_curve: Sequence[dict[str, dict[str, Any]]], key: str = "rmsle") -> dict[str, float]:
    """Mean rank of each family over curves (1 = best); non-finite scores rank last (tied)."""
    names = sorted({name for curve in per_curve for name in curve})
    ranks = {name: [] for name in names}
    for curve in per_curve:
        vals = np.array([curve.get(name, {}).get(key, math.inf) for name in names], dtype=float)
        # failures tie for last place
        worst = np.max(vals[np.isfinite(vals)]) if np.any(np.isfinite(vals)) else 0.0
        r = rankdata(np.where(np.isfinite(vals), vals, worst + 1.0 + abs(worst)), method="average")
        for name, value in zip(names, r):
            ranks[name].append(float(value))
    return {name: float(np.mean(v)) for name, v in ranks.items()}


def evaluate_holdout(x, y, *, families: Sequence[str], fraction: float = 0.5, metric: str = "error",
                     seeds=None, **fit_opts) -> dict[str, Any]:
    """Fit the first `fraction` of the sizes and score the rest, for each family."""
    x, y, _, seeds = check_curve(x, y, metric=metric, seeds=seeds)
    inside = prefix_split(x, fraction)
    scores = extrapolate(x[inside], y[inside], x[~inside], y[~inside], families, metric=metric,
                         seeds_fit=None if seeds is None else seeds[inside], **fit_opts)
    return {"fraction": fraction, "n_fit": int(inside.sum()), "n_test": int((~inside).sum()),
            "x_split": float(x[inside].max()), "scores": scores}


def significance(per_curve: Sequence[dict[str, dict[str, Any]]], families: Sequence[str], *,
                 reference: str = "auto", key: str = "rmsle") -> dict[str, Any]:
    """Friedman test over all families, then Wilcoxon signed-rank tests of `reference` against
    each other family with Holm's step-down correction (spec §7.4). Failed fits count as worst."""
    names = [f for f in families if all(f in c for c in per_curve)]
    table = np.array([[c[f].get(key, math.inf) for f in names] for c in per_curve], dtype=float)
    finite_max = np.nanmax(np.where(np.isfinite(table), table, np.nan)) if np.isfinite(table).any() else 1.0
    table = np.where(np.isfinite(table), table, 2 * finite_max + 1)
    out: dict[str, Any] = {"n_curves": int(table.shape[0])}
    if table.shape[0] < 3 or len(names) < 3:
        return out
    stat, p = friedmanchisquare(*table.T)
    out["friedman"] = {"statistic": float(stat), "p_value": float(p)}
    if reference not in names:
        return out
    ref = table[:, names.index(reference)]
    raw = {}
    for j, name in enumerate(names):
        if name == reference:
            continue
        diff = ref - table[:, j]
        raw[name] = 1.0 if np.allclose(diff, 0) else float(wilcoxon(ref, table[:, j]).pvalue)
    # Holm: sort p-values ascending, multiply the i-th by (m − i), keep them monotone
    ordered = sorted(raw.items(), key=lambda kv: kv[1])
    m, running, holm = len(ordered), 0.0, {}
    for i, (name, pv) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * pv))
        holm[name] = running
    out["wilcoxon_holm_vs_" + reference] = {
        name: {"p_raw": raw[name], "p_holm": holm[name],
               "reference_better_on": int(np.sum(ref < table[:, names.index(name)]))} for name in raw}
    return out
