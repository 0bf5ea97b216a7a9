"""Comparing two strategies' learning curves: the data multiplier and the crossover point.

Data multiplier (spec §10): m = x_A(y*) / x_B(y*), the ratio of the data each strategy's law
needs to reach a common target y*. m > 1 means B reaches the target with m times less data.
The default target is A's best observed value (the best mean over repeated measurements at one
size). The CI comes from refitting both laws on bootstrap resamples and taking percentiles of
the ratio; resamples where a law cannot reach the target are counted, not hidden.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from practicum.errors import FitError
from practicum.scaling.law import ScalingLaw, check_curve, loss_space


@dataclass
class MultiplierResult:
    multiplier: float
    ci: tuple[float, float]
    target: float
    x_a: float
    x_b: float
    crossover: float | None
    family_a: str
    family_b: str
    metric: str
    level: float
    n_boot: int
    undefined_fraction: float
    law_a: ScalingLaw = field(repr=False, default=None)
    law_b: ScalingLaw = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "ci": list(self.ci), "level": self.level, "target": self.target,
                "metric": self.metric, "x_a_at_target": self.x_a, "x_b_at_target": self.x_b,
                "crossover": self.crossover, "family_a": self.family_a, "family_b": self.family_b,
                "n_boot": self.n_boot, "undefined_fraction": self.undefined_fraction,
                "law_a": self.law_a.to_dict() if self.law_a is not None else None,
                "law_b": self.law_b.to_dict() if self.law_b is not None else None}

    def summary(self) -> str:
        cross = "none in range" if self.crossover is None else f"{self.crossover:.4g}"
        return (f"data multiplier {self.multiplier:.3g} (95% CI {self.ci[0]:.3g}..{self.ci[1]:.3g}) at "
                f"{self.metric} {self.target:.4g}: A needs {self.x_a:.4g}, B needs {self.x_b:.4g}; "
                f"crossover {cross}")


def best_observed(x, y, metric: str) -> float:
    """The best mean value over the measurements at one size (in the user's metric)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    sizes = np.unique(x)
    means = np.array([y[x == s].mean() for s in sizes])
    lossy = loss_space(means, metric)
    return float(means[int(np.argmin(lossy))])


def crossover(law_a: ScalingLaw, law_b: ScalingLaw, lo: float, hi: float, n_grid: int = 512) -> float | None:
    """The smallest x in [lo, hi] where the two laws' predictions cross (sign change), or None."""
    grid = np.geomspace(lo, hi, n_grid)
    with np.errstate(all="ignore"):
        diff = law_a.predict(grid) - law_b.predict(grid)
    ok = np.isfinite(diff)
    sign = np.sign(diff)
    for i in range(n_grid - 1):
        if ok[i] and ok[i + 1] and sign[i] != 0 and sign[i] != sign[i + 1]:
            f = lambda lx: float(law_a.predict(np.exp(lx)) - law_b.predict(np.exp(lx)))  # noqa: E731
            return float(np.exp(brentq(f, np.log(grid[i]), np.log(grid[i + 1]), xtol=1e-12)))
        if ok[i] and sign[i] == 0 and i > 0:
            return float(grid[i])
    return None


def data_multiplier(x_a, y_a, x_b, y_b, *, target: float | None = None, metric: str = "error",
                    family: str = "auto", family_a: str | None = None, family_b: str | None = None,
                    seeds_a=None, seeds_b=None, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                    crossover_range: tuple[float, float] | None = None, **fit_opts) -> MultiplierResult:
    """How much less data strategy B needs than A to reach `target` (default: A's best observed).

    Both curves are fitted (`family`, or `family_a`/`family_b`), then m = x_A(y*)/x_B(y*). The
    crossover is searched over the union of the two curves' x ranges (or `crossover_range`).
    """
    xa, ya, _, sa = check_curve(x_a, y_a, metric=metric, seeds=seeds_a)
    xb, yb, _, sb = check_curve(x_b, y_b, metric=metric, seeds=seeds_b)
    target = best_observed(xa, ya, metric) if target is None else float(target)
    law_a = ScalingLaw(family_a or family, metric=metric, **fit_opts).fit(xa, ya, seeds=sa)
    law_b = ScalingLaw(family_b or family, metric=metric, **fit_opts).fit(xb, yb, seeds=sb)
    try:
        need_a = law_a.invert(target)
        need_b = law_b.invert(target)
    except FitError as exc:
        raise FitError(f"cannot compare at target {target:g}: {exc.problem}",
                       "pass a target both curves reach (--target)") from None
    multiplier = need_a / need_b
    lo, hi = crossover_range or (min(xa.min(), xb.min()), max(xa.max(), xb.max()))
    cross = crossover(law_a, law_b, lo, hi)
    ratios = np.full(n_boot, np.nan)
    if n_boot > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot_a = law_a.bootstrap(n_boot, seed=seed)
            boot_b = law_b.bootstrap(n_boot, seed=seed + 1)
        need_as = boot_a.quantity(lambda law: law.invert(target))
        need_bs = boot_b.quantity(lambda law: law.invert(target))
        m = min(need_as.size, need_bs.size)
        ratios[:m] = need_as[:m] / need_bs[:m]
    finite = ratios[np.isfinite(ratios)]
    if finite.size:
        ci = tuple(float(v) for v in np.quantile(finite, [(1 - level) / 2, (1 + level) / 2]))
    else:
        ci = (math.nan, math.nan)
    return MultiplierResult(multiplier=float(multiplier), ci=ci, target=target, x_a=float(need_a),
                            x_b=float(need_b), crossover=cross, family_a=law_a.family_, family_b=law_b.family_,
                            metric=metric, level=level, n_boot=n_boot,
                            undefined_fraction=float(1 - finite.size / n_boot) if n_boot else 0.0,
                            law_a=law_a, law_b=law_b)
