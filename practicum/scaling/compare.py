"""Comparing two strategies' learning curves: the data multiplier and the crossover point.

Data multiplier (spec §10): m = x_A(y*) / x_B(y*), the ratio of the data each strategy's law
needs to reach a common target y*. m > 1 means B reaches the target with m times less data
(m < 1: B needs 1/m times more). Both curves use one family (chosen over both for "auto"), so m
measures data efficiency, not a difference in model choice. The default target is A's best
observed value (the best mean over repeated measurements at one size). The CI comes from the
refits of `practicum.scaling.bootstrap`: with one seed per curve, percentiles of the ratio over
paired point resamples (a resample where a law cannot reach the target counts as unbounded, not
hidden and not as 0); with repeated seeds, a t interval on log m whose variance adds the two
curves' leave-one-seed-out jackknife variances (Welch–Satterthwaite degrees of freedom).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from practicum.errors import FitError
from practicum.scaling.bootstrap import (METHOD_NOTES, calibration_note, choose_unit, interval_ok, log_spread,
                                         made_at, n_seed_labels)
from practicum.scaling.law import ScalingLaw, check_curve, loss_space, rank_shared
from practicum.stats import t_quantile


@dataclass
class MultiplierResult:
    multiplier: float
    ci: tuple | None  # None: no interval (see ci_note); a None bound: unbounded (a law never reaches the target)
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
    ci_note: str = ""
    bootstrap_unit: str | None = None
    unreached_a: float = 0.0  # share of resamples where A's law never reaches the target
    unreached_b: float = 0.0
    law_a: ScalingLaw = field(repr=False, default=None)
    law_b: ScalingLaw = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "ci": None if self.ci is None else list(self.ci), "level": self.level,
                "ci_note": self.ci_note, "bootstrap_unit": self.bootstrap_unit, "target": self.target,
                "metric": self.metric, "x_a_at_target": self.x_a, "x_b_at_target": self.x_b,
                "crossover": self.crossover, "family_a": self.family_a, "family_b": self.family_b,
                "n_boot": self.n_boot, "undefined_fraction": self.undefined_fraction,
                "unreached_fraction_a": self.unreached_a, "unreached_fraction_b": self.unreached_b,
                "law_a": self.law_a.to_dict() if self.law_a is not None else None,
                "law_b": self.law_b.to_dict() if self.law_b is not None else None}

    def wording(self) -> str:
        """"B needs m× less data" when B is better, "B needs 1/m× more data" when it is worse."""
        m = self.multiplier
        if m >= 1:
            return f"B needs {m:.3g}x less data than A"
        return f"B needs {1 / m:.3g}x more data than A"

    def summary(self) -> str:
        cross = "none in range" if self.crossover is None else f"{self.crossover:.4g}"
        if self.ci is not None:
            fmt = lambda v: "unbounded" if v is None else f"{v:.3g}"  # noqa: E731
            interval = (f": data multiplier {self.multiplier:.3g} ({self.level:.0%} CI {fmt(self.ci[0])}..{fmt(self.ci[1])}"
                        f"; {self.ci_note})")
        else:
            interval = f": data multiplier {self.multiplier:.3g} (no interval: {self.ci_note})"
        family = (f"family {self.family_a}" if self.family_a == self.family_b
                  else f"families {self.family_a} (A) / {self.family_b} (B)")
        return (f"{self.wording()}{interval} at {self.metric} {self.target:.4g}: A needs {self.x_a:.4g}, "
                f"B needs {self.x_b:.4g}; {family}; crossover {cross}")


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


def _fit_pair(xa, ya, sa, xb, yb, sb, *, family, family_a, family_b, metric, fit_opts):
    """Both laws. With `family="auto"` (and no per-curve family) one family is chosen for both
    curves together (`rank_shared`): the best-ranked candidate that fits both."""
    if family == "auto" and family_a is None and family_b is None:
        ranked = rank_shared([(xa, ya), (xb, yb)], metric=metric, **fit_opts)
        for name in ranked + (["last1"] if "last1" not in ranked else []):
            try:
                law_a = ScalingLaw(name, metric=metric, **fit_opts).fit(xa, ya, seeds=sa)
                law_b = ScalingLaw(name, metric=metric, **fit_opts).fit(xb, yb, seeds=sb)
            except FitError:
                continue
            law_a.auto_scores_ = law_b.auto_scores_ = getattr(law_a, "auto_scores_", None)
            return law_a, law_b
        raise FitError("no candidate family fits both curves", "choose a family with --family")
    law_a = ScalingLaw(family_a or family, metric=metric, **fit_opts).fit(xa, ya, seeds=sa)
    law_b = ScalingLaw(family_b or family, metric=metric, **fit_opts).fit(xb, yb, seeds=sb)
    return law_a, law_b


def ratio_interval(need_a: np.ndarray, need_b: np.ndarray, level: float) -> tuple[tuple[float, float] | None, dict]:
    """Percentile interval of x_A/x_B over paired resamples. A resample where a law never reaches
    the target (NaN) is not dropped and not counted as a multiplier of 0: B never reaching it
    means B needs more than any finite amount (the ratio ranks below every finite one), A never
    reaching it ranks above every finite one. A bound that lands on such a resample is
    unbounded (returned as None); resamples where neither reaches it are undefined."""
    a_none, b_none = ~np.isfinite(need_a), ~np.isfinite(need_b)
    both = a_none & b_none
    key = np.where(b_none, -np.inf, np.where(a_none, np.inf, need_a / np.where(b_none, 1.0, need_b)))
    key = key[~both]
    info = {"unreached_a": float(np.mean(a_none)) if a_none.size else 0.0,
            "unreached_b": float(np.mean(b_none)) if b_none.size else 0.0,
            "undefined": float(np.mean(both)) if both.size else 1.0}
    if key.size == 0:
        return None, info
    lo, hi = np.quantile(key, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return (None if lo == -np.inf else float(lo), None if hi == np.inf else float(hi)), info


def _log_spread(boot, target: float, center: float) -> tuple[float, float]:
    """(se of log x_needed, degrees of freedom) of one curve's refits: the jackknife's for seeds,
    the bootstrap standard deviation (a normal, df = inf) for points; NaN when a refit never
    reaches the target."""
    samples = boot.invert_samples(target)
    if boot.by == "seeds":
        return log_spread(center, samples) if boot.complete else (np.nan, np.nan)
    if not (center > 0 and samples.size > 1 and np.all(np.isfinite(samples)) and np.all(samples > 0)):
        return np.nan, np.nan
    return float(np.std(np.log(samples), ddof=1)), np.inf


def multiplier_interval(boot_a, boot_b, target: float, need_a: float, need_b: float,
                        level: float) -> tuple[tuple[float | None, float | None] | None, dict]:
    """Interval of m = need_a/need_b. Both point bootstraps: `ratio_interval` over paired
    resamples. Otherwise (a seed jackknife on either side): exp(log m ± t·se) with se² the sum
    of the two log variances and Welch–Satterthwaite degrees of freedom; None when a refit
    never reaches the target (then the interval is not defined)."""
    if boot_a.by == "points" and boot_b.by == "points":
        need_as = boot_a.invert_samples(target)
        need_bs = boot_b.invert_samples(target)
        m = min(need_as.size, need_bs.size)
        return ratio_interval(need_as[:m], need_bs[:m], level)
    (se_a, df_a), (se_b, df_b) = _log_spread(boot_a, target, need_a), _log_spread(boot_b, target, need_b)
    info = {"unreached_a": 0.0, "unreached_b": 0.0, "undefined": 0.0}
    if not (np.isfinite(se_a) and np.isfinite(se_b)):
        info["undefined"] = 1.0
        return None, info
    var = se_a ** 2 + se_b ** 2
    parts = [v ** 2 / df for v, df in ((se_a ** 2, df_a), (se_b ** 2, df_b)) if v > 0]
    df = var ** 2 / sum(parts) if parts and sum(parts) > 0 else np.inf
    half = t_quantile(level, df) * np.sqrt(var)
    center = np.log(need_a / need_b)
    return (float(np.exp(center - half)), float(np.exp(center + half))), info


def data_multiplier(x_a, y_a, x_b, y_b, *, target: float | None = None, metric: str = "error",
                    family: str = "auto", family_a: str | None = None, family_b: str | None = None,
                    seeds_a=None, seeds_b=None, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                    crossover_range: tuple[float, float] | None = None, by: str = "auto",
                    **fit_opts) -> MultiplierResult:
    """How much less data strategy B needs than A to reach `target` (default: A's best observed).

    Both curves are fitted with one family (`family`; "auto" chooses it over both curves at
    once; `family_a`/`family_b` override), then m = x_A(y*)/x_B(y*). The interval treats each
    curve by the method `bootstrap.choose_unit` picks (a point bootstrap for one seed, a
    leave-one-seed-out jackknife for two or more) and assumes the chosen family; it is withheld
    (ci=None, with the reason in `ci_note`) when `n_boot` is 0 or the coverage benchmark found it
    unreliable for these seed counts and this method. The
    crossover is searched over the union of the two curves' x ranges (or `crossover_range`).
    """
    xa, ya, _, sa = check_curve(x_a, y_a, metric=metric, seeds=seeds_a)
    xb, yb, _, sb = check_curve(x_b, y_b, metric=metric, seeds=seeds_b)
    target = best_observed(xa, ya, metric) if target is None else float(target)
    law_a, law_b = _fit_pair(xa, ya, sa, xb, yb, sb, family=family, family_a=family_a, family_b=family_b,
                             metric=metric, fit_opts=fit_opts)
    try:
        need_a = law_a.invert(target)
        need_b = law_b.invert(target)
    except FitError as exc:
        raise FitError(f"cannot compare at target {target:g}: {exc.problem}",
                       "pass a target both curves reach (--target)") from None
    multiplier = need_a / need_b
    lo, hi = crossover_range or (min(xa.min(), xb.min()), max(xa.max(), xb.max()))
    cross = crossover(law_a, law_b, lo, hi)
    unit_a, unit_b = choose_unit(sa, by), choose_unit(sb, by)
    unit = unit_a if unit_a == unit_b else f"{unit_a} (A) / {unit_b} (B)"
    ci, info, note = None, {"unreached_a": 0.0, "unreached_b": 0.0, "undefined": 0.0}, ""
    if n_boot <= 0:
        note = "n_boot = 0"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot_a = law_a.bootstrap(n_boot, seed=seed, by=by)
            boot_b = law_b.bootstrap(n_boot, seed=seed + 1, by=by)
        n_seeds = min(n_seed_labels(sa), n_seed_labels(sb))
        calibrated = made_at("multiplier", n_seeds, unit_a, level) if unit_a == unit_b else level
        ci, info = multiplier_interval(boot_a, boot_b, target, need_a, need_b, calibrated)
        if unit_a == unit_b:
            ok, why = interval_ok("multiplier", n_seeds, unit_a, level, law_a.family_)
            why = "; ".join(v for v in (why, calibration_note("multiplier", n_seeds, unit_a, level)) if v)
        else:
            ok, why = True, "this mix of methods was not in the coverage benchmark"
        if ci is None:
            note = ("no resample reached the target" if unit == "points"
                    else "a refit never reaches the target, so the interval is not defined")
        elif not ok:
            ci, note = None, why
        else:
            methods = sorted({METHOD_NOTES[unit_a], METHOD_NOTES[unit_b]})
            note = f"{'; '.join(methods)}; assumes the {law_a.family_} family" + (f"; {why}" if why else "")
    return MultiplierResult(multiplier=float(multiplier), ci=ci, target=target, x_a=float(need_a),
                            x_b=float(need_b), crossover=cross, family_a=law_a.family_, family_b=law_b.family_,
                            metric=metric, level=level, n_boot=n_boot, undefined_fraction=info["undefined"],
                            ci_note=note, bootstrap_unit=unit if n_boot > 0 else None,
                            unreached_a=info["unreached_a"], unreached_b=info["unreached_b"],
                            law_a=law_a, law_b=law_b)
