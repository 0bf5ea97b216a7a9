"""Intervals for a fitted law: parameters, predictions and derived quantities (x needed, ratios).

Two methods, chosen by the data (`choose_unit`):

- **One seed (or `by="points"`): percentile bootstrap over points.** Points drawn with
  replacement, each resample refitted with the *same* family from the point estimate (spec
  §4.2); the interval is the 2.5–97.5 % percentiles of the refits. Assumes the points are
  independent given the curve.
- **Two or more seeds: leave-one-seed-out jackknife with a Student t.** Each seed's whole run
  is left out once and the law refitted on the others; on the log scale of a positive quantity
  q (the identity scale otherwise) the interval is log q̂ ± t_{S−1} · se, with the jackknife
  se² = (S−1)/S · Σ (log q_(i) − mean)². Repeated runs share a seed's noise (its data order,
  initialisation), so points of one seed are not independent: a point bootstrap ignored that,
  and a seed bootstrap with 3–5 seeds has too few distinct resamples — both ran narrow (84–91 %
  coverage of a nominal 95 %, docs/benchmarks.md "Issue 15"). The jackknife treats each seed as
  one independent replicate, and the t quantile with S−1 degrees of freedom pays for estimating
  the spread from S of them. Assumes seeds are independent replicates and log q roughly normal
  across them; it needs only S refits.

Either way the interval assumes the fitted family, and a band is a confidence band of the mean
curve, not a prediction band for a new run. Failed refits are counted, never hidden.

`interval_ok(quantity, n_seeds, unit)` says whether the nominal-95 % interval of a quantity passed
the coverage benchmark (benchmarks/scaling_coverage.py, 93–97 %) for that seed structure and
method; the CLI prints only intervals that did, with the method's assumptions beside them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from practicum.errors import FitError
from practicum.scaling.curve import loss_space
from practicum.stats import t_quantile

METHOD_NOTES = {
    "points": "percentile bootstrap over points; assumes independent points",
    "seeds": "leave-one-seed-out jackknife with a Student t on the log scale; assumes independent seeds "
             "and a roughly log-normal spread across them",
}


def t_interval(center: np.ndarray, samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Jackknife-t interval around `center` from leave-one-out values `samples` (m, ...), per
    column: on the log scale where the center and every sample are positive, else as they are.
    NaN where a leave-one-out value is not finite (e.g. a refit never reaches a target)."""
    center = np.asarray(center, dtype=float)
    samples = np.asarray(samples, dtype=float)
    m = samples.shape[0]
    nan = np.full(center.shape, np.nan)
    if m < 2:
        return nan, nan.copy()
    with np.errstate(all="ignore"):
        positive = (center > 0) & np.all(samples > 0, axis=0)
        g = np.where(positive, np.log(np.where(positive, samples, 1.0)), samples)
        g0 = np.where(positive, np.log(np.where(positive, center, 1.0)), center)
        se = np.sqrt((m - 1) / m * np.sum((g - g.mean(axis=0)) ** 2, axis=0))
        half = t_quantile(level, m - 1) * se
        lo = np.where(positive, np.exp(g0 - half), g0 - half)
        hi = np.where(positive, np.exp(g0 + half), g0 + half)
    ok = np.all(np.isfinite(samples), axis=0) & np.isfinite(center)
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def log_spread(center: float, samples: np.ndarray) -> tuple[float, float]:
    """(se of log q, degrees of freedom) of a jackknife; (nan, nan) if it is not defined."""
    samples = np.asarray(samples, dtype=float)
    m = samples.size
    if m < 2 or not (center > 0 and np.all(np.isfinite(samples)) and np.all(samples > 0)):
        return math.nan, math.nan
    g = np.log(samples)
    return float(np.sqrt((m - 1) / m * np.sum((g - g.mean()) ** 2))), float(m - 1)


@dataclass
class Bootstrap:
    law: Any  # the point-estimate ScalingLaw
    thetas: np.ndarray  # (n_ok, n_params): bootstrap refits ("points") or leave-one-seed-out refits ("seeds")
    n_requested: int
    n_failed: int
    by: str  # "points" or "seeds": the method (module docstring)
    level: float = 0.95
    _laws: list = field(default_factory=list, repr=False)
    _inverted: dict = field(default_factory=dict, repr=False)

    @property
    def n_ok(self) -> int:
        return int(self.thetas.shape[0])

    @property
    def complete(self) -> bool:
        """A jackknife needs every leave-one-seed-out refit; a bootstrap any that succeeded."""
        return self.n_ok > 0 and (self.by == "points" or self.n_failed == 0)

    def laws(self) -> list:
        if not self._laws:
            self._laws = [self.law.clone_with(theta) for theta in self.thetas]
        return self._laws

    def _interval(self, samples: np.ndarray, center: float, level: float | None) -> tuple[float, float]:
        level = self.level if level is None else level
        if not self.complete:
            return (math.nan, math.nan)
        if self.by == "seeds":
            lo, hi = t_interval(np.array(center), samples, level)
            return (float(lo), float(hi))
        samples = samples[np.isfinite(samples)]
        if samples.size == 0:
            return (math.nan, math.nan)
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
        return (float(lo), float(hi))

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {p: self.thetas[:, i] for i, p in enumerate(self.law._fam.params)}

    def param_ci(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        return {p: self._interval(s, float(self.law.theta_[i]), level)
                for i, (p, s) in enumerate(self.params.items())}

    def predict_samples(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.n_ok == 0:
            return np.empty((0, x.size))
        return np.stack([law.predict(x) for law in self.laws()])

    def predict_ci(self, x, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise band of the predictions at x (of the mean curve)."""

        level = self.level if level is None else level
        x = np.atleast_1d(np.asarray(x, dtype=float))
        samples = self.predict_samples(x)
        if not self.complete:
            nan = np.full(x.shape, np.nan)
            return nan, nan.copy()
        if self.by == "seeds":
            # on the log of the lower-is-better value (error = 1 − accuracy), so bounds stay valid
            metric = self.law.metric
            lo, hi = t_interval(loss_space(self.law.predict(x), metric), loss_space(samples, metric), level)
            if metric == "accuracy":
                lo, hi = 1.0 - hi, 1.0 - lo
            elif metric == "error":
                hi = np.minimum(hi, 1.0)
            return lo, hi
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo = np.nanquantile(samples, (1 - level) / 2, axis=0)
            hi = np.nanquantile(samples, (1 + level) / 2, axis=0)
        return lo, hi

    def quantity(self, fn: Callable[[Any], float]) -> np.ndarray:
        """`fn(law)` on every refit; NaN where it raises a FitError (e.g. a target out of reach)."""
        return np.asarray([_value(fn, law) for law in self.laws()])

    def ci(self, fn: Callable[[Any], float], level: float | None = None, samples: np.ndarray | None = None
           ) -> dict[str, Any]:
        """CI of a derived quantity, with the share of refits where it was undefined and a flag
        when the interval spans more than an order of magnitude (`samples`: fn on every refit, if known)."""
        samples = self.quantity(fn) if samples is None else samples
        lo, hi = self._interval(samples, _value(fn, self.law), level)
        return {"low": lo, "high": hi, "undefined_fraction": float(np.mean(~np.isfinite(samples)))
                if samples.size else 1.0, "wide": is_wide(lo, hi)}

    def invert_samples(self, target: float) -> np.ndarray:
        """x needed for `target` on every refit (NaN where out of reach), kept per target: an interval,
        a multiplier and a spread of the same target all read the same root finds."""
        key = float(target)
        if key not in self._inverted:
            self._inverted[key] = self.quantity(lambda law: law.invert(key))
        return self._inverted[key]

    def invert_ci(self, target: float, level: float | None = None) -> dict[str, Any]:
        return self.ci(lambda law: law.invert(target), level, samples=self.invert_samples(target))

    def note(self) -> str:
        if self.by == "seeds":
            done = f"{self.n_ok} of {self.n_requested} leave-one-seed-out refits succeeded"
        else:
            done = f"{self.n_ok} of {self.n_requested} refits succeeded"
        return (f"{METHOD_NOTES[self.by]} ({done}); intervals assume the {self.law.family_} family and bands "
                "are confidence bands of the mean curve")

    def to_dict(self, level: float | None = None) -> dict[str, Any]:
        cis = self.param_ci(level)
        return {"n_requested": self.n_requested, "n_ok": self.n_ok, "n_failed": self.n_failed, "by": self.by,
                "method": "jackknife-t" if self.by == "seeds" else "percentile",
                "note": self.note(),
                "level": self.level if level is None else level,
                "params": {p: list(v) for p, v in cis.items()},
                "wide_params": [p for p, (lo, hi) in cis.items() if is_wide(lo, hi)]}


def _value(fn: Callable[[Any], float], law) -> float:
    try:
        return float(fn(law))
    except FitError:
        return math.nan


#: Intervals whose empirical coverage of a nominal 95 % fell outside 93–97 % in
#: benchmarks/scaling_coverage.py (true family fitted), by (quantity, seed structure, method):
#: they are not printed. quantity: "prediction" (y at an extrapolated x), "x_needed", "multiplier".
#: See docs/benchmarks.md, "Issue 23 — calibrated intervals".
COVERAGE_FAILED: dict[tuple[str, str, str], str] = {
    # one seed, the percentile bootstrap over points (issue 23; five sets of 400 curves): prediction 93.2 % of
    # 2,000 passes; x needed (90.2 % of 1,200) is calibrated below; the multiplier covered 89.2 % of 1,200 and
    # made at its calibrated 97.5 % it over-covered (97.4 % of 800 fresh curves), so it stays withheld
    ("multiplier", "1", "points"): "89.2 % (1,200 curves; 97.4 % when made at a calibrated 97.5 %)",
    # (2-4 seeds, the jackknife, x needed: 92.2 % on the first 400 curves with noise growing as y shrinks,
    # 96.3 % and 94.3 % on two fresh sets of 400, so 94.3 % of 1,200; 94.0 % and 94.5 % under flat noise.
    # The first set's shortfall was sampling noise: at 400 curves the band is ±1.7 standard errors wide.)
    # a point bootstrap of repeated runs ignores the per-seed correlation (measured with 3 seeds)
    **{(q, s, "points"): v for s in ("2-4", "5-9", "10+")
       for q, v in (("prediction", "91 %"), ("x_needed", "88 %"), ("multiplier", "89 %"))},
}
# the same benchmark with the truth and the fitted law both M4 (issue 23: 200 curves, then two fresh sets of
# 400, pooled): the jackknife's cells below 93 % for that family only. With 10 seeds M4's saturation level
# moves little between leave-one-seed-out refits, so the spread understates the error. (The 3-seed prediction,
# 92.5 % on the first 200 curves, covered 93.5 % and 94.5 % on the fresh sets: 93.7 % of 1,000, printed.)
COVERAGE_FAILED_FAMILY: dict[tuple[str, str, str, str], str] = {
    ("M4", "prediction", "10+", "seeds"): "89.2 % (M4, 1,000 curves)",
    ("M4", "x_needed", "10+", "seeds"): "91.2 % (M4, 1,000 curves)",
    # `auto` (the family chosen from the data) on an M2 truth: the jackknife refits the chosen family only,
    # so with few seeds it misses the selection's own uncertainty (88.5 % before the error-rate prior)
    ("auto", "prediction", "2-4", "seeds"): "89.5 % (auto on an M2 truth, 200 curves)",
}
COVERAGE_TESTED_LEVEL = 0.95
#: Calibrated cells: the nominal level at which the interval is made so that it covers 95 % in the
#: benchmark (`scaling_coverage.py --levels`, M2 truth and fit): the smallest level of the grid reaching 95 %
#: on 800 curves (seeds 100, 200), adopted only if it lands inside 93-97 % on 800 fresh ones (seeds 300,
#: 400). Keyed like COVERAGE_FAILED; used for 95 % intervals only (it says nothing about other levels).
CALIBRATED_LEVEL: dict[tuple[str, str, str], float] = {
    # one seed, x needed: 90.2 % of 1,200 curves at 95 %; at 98 %: 95.0 % (choosing set), 95.1 % (fresh set)
    ("x_needed", "1", "points"): 0.98,
}


def n_seed_labels(seeds) -> int:
    return 1 if seeds is None else int(np.unique(np.asarray(seeds)).size)


def seed_structure(n_seeds: int) -> str:
    """The benchmark's seed structures: "1", "2-4" (measured at 3), "5-9" (at 5), "10+"."""
    return "1" if n_seeds <= 1 else "2-4" if n_seeds < 5 else "5-9" if n_seeds < 10 else "10+"


def choose_unit(seeds, by: str = "auto") -> str:
    """ "seeds" (the leave-one-seed-out jackknife) when asked, or for "auto" whenever the curve
    has two or more seed labels; "points" (the percentile bootstrap) otherwise."""
    if by not in ("auto", "points", "seeds"):
        raise FitError(f"unknown bootstrap mode {by!r}", "use auto, points or seeds")
    n = n_seed_labels(seeds)
    if by == "seeds" and (seeds is None or n < 2):
        raise FitError("a seed-level interval needs at least two seeds", "pass seeds=, or use by='points'")
    if by == "seeds" or (by == "auto" and n >= 2):
        return "seeds"
    return "points"


def interval_ok(quantity: str, n_seeds: int, unit: str, level: float = 0.95,
                family: str | tuple[str, ...] | None = None) -> tuple[bool, str]:
    """(print it?, why not / how it was checked) for an interval of `quantity` at this seed count
    made by `unit`'s method, for a law of `family` (or any of several: the chosen family and "auto")
    where the benchmark measured that family."""
    structure = seed_structure(n_seeds)
    families = family if isinstance(family, tuple) else (family,)
    failed = COVERAGE_FAILED.get((quantity, structure, unit)) or next(
        (COVERAGE_FAILED_FAMILY[key] for f in families
         if (key := (f, quantity, structure, unit)) in COVERAGE_FAILED_FAMILY), None)
    if failed is not None:
        return False, (f"withheld: its coverage in benchmarks/scaling_coverage.py was {failed} for "
                       f"{structure} seed(s) with the {unit} method, outside 93-97 %")
    if abs(level - COVERAGE_TESTED_LEVEL) > 1e-9:
        return True, f"coverage benchmarked at 95 % only, not at {level:.0%}"
    return True, ""


def made_at(quantity: str, n_seeds: int, unit: str, level: float = 0.95) -> float:
    """The nominal level to make a `level` interval at: the calibrated one where the benchmark found
    the plain 95 % interval too narrow (CALIBRATED_LEVEL), else `level` itself."""
    if abs(level - COVERAGE_TESTED_LEVEL) > 1e-9:
        return level
    return CALIBRATED_LEVEL.get((quantity, seed_structure(n_seeds), unit), level)


def calibration_note(quantity: str, n_seeds: int, unit: str, level: float = 0.95) -> str:
    """'' or how the interval was calibrated, for printing beside it."""
    nominal = made_at(quantity, n_seeds, unit, level)
    if nominal == level:
        return ""
    return (f"calibrated: made at nominal {nominal:.1%} to cover {level:.0%} of simulated curves of the fitted "
            "family (benchmarks/scaling_coverage.py)")


def is_wide(lo: float, hi: float) -> bool:
    """An interval spanning more than an order of magnitude, or straddling 0 (the sign itself is
    uncertain), or not finite; a degenerate one (a parameter pinned at a bound) is not wide."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return True
    if lo == hi:
        return False
    if lo > 0:
        return hi / lo > 10
    if hi < 0:
        return lo / hi > 10
    return True


def _refit(law, idx) -> np.ndarray | None:
    """The law's family refitted on points `idx`, started from the point estimate (None: failed)."""
    refit = law.clone_with(law.theta_)
    refit.warn = False
    refit.x_scale = law.x_scale_  # keep the parameters in the point estimate's units
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refit._fit_family(law._fam, law.x_[idx], law.y_[idx], law.w_[idx], init=law.theta_)
    except FitError:
        return None
    return refit.theta_ if np.all(np.isfinite(refit.theta_)) else None


def run_bootstrap(law, *, n: int = 1000, seed: int = 0, by: str = "auto") -> Bootstrap:
    """Refits for the intervals: `n` point resamples, or (seeds) one refit per left-out seed."""
    x, seeds = law.x_, law.seeds_
    by = choose_unit(seeds, by)
    need = law._fam.min_points
    if by == "seeds":
        subsets = [np.flatnonzero(seeds != s) for s in np.unique(seeds)]
    else:
        rng = np.random.default_rng(seed)
        subsets = [np.sort(rng.integers(0, x.size, x.size)) for _ in range(n)]
    thetas = []
    for idx in subsets:
        theta = _refit(law, idx) if np.unique(x[idx]).size >= need else None
        if theta is not None:
            thetas.append(theta)
    thetas_arr = np.array(thetas) if thetas else np.empty((0, law._fam.n_params))
    return Bootstrap(law=law, thetas=thetas_arr, n_requested=len(subsets), n_failed=len(subsets) - len(thetas),
                     by=by)
