"""Exponential moving averages of weights (the learner's EMA model, the diffusion model's EMA weights).

The decay warms up, as common EMA implementations do: `min(decay, (1 + step) / (10 + step))`, so early
on the average follows the model closely. Floating tensors are averaged, integer ones (counters,
BatchNorm's `num_batches_tracked`) copied.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def ema_decay(step: int, max_decay: float) -> float:
    """The decay for update number `step` (0-based)."""
    return min(max_decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], decay: float, *, blend: str = "lerp") -> None:
    """average ← decay·average + (1 − decay)·current, in place, for each (average, current) pair.

    `blend`: "lerp" (`average.lerp_(current, 1 − decay)`, the learner's) or "mul_add"
    (`average.mul_(decay).add_(current, alpha=1 − decay)`, `practicum diffusion train`'s). They agree
    up to the last bits; both are kept so recorded runs (the learners of every study, the diffusion
    models of benchmarks/select_digits.py) reproduce to the byte.
    """
    if blend not in ("lerp", "mul_add"):
        raise ValueError(f"unknown EMA blend {blend!r}")
    for average, current in pairs:
        if not average.dtype.is_floating_point:
            average.copy_(current)
        elif blend == "lerp":
            average.lerp_(current.detach(), 1.0 - decay)
        else:
            average.mul_(decay).add_(current.detach(), alpha=1 - decay)
