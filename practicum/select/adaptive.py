"""Compute-adaptive keep fraction: how much of the ranking to keep for a training budget.

Goyal et al. (CVPR 2024) show that the best filtered pool depends on compute: a small top-quality
pool wins at a small budget, but once it has to be repeated for many epochs its utility decays
(half-life τ) and a larger, lower-quality union wins. Here the ranking (scores, highest first)
is cut into K equal quality buckets; each bucket has a fitted law (utility b < 0, half-life τ,
from `practicum.scaling.fit_pool` on its learning curve); `practicum.scaling.best_pool` picks the
union of the top-k buckets with the lowest predicted error at the budget, and the selection is
that union (keep fraction k/K). The scaling toolkit does all the modelling; this module only
maps buckets to example indices, behind the one function `adaptive_select`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from practicum.errors import ConfigError, DataError
from practicum.scaling import best_pool
from practicum.select.selectors import quality_order


@dataclass
class BucketLaw:
    b: float  # utility exponent (< 0; more negative = more useful)
    tau: float  # half-life in epochs


def bucket_indices(scores, buckets: int, order: np.ndarray | None = None,
                   direction: str = "higher_is_better") -> list[np.ndarray]:
    """K contiguous slices of the ranking (`order`, default: best quality first), as sorted index arrays.

    Best quality first means ratings descending (`direction="higher_is_better"`) or hardness
    ascending (`"higher_is_harder"`: the easiest, least likely mislabelled, first).
    """
    s = np.asarray(scores, dtype=np.float64)
    if buckets < 1 or buckets > len(s):
        raise ConfigError(f"cannot cut {len(s)} examples into {buckets} buckets")
    ranking = quality_order(s, direction) if order is None else np.asarray(order)
    return [np.sort(part) for part in np.array_split(ranking, buckets)]


def adaptive_select(scores, budget_samples: float, laws: Sequence[BucketLaw], *, a: float = 0.025, d: float = 0.1,
                    tau_scale: str = "k", compose: str = "code", order: np.ndarray | None = None,
                    direction: str = "higher_is_better") -> tuple[np.ndarray, dict[str, Any]]:
    """(indices, choice): the union of the buckets `practicum.scaling.best_pool` picks for the budget.

    `laws[i]` describes bucket i of the ranking (bucket 0 = the best-quality end, which
    `direction` decides: the highest ratings, or the lowest hardness scores). `budget_samples` is the
    number of samples the training run will see (steps × batch size).
    """
    if budget_samples <= 0:
        raise ConfigError(f"the training budget must be > 0 samples, not {budget_samples}")
    if not laws:
        raise ConfigError("adaptive selection needs one fitted law per quality bucket")
    parts = bucket_indices(scores, len(laws), order, direction)
    size = float(np.mean([len(p) for p in parts]))
    choice = best_pool([law.b for law in laws], [law.tau for law in laws], budget_samples, S0=size, a=a, d=d,
                       tau_scale=tau_scale, compose=compose)
    picked = choice.order[: choice.best_k]
    index = np.sort(np.concatenate([parts[i] for i in picked]))
    info = {**choice.to_dict(), "direction": direction, "keep_fraction": len(index) / len(np.asarray(scores)), "buckets": len(laws)}
    return index, info


def read_laws(path: str | Path) -> tuple[list[BucketLaw], dict[str, float]]:
    """Bucket laws from JSON: {"a": 0.025, "d": 0.1, "buckets": [{"b": -0.16, "tau": 6.7}, ...]}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no pool-law file at {path}", 'write {"buckets": [{"b": ..., "tau": ...}, ...]} as JSON')
    try:
        data = json.loads(path.read_bytes())
        laws = [BucketLaw(float(row["b"]), float(row["tau"])) for row in data["buckets"]]
        extra = {k: float(data[k]) for k in ("a", "d") if k in data}
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:  # not JSON or not UTF-8 too
        raise DataError(f"{path} is not a pool-law file ({type(exc).__name__}: {str(exc)[:100]})",
                        'write {"buckets": [{"b": -0.16, "tau": 6.7}, ...]} with one row per quality bucket') from None
    if not laws or not all(math.isfinite(law.b) and math.isfinite(law.tau) for law in laws) \
            or not all(math.isfinite(v) for v in extra.values()):
        raise DataError(f"{path}: the buckets need finite numbers, one row per quality bucket")
    if any(law.b >= 0 or law.tau <= 0 for law in laws):
        raise DataError(f"{path}: every bucket needs utility b < 0 and half-life tau > 0")
    return laws, extra


__all__ = ["BucketLaw", "adaptive_select", "bucket_indices", "read_laws"]
