"""Sanity gates a trained rater must pass before its ratings are used (every `practicum rate` run).

A rater that has not learned still produces a ranking: a random network orders rows by how odd
they look, and the side of that order changes with the seed. Each gate compares ranks within class
(what class-balanced selection sees) on a seeded sample of the pool:

- init:  Spearman(trained ratings, the same seed's untrained rater) must be below 0.5;
- seeds: Spearman(this rater, a second one trained with seed + 1) must be above 0.5 (optional: it
         trains the rater a second time);
- loss:  Spearman(rating, −proxy loss under common draws) must be above 0.2: the first-order rule
         trains the rater to rate the rows the hold-out-fitted proxy finds easy high, so a rater
         that learned its objective agrees with that ranking;
- kinds: the mean rank percentile of each injected defect kind (0 = top); the clearly harmful kinds
         must sit below the middle (> 0.5), when the pool knows its kinds.

The thresholds are the issue's acceptance levels; a failed gate is reported, not raised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from practicum.select.rater import initial_rater, proxy_losses, rate
from practicum.select.selectors import normalise_within_class

INIT_SPEARMAN_MAX = 0.5
SEED_SPEARMAN_MIN = 0.5
LOSS_SPEARMAN_MIN = 0.2
HARMFUL_RANK_MIN = 0.5


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def within_class(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return normalise_within_class(values, labels)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """A seeded subset of row indices (sorted; all rows when size >= n)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def kind_ranks(ranks: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """Mean within-class rank percentile per kind, 0 = top (`ranks` are within-class percentiles, 1 = top)."""
    return {k: round(float(1 - ranks[kinds == k].mean()), 4) for k in sorted(set(kinds.tolist()))}


def check_gates(ratings: np.ndarray, init_ratings: np.ndarray, neg_losses: np.ndarray, labels: np.ndarray, *,
                second_ratings: np.ndarray | None = None, kinds: np.ndarray | None = None,
                harmful_kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    """The gates' values, their checks and `passed` (the seed gate counts only when it was run)."""
    ranks = within_class(ratings, labels)
    gates: dict[str, Any] = {
        "rows": int(len(ratings)),
        "init_spearman": round(spearman(ranks, within_class(init_ratings, labels)), 4),
        "loss_spearman": round(spearman(ranks, within_class(neg_losses, labels)), 4),
        "seed_spearman": None if second_ratings is None else
        round(spearman(ranks, within_class(second_ratings, labels)), 4),
    }
    checks = {"init": gates["init_spearman"] < INIT_SPEARMAN_MAX, "loss": gates["loss_spearman"] > LOSS_SPEARMAN_MIN}
    if gates["seed_spearman"] is not None:
        checks["seeds"] = gates["seed_spearman"] > SEED_SPEARMAN_MIN
    if kinds is not None:
        kinds = np.asarray(kinds).astype(str)
        gates["kind_rank"] = kind_ranks(ranks, kinds)
        harmful = np.isin(kinds, harmful_kinds)
        if harmful.any():
            gates["harmful_rank"] = round(float(1 - ranks[harmful].mean()), 4)
            checks["kinds"] = gates["harmful_rank"] > HARMFUL_RANK_MIN
    gates["thresholds"] = {"init_spearman_max": INIT_SPEARMAN_MAX, "seed_spearman_min": SEED_SPEARMAN_MIN,
                           "loss_spearman_min": LOSS_SPEARMAN_MIN, "harmful_rank_min": HARMFUL_RANK_MIN}
    gates["checks"] = checks
    gates["failed"] = sorted(name for name, ok in checks.items() if not ok)
    gates["passed"] = not gates["failed"]
    return gates


def rater_gates(trainer, x: torch.Tensor, y: torch.Tensor, *, second=None, kinds: np.ndarray | None = None,
                harmful_kinds: tuple[str, ...] = (), seed: int = 0) -> dict[str, Any]:
    """Rate the rows with the trained rater, its initialisation (and `second`, another trained
    RaterTrainer), score them by the proxy's loss, and check the gates. Instance ratings: batch-free."""
    s = trainer.settings
    init = initial_rater(s, trainer.input_shape, trainer.num_classes).to(trainer.device)
    ratings = rate(trainer.rater, x, y, mode="instance")
    return check_gates(ratings, rate(init, x, y, mode="instance"), -proxy_losses(trainer, x, y, seed=seed),
                       y.numpy(), second_ratings=None if second is None else rate(second.rater, x, y, mode="instance"),
                       kinds=kinds, harmful_kinds=harmful_kinds)


def gate_lines(gates: dict[str, Any]) -> list[str]:
    """What `practicum rate` prints: one line per gate, and a warning line when any failed."""
    def mark(name):
        ok = gates["checks"].get(name)
        return "not run" if ok is None else ("ok" if ok else "FAILED")

    lines = [f"gate init: Spearman with the untrained rater {gates['init_spearman']:+.3f} "
             f"(< {INIT_SPEARMAN_MAX}) {mark('init')}",
             f"gate loss: Spearman with the proxy-loss ranking {gates['loss_spearman']:+.3f} "
             f"(> {LOSS_SPEARMAN_MIN}) {mark('loss')}"]
    seed_value = gates["seed_spearman"]
    lines.append("gate seeds: not run (--seed-check trains a second rater)" if seed_value is None else
                 f"gate seeds: Spearman with a second seed {seed_value:+.3f} (> {SEED_SPEARMAN_MIN}) {mark('seeds')}")
    if "kind_rank" in gates:
        ranks = ", ".join(f"{k} {v:.2f}" for k, v in gates["kind_rank"].items())
        harmful = gates.get("harmful_rank")
        tail = "" if harmful is None else f"; harmful {harmful:.2f} (> {HARMFUL_RANK_MIN}) {mark('kinds')}"
        lines.append(f"gate kinds: mean rank percentile (0 = top) {ranks}{tail}")
    if not gates["passed"]:
        lines.append(f"warning: the rater failed its gates ({', '.join(gates['failed'])}); its ratings may be "
                     "its initialisation or noise, not a learned ranking: train longer (--epochs, "
                     "--iterations-per-epoch) or with a larger hold-out before selecting with them")
    return lines


__all__ = ["HARMFUL_RANK_MIN", "INIT_SPEARMAN_MAX", "LOSS_SPEARMAN_MIN", "SEED_SPEARMAN_MIN", "check_gates",
           "gate_lines", "kind_ranks", "rater_gates", "sample_rows", "spearman", "within_class"]
