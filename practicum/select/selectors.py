"""Selectors: scores (or a ranking) and a budget in, sorted example indices out.

Rankings are descending: rank 0 is the highest score (for the rater, the highest rating; for
the scorers of `practicum.select.scorers`, the hardest example). Ties are broken by index, so
a selection depends only on the scores, the budget and the seed.

| selector | keeps |
|---|---|
| `top_k` / `bottom_k` | the k highest / lowest scores |
| `block` | a contiguous slice of the ranking starting at a percentile (the paper's Block sNN) |
| `band` | keep-hard: every example with a signed score |t| <= ξ (or the k smallest |t|) |
| `gsample` | k ranks drawn without replacement with Gaussian weights over rank position |
| `shift_gsample` | drop the top δ of the ranking, then `gsample` over the rest (Alchemist) |
| `ccs` | coverage-centric stratified sampling over the score range (Zheng et al. 2023) |
| `class_balanced` | any of the above run within each class, budget split by class size |
| `random_subset` | k indices uniformly at random |

**Direction.** Every scores file says which way its numbers point (`DIRECTIONS`):
`higher_is_better` (the rater: rank 0 = the example it wants most, the easiest) or
`higher_is_harder` (the heuristic scorers: rank 0 = the hardest). The rank-based rules (top-k,
block, gsample, shift-gsample) descend in both cases: keep-top means keep-best for ratings and
keep-hard for hardness scores (DeepCore's convention), and Shift-Gsample's dropped top slice is
the easiest or the most likely mislabelled. Rules that need to know which end is *hard* read
the direction: `ccs` prunes the hardest end (lowest ratings, highest hardness) and
`practicum.select.adaptive` treats the best-quality end as bucket 0.

**Shape check.** `inclusion_by_decile` gives the fraction of each decile of the ranking a
selection keeps; `bottom_warning` says when a selection keeps the bottom 30 % of the ranking
more often than random would (the failure of the `m2_std3` shape at a 50 % budget).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from practicum.errors import ConfigError, DataError

STRATEGIES = ("top-k", "bottom-k", "random", "block", "band", "gsample", "shift-gsample", "ccs")
DIRECTIONS = ("higher_is_better", "higher_is_harder")
DEFAULT_SHAPE = "figure"  # m2_std3 keeps the bottom of the ranking more often than random at 50 %

# Shift-Gsample prune-top fractions from the Alchemist repository's subset names (retention → δ).
SHIFT_PRESETS = ((0.2, 0.25), (0.5, 0.25), (0.8, 0.15), (0.9, 0.05))

# Gaussian shape presets over the kept ranking of length n: (μ/n, σ/n); "figure" is special.
SHAPE_PRESETS = {"m2_std3": (1 / 2, 1 / 3), "m3_std6": (1 / 3, 1 / 6)}


class SelectionWarning(UserWarning):
    """A selection that ran but did not do quite what its settings describe."""


# ---------------------------------------------------------------- helpers

def _scores(scores) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(f"scores must be one number per example, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise DataError("scores contain NaN or infinite values", "rescore the pool or drop those examples")
    return array


def budget(n: int, keep: float | int) -> int:
    """How many examples to keep: a fraction in (0, 1] of n, or a count (an int >= 1)."""
    if isinstance(keep, (int, np.integer)) and not isinstance(keep, bool) and keep >= 1:
        k = int(keep)
    elif isinstance(keep, (float, np.floating)) and 0.0 < keep <= 1.0:
        k = int(round(float(keep) * n))
    else:
        raise ConfigError(f"keep must be a fraction in (0, 1] or a count >= 1, not {keep!r}",
                          "e.g. --keep 0.5 or --keep 1000")
    if k > n:
        raise ConfigError(f"cannot keep {k} of {n} examples", "lower --keep")
    return k


def rank_descending(scores) -> np.ndarray:
    """Indices sorted by score, highest first; ties by index."""
    s = _scores(scores)
    return np.lexsort((np.arange(len(s)), -s))


# ---------------------------------------------------------------- deterministic rules

def top_k(scores, keep) -> np.ndarray:
    s = _scores(scores)
    return np.sort(rank_descending(s)[: budget(len(s), keep)])


def bottom_k(scores, keep) -> np.ndarray:
    s = _scores(scores)
    k = budget(len(s), keep)
    return np.sort(np.lexsort((np.arange(len(s)), s))[:k])


def block(scores, keep, start: float) -> np.ndarray:
    """A contiguous slice of the descending ranking starting at percentile `start` in [0, 1).

    Block s30 at 20 % keeps ranks 30 %..50 %. The slice is moved back if it would run off the end.
    """
    s = _scores(scores)
    if not 0.0 <= start < 1.0:
        raise ConfigError(f"block start must be a fraction in [0, 1), not {start}")
    k = budget(len(s), keep)
    first = min(int(math.floor(start * len(s))), len(s) - k)
    return np.sort(rank_descending(s)[first:first + k])


def band(values, xi: float | None = None, keep=None) -> np.ndarray:
    """Keep-hard band: examples whose signed value t satisfies |t| <= ξ.

    `t` is a signed margin-like number (0 = on the decision boundary), as in the keep-hard rule
    q(t) = 1[|t| <= ξ] of the pruning theory. Give `xi`, or `keep` to take the k smallest |t|
    (ties by index), i.e. the ξ that yields the budget.
    """
    t = np.abs(_scores(values))
    if (xi is None) == (keep is None):
        raise ConfigError("band needs exactly one of xi (the half-width) or keep (a budget)")
    if xi is not None:
        if xi < 0:
            raise ConfigError(f"band half-width xi must be >= 0, not {xi}")
        return np.flatnonzero(t <= xi)
    k = budget(len(t), keep)
    return np.sort(np.lexsort((np.arange(len(t)), t))[:k])


# ---------------------------------------------------------------- sampling rules

def gumbel_top_k(log_weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k positions drawn without replacement with probability ∝ exp(log_weights), sequentially.

    Adding Gumbel noise and taking the k largest is exactly sequential weighted sampling
    without replacement (the Gumbel-top-k trick).
    """
    keys = log_weights + rng.gumbel(size=len(log_weights))
    return np.argsort(-keys, kind="stable")[:k]


def default_prune_top(keep_fraction: float) -> float:
    """δ for a retention q from the repository's presets (0.2, 0.5 → 0.25; 0.8 → 0.15; 0.9 → 0.05).

    Between presets δ is interpolated linearly; below 0.2 it stays 0.25, above 0.9 it falls
    linearly to 0 at q = 1. It is capped at 1 − q so the kept ranking still holds the budget
    (no preset reaches the cap).
    """
    qs, deltas = zip(*SHIFT_PRESETS, (1.0, 0.0))
    delta = float(np.interp(keep_fraction, qs, deltas))
    return min(delta, 1.0 - keep_fraction)


def gaussian_log_weights(n: int, mu: float, sigma: float) -> np.ndarray:
    if sigma <= 0:
        raise ConfigError(f"sigma must be > 0, not {sigma}")
    j = np.arange(n, dtype=np.float64)
    return -((j - mu) ** 2) / (2.0 * sigma ** 2)


def shape_params(n: int, n_total: int, prune_top: float, shape: str = DEFAULT_SHAPE,
                 mu: float | None = None, sigma: float | None = None) -> tuple[float, float]:
    """(μ, σ) over positions 0..n−1 of the kept ranking.

    Presets: `figure` (default) centres at 0.55·N of the full ranking (μ = 0.55N − δN) with
    σ = 0.11N, as read from the paper's Figure 2(b); `m2_std3` μ = n/2, σ = n/3 and `m3_std6`
    μ = n/3, σ = n/6 (read from the names of earlier variants). `m2_std3` barely shapes a 50 %
    draw: it keeps the bottom 30 % of the ranking ~1.3x as often as random, so it is an option
    only. Explicit `mu`/`sigma` are fractions of n and override the preset.
    """
    if shape == "figure":
        mu_pos, sigma_pos = 0.55 * n_total - prune_top * n_total, 0.11 * n_total
    elif shape in SHAPE_PRESETS:
        mu_frac, sigma_frac = SHAPE_PRESETS[shape]
        mu_pos, sigma_pos = mu_frac * n, sigma_frac * n
    else:
        raise ConfigError(f"unknown Gaussian shape {shape!r}", f"use one of {', '.join([*SHAPE_PRESETS, 'figure'])}")
    if mu is not None:
        mu_pos = mu * n
    if sigma is not None:
        sigma_pos = sigma * n
    return mu_pos, sigma_pos


def shift_gsample(scores, keep, *, prune_top: float | None = None, shape: str = DEFAULT_SHAPE,
                  mu: float | None = None, sigma: float | None = None, seed: int = 0) -> np.ndarray:
    """Alchemist's Shift-Gsample: drop the top δ of the ranking, Gaussian-sample the budget from the rest.

    R = ranking[floor(δN):]; w_j ∝ exp(−(j − μ)²/(2σ²)) over positions j of R; draw K of R
    without replacement ∝ w. δ defaults to the preset for the retention (`default_prune_top`).
    Warns (SelectionWarning) when K exceeds the positions with non-negligible weight, because
    sampling then spills into the tails.
    """
    s = _scores(scores)
    n_total = len(s)
    k = budget(n_total, keep)
    delta = default_prune_top(k / n_total) if prune_top is None else float(prune_top)
    if not 0.0 <= delta < 1.0:
        raise ConfigError(f"prune_top must be a fraction in [0, 1), not {delta}")
    ranking = rank_descending(s)
    rest = ranking[int(math.floor(delta * n_total)):]
    if k > len(rest):
        raise ConfigError(f"cannot keep {k} examples after pruning the top {delta:.0%} ({len(rest)} left)",
                          "lower prune_top or keep")
    mu_pos, sigma_pos = shape_params(len(rest), n_total, delta, shape, mu, sigma)
    log_w = gaussian_log_weights(len(rest), mu_pos, sigma_pos)
    significant = int((log_w >= math.log(1e-3)).sum())
    if k > significant:
        warnings.warn(f"Shift-Gsample keeps {k} examples but only {significant} ranks have weight >= 1e-3 of the "
                      "peak; the sample reaches into the tails (widen sigma or lower keep)", SelectionWarning,
                      stacklevel=2)
    chosen = np.sort(rest[gumbel_top_k(log_w, k, np.random.default_rng(seed))])
    message = bottom_warning(inclusion_by_decile(chosen, n_total, ranking), k / n_total)
    if message is not None:
        warnings.warn(f"Shift-Gsample ({shape}, δ={delta:.2f}): {message}", SelectionWarning, stacklevel=2)
    return chosen


def gsample(scores, keep, *, shape: str = DEFAULT_SHAPE, mu: float | None = None, sigma: float | None = None,
            seed: int = 0) -> np.ndarray:
    """Gaussian sampling over the whole ranking (Shift-Gsample with δ = 0)."""
    return shift_gsample(scores, keep, prune_top=0.0, shape=shape, mu=mu, sigma=sigma, seed=seed)


def random_subset(n: int, keep, seed: int = 0) -> np.ndarray:
    k = budget(n, keep)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def ccs(scores, keep, *, prune_hard: float = 0.1, strata: int = 50, seed: int = 0,
        direction: str = "higher_is_harder") -> np.ndarray:
    """Coverage-centric coreset selection (Zheng et al., ICLR 2023).

    1. Drop the hardest `prune_hard` fraction (likely mislabelled): the highest scores when
       `direction="higher_is_harder"`, the lowest when `"higher_is_better"` (ratings).
    2. Split the remaining score range into `strata` equal-width bins.
    3. Repeatedly take the non-empty bin with the fewest examples, give it
       min(its size, floor(budget left / bins left)) and sample that many at random from it.
    """
    s = _scores(scores) * _hard_sign(direction)  # from here on, higher = harder
    k = budget(len(s), keep)
    if not 0.0 <= prune_hard < 1.0:
        raise ConfigError(f"prune_hard must be a fraction in [0, 1), not {prune_hard}")
    if strata < 1:
        raise ConfigError(f"strata must be >= 1, not {strata}")
    ranking = rank_descending(s)
    pool = ranking[int(math.floor(prune_hard * len(s))):]
    if k > len(pool):
        raise ConfigError(f"cannot keep {k} examples after pruning the hardest {prune_hard:.0%} ({len(pool)} left)",
                          "lower prune_hard or keep")
    rng = np.random.default_rng(seed)
    values = s[pool]
    low, high = values.min(), values.max()
    width = (high - low) / strata if high > low else 1.0
    bins = np.minimum(((values - low) / width).astype(np.int64), strata - 1)
    members = [pool[bins == b] for b in range(strata)]
    members = [m for m in members if len(m)]
    chosen, left = [], k
    while members and left > 0:
        members.sort(key=len)  # smallest stratum first (stable: ties keep score order)
        stratum = members.pop(0)
        take = min(len(stratum), left // (len(members) + 1))
        if take:
            chosen.append(rng.choice(stratum, size=take, replace=False))
        left -= take
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


# ---------------------------------------------------------------- direction, profiles, class effects

def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"unknown score direction {direction!r}", f"use one of {', '.join(DIRECTIONS)}")
    return direction


def _hard_sign(direction: str) -> float:
    """+1 if higher scores are harder, −1 if higher scores are better (so sign·score = hardness)."""
    return 1.0 if check_direction(direction) == "higher_is_harder" else -1.0


def quality_order(scores, direction: str) -> np.ndarray:
    """Indices from the best-quality end: ratings descending, hardness ascending (ties by index)."""
    s = _scores(scores)
    return rank_descending(s) if check_direction(direction) == "higher_is_better" else rank_descending(-s)


def inclusion_by_decile(chosen, n: int, ranking: np.ndarray) -> list[float]:
    """Fraction of each decile of `ranking` (rank 0 first) that the selection `chosen` keeps."""
    position = np.empty(n, dtype=np.int64)
    position[np.asarray(ranking)] = np.arange(n)
    decile = np.minimum(position * 10 // max(n, 1), 9)
    picked = np.zeros(n, dtype=bool)
    picked[np.asarray(chosen, dtype=np.int64)] = True
    return [float(picked[decile == d].mean()) if (decile == d).any() else 0.0 for d in range(10)]


def bottom_warning(profile: list[float], keep_fraction: float) -> str | None:
    """A message when the bottom 30 % of the ranking is kept more often than random (rate = keep fraction)."""
    bottom = float(np.mean(profile[7:]))
    if bottom > keep_fraction + 1e-9:
        return (f"the selection keeps the bottom 30 % of the ranking at rate {bottom:.2f}, more often than random "
                f"({keep_fraction:.2f}); use a shape that thins the bottom (e.g. shape='figure' or a smaller sigma)")
    return None


def class_rank_share(scores, labels) -> float:
    """Share of the variance of the rank that the label explains (η², between-class / total)."""
    s = _scores(scores)
    y = np.asarray(labels)

    ranks = rankdata(-s)  # tied scores share their mean rank, so ties carry no class effect
    total = ranks.var()
    if total == 0:
        return 0.0
    between = sum((y == c).mean() * (ranks[y == c].mean() - ranks.mean()) ** 2 for c in np.unique(y))
    return float(between / total)


def normalise_within_class(scores, labels) -> np.ndarray:
    """Scores replaced by their percentile within their own class (0 = lowest, 1 = highest; ties by index).

    Removes whatever the label alone contributes to a score, so no class can be rated low as a whole.
    """
    s = _scores(scores)
    y = np.asarray(labels)
    if y.shape != s.shape:
        raise DataError(f"labels {y.shape} and scores {s.shape} differ in length")
    out = np.empty(len(s))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        order = np.lexsort((members, s[members]))
        out[members[order]] = np.arange(len(members)) / max(1, len(members) - 1)
    return out


# ---------------------------------------------------------------- wrappers and the dispatcher

def class_quotas(labels, total: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes, per-class budgets ∝ class size) summing to `total` exactly (the largest-remainder rule)."""
    y = np.asarray(labels)
    classes = np.unique(y)
    sizes = np.array([(y == c).sum() for c in classes])
    exact = total * sizes / sizes.sum()
    quotas = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - quotas), kind="stable")[: total - quotas.sum()]:
        quotas[i] += 1
    return classes, quotas


def class_balanced(select: Callable[..., np.ndarray], scores, labels, keep, **options) -> np.ndarray:
    """Run `select(scores_c, keep_c, **options)` within each class; budgets ∝ class size.

    Per-class budgets use the largest-remainder rule, so they sum to the total exactly. A `seed`
    option is offset by the class index so classes do not share random draws.
    """
    s = _scores(scores)
    y = np.asarray(labels)
    if y.shape != s.shape:
        raise DataError(f"labels {y.shape} and scores {s.shape} differ in length")
    classes, quotas = class_quotas(y, budget(len(s), keep))
    chosen = []
    for offset, (c, quota) in enumerate(zip(classes, quotas)):
        if quota == 0:
            continue
        members = np.flatnonzero(y == c)
        opts = dict(options)
        if "seed" in opts:
            opts["seed"] = int(opts["seed"]) + offset
        chosen.append(members[select(s[members], int(quota), **opts)])
    return np.sort(np.concatenate(chosen))


def select(strategy: str, scores, keep, *, labels=None, balance: bool = False, seed: int = 0,
           prune_top: float | None = None, shape: str = DEFAULT_SHAPE, mu: float | None = None,
           sigma: float | None = None, start: float = 0.3, prune_hard: float = 0.1, strata: int = 50,
           direction: str = "higher_is_harder") -> np.ndarray:
    """One entry point for every strategy in `STRATEGIES` (what `practicum select` calls).

    `band` treats the scores as signed values t and keeps the `keep` smallest |t|. `direction`
    says which end is hard (see the module docstring); `ccs` reads it.
    """
    check_direction(direction)
    rules: dict[str, tuple[Callable[..., np.ndarray], dict]] = {
        "top-k": (top_k, {}),
        "bottom-k": (bottom_k, {}),
        "random": (lambda s, k, seed: random_subset(len(s), k, seed), {"seed": seed}),
        "block": (block, {"start": start}),
        "band": (lambda s, k: band(s, keep=k), {}),
        "gsample": (gsample, {"shape": shape, "mu": mu, "sigma": sigma, "seed": seed}),
        "shift-gsample": (shift_gsample, {"prune_top": prune_top, "shape": shape, "mu": mu, "sigma": sigma,
                                          "seed": seed}),
        "ccs": (ccs, {"prune_hard": prune_hard, "strata": strata, "seed": seed, "direction": direction}),
    }
    if strategy not in rules:
        raise ConfigError(f"unknown selection strategy {strategy!r}", f"use one of {', '.join(STRATEGIES)}")
    rule, options = rules[strategy]
    if balance:
        if labels is None:
            raise ConfigError("class-balanced selection needs labels", "the scores file must have a label column")
        return class_balanced(rule, scores, labels, keep, **options)
    return rule(_scores(scores), keep, **options)


__all__ = ["DEFAULT_SHAPE", "DIRECTIONS", "SHAPE_PRESETS", "SHIFT_PRESETS", "STRATEGIES", "SelectionWarning", "band",
           "block", "bottom_k", "bottom_warning", "budget", "ccs", "check_direction", "class_balanced", "class_quotas",
           "class_rank_share", "inclusion_by_decile", "normalise_within_class", "quality_order", "default_prune_top", "gaussian_log_weights", "gsample", "gumbel_top_k",
           "random_subset", "rank_descending", "select", "shape_params", "shift_gsample", "top_k"]
