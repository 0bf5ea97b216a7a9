"""Absolute thresholds, intersections of filters, and a budget applied after them (DataComp style).

A filter is a boolean keep mask over the pool. `threshold` turns a score into one; `intersect` and
`union` combine them; `select_within(mask, ...)` runs any selection rule on the survivors only and
maps the result back to pool indices, so "CLIP-score >= 0.3 AND not a duplicate, then the best
50 %" is `select_within(intersect(threshold(s, low=0.3), keep_dup), "top-k", s, 0.5)`.
"""

from __future__ import annotations

import numpy as np

from practicum.errors import ConfigError, DataError
from practicum.select.selectors import select


def threshold(scores, *, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Keep mask low <= score <= high (either bound may be omitted; NaN scores are dropped)."""
    s = np.asarray(scores, dtype=np.float64)
    if low is None and high is None:
        raise ConfigError("a threshold needs a lower bound, an upper bound or both")
    keep = np.isfinite(s)
    if low is not None:
        keep &= s >= low
    if high is not None:
        keep &= s <= high
    return keep


def _masks(masks) -> list[np.ndarray]:
    arrays = [np.asarray(m, dtype=bool) for m in masks]
    if not arrays:
        raise ConfigError("combine at least one filter")
    if len({a.shape for a in arrays}) != 1:
        raise DataError(f"filters cover different pools: shapes {sorted({a.shape for a in arrays})}")
    return arrays


def intersect(*masks) -> np.ndarray:
    return np.logical_and.reduce(_masks(masks))


def union(*masks) -> np.ndarray:
    return np.logical_or.reduce(_masks(masks))


def select_within(mask, strategy: str, scores, keep, **options) -> np.ndarray:
    """Pool indices chosen by `selectors.select(strategy, ...)` among the examples the mask keeps.

    `keep` is a fraction of the survivors or a count; 1.0 keeps every survivor. A `labels` option
    is restricted to the survivors too.
    """
    survivors = np.flatnonzero(np.asarray(mask, dtype=bool))
    if len(survivors) == 0:
        raise DataError("no example passes the filters", "loosen the thresholds")
    s = np.asarray(scores, dtype=np.float64)[survivors]
    if options.get("labels") is not None:
        options["labels"] = np.asarray(options["labels"])[survivors]
    return survivors[select(strategy, s, keep, **options)]


__all__ = ["intersect", "select_within", "threshold", "union"]
