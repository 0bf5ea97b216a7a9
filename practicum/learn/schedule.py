"""Warmup-stable-decay (WSD) learning-rate schedule.

The DP paper trains with a linear warm-up over the first 10 % of the iterations, a constant
learning rate, then a cosine cool-down over the last 20 %. The budget is fixed in iterations
up front, so the cool-down start is known in advance (the DP loop adds no data after it).
"""

from __future__ import annotations

import math


def cooldown_start(total_steps: int, cooldown_fraction: float) -> int:
    """First step of the cool-down (steps are counted from 0)."""
    return total_steps - int(round(total_steps * cooldown_fraction))


def warmup_steps(total_steps: int, warmup_fraction: float) -> int:
    return int(round(total_steps * warmup_fraction))


def wsd_factor(step: int, total_steps: int, warmup_fraction: float = 0.1, cooldown_fraction: float = 0.2) -> float:
    """Multiplier of the base learning rate for optimiser step `step` (0-based).

    warm-up: (step + 1) / W for step < W, so the first step already moves;
    stable: 1;  cool-down: 0.5 (1 + cos(pi * (step - C + 1) / (T - C))), reaching 0 at the last step.
    Beyond the budget the factor stays 0.
    """
    if step >= total_steps:
        return 0.0
    warm = warmup_steps(total_steps, warmup_fraction)
    cool = cooldown_start(total_steps, cooldown_fraction)
    if step < warm:
        return (step + 1) / warm
    if step < cool:
        return 1.0
    progress = (step - cool + 1) / max(1, total_steps - cool)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
