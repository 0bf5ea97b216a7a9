"""Coverage selectors on embeddings (DeepCore's geometry- and submodular-based methods).

Each takes (N, D) embeddings and a budget (fraction or count, as `selectors.budget`) and returns
sorted indices. All are deterministic given `seed` (which only picks k-center's first point).

| selector | greedy step | covers |
|---|---|---|
| `k_center_greedy` | add the point farthest from the chosen set (Sener & Savarese 2018) | the worst-covered point |
| `herding` | add the point that brings the chosen mean closest to the pool mean (Welling 2009) | the mean |
| `facility_location` | add the point with the largest gain Σ_i max(0, s(i, c) − best_i) (Mirzasoleiman et al. 2020) | every point's nearest chosen neighbour |

Facility location uses the similarity s = −‖x_i − x_j‖² shifted to be >= 0 and holds an N×N
matrix: use it per class or on pools of a few thousand.
"""

from __future__ import annotations

import numpy as np

from practicum.errors import ConfigError, DataError
from practicum.select.selectors import budget


def _embeddings(embeddings) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise DataError(f"embeddings must be a finite, non-empty (N, D) array, got shape {x.shape}")
    return x


def k_center_greedy(embeddings, keep, *, seed: int = 0, first: int | None = None) -> np.ndarray:
    x = _embeddings(embeddings)
    k = budget(len(x), keep)
    start = int(np.random.default_rng(seed).integers(len(x))) if first is None else int(first)
    chosen = [start]
    nearest = ((x - x[start]) ** 2).sum(axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(nearest))  # ties: the lowest index
        chosen.append(nxt)
        nearest = np.minimum(nearest, ((x - x[nxt]) ** 2).sum(axis=1))
    return np.sort(np.array(chosen))


def herding_order(embeddings, keep) -> np.ndarray:
    """Herding's picks in the order it makes them (the distill baseline keeps this order)."""
    x = _embeddings(embeddings)
    k = budget(len(x), keep)
    target = x.mean(axis=0)
    total = np.zeros(x.shape[1])
    free = np.ones(len(x), dtype=bool)
    chosen = []
    for t in range(1, k + 1):
        # the mean after adding candidate c is (total + x_c) / t
        gap = (((total[None] + x) / t - target[None]) ** 2).sum(axis=1)
        gap[~free] = np.inf
        c = int(np.argmin(gap))
        chosen.append(c)
        free[c] = False
        total += x[c]
    return np.array(chosen)


def herding(embeddings, keep) -> np.ndarray:
    return np.sort(herding_order(embeddings, keep))


def facility_location(embeddings, keep, *, max_pool: int = 20000) -> np.ndarray:
    x = _embeddings(embeddings)
    if len(x) > max_pool:
        raise ConfigError(f"facility location holds an N x N matrix; {len(x)} examples is more than {max_pool}",
                          "run it per class or on a subsample")
    k = budget(len(x), keep)
    sq = (x ** 2).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    sim = dist.max() - dist  # >= 0, larger = closer
    best = np.zeros(len(x))
    free = np.ones(len(x), dtype=bool)
    chosen = []
    for _ in range(k):
        gains = np.maximum(sim - best[:, None], 0.0).sum(axis=0)
        gains[~free] = -np.inf
        c = int(np.argmax(gains))
        chosen.append(c)
        free[c] = False
        best = np.maximum(best, sim[:, c])
    return np.sort(np.array(chosen))


__all__ = ["facility_location", "herding", "herding_order", "k_center_greedy"]
