"""Bootstrap with refits: confidence intervals for parameters, predictions and derived quantities.

Each resample draws the curve's points with replacement (or, when the curve holds repeated
measurements labelled by seed, whole seeds), refits the *same* family from the point estimate
(spec §4.2), and keeps the refitted law. Percentile intervals come from the refits that
succeeded; the failures are counted, never hidden.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from practicum.errors import FitError


@dataclass
class Bootstrap:
    law: Any  # the point-estimate ScalingLaw
    thetas: np.ndarray  # (n_ok, n_params)
    n_requested: int
    n_failed: int
    by: str
    level: float = 0.95
    _laws: list = field(default_factory=list, repr=False)

    @property
    def n_ok(self) -> int:
        return int(self.thetas.shape[0])

    def laws(self) -> list:
        if not self._laws:
            self._laws = [self.law.clone_with(theta) for theta in self.thetas]
        return self._laws

    def _interval(self, samples: np.ndarray, level: float | None) -> tuple[float, float]:
        level = self.level if level is None else level
        samples = samples[np.isfinite(samples)]
        if samples.size == 0:
            return (math.nan, math.nan)
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
        return (float(lo), float(hi))

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {p: self.thetas[:, i] for i, p in enumerate(self.law._fam.params)}

    def param_ci(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        return {p: self._interval(s, level) for p, s in self.params.items()}

    def predict_samples(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.n_ok == 0:
            return np.empty((0, x.size))
        return np.stack([law.predict(x) for law in self.laws()])

    def predict_ci(self, x, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the predictions at x."""
        level = self.level if level is None else level
        samples = self.predict_samples(x)
        if samples.shape[0] == 0:
            nan = np.full(np.atleast_1d(x).shape, np.nan)
            return nan, nan.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo = np.nanquantile(samples, (1 - level) / 2, axis=0)
            hi = np.nanquantile(samples, (1 + level) / 2, axis=0)
        return lo, hi

    def quantity(self, fn: Callable[[Any], float]) -> np.ndarray:
        """`fn(law)` on every refit; NaN where it raises a FitError (e.g. a target out of reach)."""
        out = []
        for law in self.laws():
            try:
                out.append(float(fn(law)))
            except FitError:
                out.append(math.nan)
        return np.asarray(out)

    def ci(self, fn: Callable[[Any], float], level: float | None = None) -> dict[str, Any]:
        """CI of a derived quantity, with the share of refits where it was undefined and a flag
        when the interval spans more than an order of magnitude."""
        samples = self.quantity(fn)
        lo, hi = self._interval(samples, level)
        return {"low": lo, "high": hi, "undefined_fraction": float(np.mean(~np.isfinite(samples)))
                if samples.size else 1.0, "wide": bool(lo > 0 and hi / lo > 10) if np.isfinite(lo + hi) else True}

    def invert_ci(self, target: float, level: float | None = None) -> dict[str, Any]:
        return self.ci(lambda law: law.invert(target), level)

    def to_dict(self, level: float | None = None) -> dict[str, Any]:
        cis = self.param_ci(level)
        return {"n_requested": self.n_requested, "n_ok": self.n_ok, "n_failed": self.n_failed, "by": self.by,
                "level": self.level if level is None else level,
                "params": {p: list(v) for p, v in cis.items()},
                "wide_params": [p for p, (lo, hi) in cis.items()
                                if np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi / lo > 10]}


def run_bootstrap(law, *, n: int = 1000, seed: int = 0, by: str = "auto") -> Bootstrap:
    x, y, w, seeds = law.x_, law.y_, law.w_, law.seeds_
    if by not in ("auto", "points", "seeds"):
        raise FitError(f"unknown bootstrap mode {by!r}", "use auto, points or seeds")
    groups = None
    if seeds is not None and np.unique(seeds).size >= 2 and by in ("auto", "seeds"):
        by = "seeds"
        labels = np.unique(seeds)
        groups = [np.flatnonzero(seeds == s) for s in labels]
    elif by == "seeds":
        raise FitError("a seed bootstrap needs at least two seeds", "pass seeds=, or use by='points'")
    else:
        by = "points"
    rng = np.random.default_rng(seed)
    fam = law._fam
    need = fam.min_points
    thetas, failed = [], 0
    for _ in range(n):
        if groups is not None:
            pick = rng.integers(0, len(groups), len(groups))
            idx = np.concatenate([groups[i] for i in pick])
        else:
            idx = rng.integers(0, x.size, x.size)
        if np.unique(x[idx]).size < need:
            failed += 1
            continue
        idx = np.sort(idx)
        refit = law.clone_with(law.theta_)
        refit.warn = False
        refit.x_scale = law.x_scale_  # keep the parameters in the point estimate's units
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refit._fit_family(fam, x[idx], y[idx], w[idx], init=law.theta_)
            if not np.all(np.isfinite(refit.theta_)):
                raise FitError("non-finite refit")
        except FitError:
            failed += 1
            continue
        thetas.append(refit.theta_)
    thetas_arr = np.array(thetas) if thetas else np.empty((0, fam.n_params))
    return Bootstrap(law=law, thetas=thetas_arr, n_requested=n, n_failed=failed, by=by)
