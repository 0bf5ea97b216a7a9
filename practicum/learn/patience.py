"""Patience with an incremental maximum, as the DP loop uses it.

"Improves" means beating the best validation accuracy so far. When `count` reaches `t_max`
the loop generates a round of new data, then calls `new_round(pool_size)`, which resets the
count and grows `t_max` by the chosen rule:

- `proportional` (default): T_max(k) = ceil(T_init * |D_k| / N), so the number of passes over
  the pool between two rounds stays about constant as the pool grows;
- `increment`: T_max(k) = T_init + k;
- `fixed`: T_max(k) = T_init (the paper's "fixed T_max" ablation).

The paper does not say whether the best accuracy is reset after a round; default: keep it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PATIENCE_RULES = ("proportional", "increment", "fixed")


def patience_limit(rule: str, t_init: int, rounds: int, pool_size: int, initial_size: int) -> int:
    if rule == "proportional":
        return max(1, math.ceil(t_init * pool_size / initial_size - 1e-9))
    if rule == "increment":
        return t_init + rounds
    if rule == "fixed":
        return t_init
    raise ValueError(f"unknown patience rule {rule!r}; use one of {PATIENCE_RULES}")


@dataclass
class Patience:
    t_init: int
    initial_size: int
    rule: str = "proportional"
    reset_best: bool = False
    best: float = float("-inf")
    count: int = 0
    rounds: int = 0
    t_max: int = 0

    def __post_init__(self) -> None:
        if self.t_max == 0:
            self.t_max = patience_limit(self.rule, self.t_init, 0, self.initial_size, self.initial_size)

    def update(self, accuracy: float) -> bool:
        """Record one evaluation; True if it beat the best so far."""
        if accuracy > self.best:
            self.best = accuracy
            self.count = 0
            return True
        self.count += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.count >= self.t_max

    def new_round(self, pool_size: int) -> None:
        self.rounds += 1
        self.count = 0
        self.t_max = patience_limit(self.rule, self.t_init, self.rounds, pool_size, self.initial_size)
        if self.reset_best:
            self.best = float("-inf")

    def state(self) -> dict:
        out = asdict(self)
        out["best"] = None if math.isinf(self.best) else self.best
        return out

    @classmethod
    def from_state(cls, state: dict) -> "Patience":
        values = dict(state)
        values["best"] = float("-inf") if values.get("best") is None else values["best"]
        return cls(**values)


def round_due(patience: Patience, rounds: int, max_rounds: int | None, step: int | None = None,
              first_step: int = 0, stop_step: int | None = None) -> bool:
    """DP's rule for adding a round now: patience ran out, rounds remain, and (when the step is
    known) the LR warm-up is over and the cool-down, in which nothing is added, has not begun."""
    if not patience.exhausted or (max_rounds is not None and rounds >= max_rounds):
        return False
    return step is None or (first_step <= step and (stop_step is None or step < stop_step))
