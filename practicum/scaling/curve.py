"""A learning curve's checks and metric space, below every law (laws, fitters and the bootstrap
all read curves through these).

`metric` is "error" (in [0, 1], lower is better), "accuracy" (in [0, 1], higher is better) or
"loss" (positive, lower is better); RMSLE is computed in the lower-is-better space.
"""

from __future__ import annotations

import math

import numpy as np

from practicum.errors import DataError

METRICS = ("error", "accuracy", "loss")


class IdentifiabilityWarning(UserWarning):
    """The data do not pin down a law's parameters (too few points, or a flat direction)."""


# ---------------------------------------------------------------- input checks

def check_curve(x, y, *, metric: str = "error", weights=None, seeds=None):
    """Validate and convert a curve; returns float arrays (x, y, w, seeds-or-None)."""
    if metric not in METRICS:
        raise DataError(f"unknown metric {metric!r}", f"use one of {', '.join(METRICS)}")
    try:
        x = np.asarray(x, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
    except (TypeError, ValueError):
        raise DataError("x and y must be numbers", "remove non-numeric values") from None
    if x.shape != y.shape:
        raise DataError(f"x has {x.size} values but y has {y.size}", "pass one y per x")
    if x.size == 0:
        raise DataError("the curve is empty", "pass at least one (x, y) point")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError("the curve has NaN or infinite values", "drop or fix those points")
    if np.any(x <= 0):
        raise DataError(f"x must be positive (got {x.min():g})", "x is a data size: use counts > 0")
    if metric in ("error", "accuracy") and (np.any(y < 0) or np.any(y > 1)):
        raise DataError(f"{metric} values must lie in [0, 1] (got {y.min():g}..{y.max():g})",
                        "use --metric loss for unbounded values, or divide percentages by 100")
    if metric == "loss" and np.any(y <= 0):
        raise DataError("loss values must be positive", "shift the loss or use --metric error/accuracy")
    if weights is None:
        w = np.ones_like(x)
    else:
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise DataError("weights must be one finite non-negative number per point, not all zero",
                            "fix the weights")
    if seeds is not None:
        seeds = np.asarray(seeds).ravel()
        if seeds.shape != x.shape:
            raise DataError("seeds must be one label per point", "pass one seed per (x, y)")
        pairs = set()
        for xi, si in zip(x.tolist(), seeds.tolist()):
            if (xi, si) in pairs:
                raise DataError(f"duplicate point x={xi:g} seed={si}", "each (x, seed) may appear once")
            pairs.add((xi, si))
    order = np.argsort(x, kind="stable")
    return x[order], y[order], w[order], (None if seeds is None else seeds[order])


def loss_space(y, metric: str):
    """The lower-is-better value RMSLE is computed on (error = 1 − accuracy)."""
    y = np.asarray(y, dtype=float)
    return 1.0 - y if metric == "accuracy" else y


def rmsle(pred, truth) -> float:
    """sqrt(mean((log ŷ − log y)²)); inf when a prediction is not positive and finite."""
    pred, truth = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    with np.errstate(all="ignore"):
        r = np.log(pred) - np.log(truth)
    return float(np.sqrt(np.mean(r ** 2))) if np.all(np.isfinite(r)) else math.inf
