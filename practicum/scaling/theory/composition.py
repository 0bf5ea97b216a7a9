"""Data composition: a joint power-law fit across data mixtures with a shared exponent.

The lecture (§5.1, after Kaplan et al. and Hashimoto 2021) says composition mostly moves the
intercept of the log–log learning curve, not its slope. `fit_composition` fits, in log space,

    full      log y = a_j − α_j·log n     (each mixture its own intercept and slope)
    shared    log y = a_j − α·log n       (shared exponent, per-mixture intercepts)
    pooled    log y = a   − α·log n       (one curve for all)

and tests the nested pairs with F-tests: `slope_p` (full vs shared: do the slopes differ?) and
`intercept_p` (shared vs pooled: do the intercepts differ?). The verdict "intercept, not
slope" needs intercept_p < level and slope_p ≥ level. An optional irreducible error `floor`
(shared, known) is subtracted before taking logs, so the power-law part is what is compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from practicum.errors import DataError


@dataclass
class CompositionFit:
    mixtures: list[str]
    alpha: float                     # shared exponent (y ∝ n^(−α))
    intercepts: dict[str, float]     # per-mixture log-intercepts a_j of the shared fit
    separate_alphas: dict[str, float]
    slope_f: float
    slope_p: float
    intercept_f: float
    intercept_p: float
    rss: dict[str, float]
    level: float = 0.05

    @property
    def verdict(self) -> str:
        moves_intercept = self.intercept_p < self.level
        moves_slope = self.slope_p < self.level
        if moves_intercept and not moves_slope:
            return "composition moves the intercept, not the slope"
        if moves_slope:
            return "composition changes the slope"
        return "no detectable effect of composition"

    def predict(self, mixture: str, n, floor: float = 0.0) -> np.ndarray:
        if mixture not in self.intercepts:
            raise DataError(f"unknown mixture {mixture!r}", f"use one of {', '.join(self.mixtures)}")
        n = np.asarray(n, dtype=float)
        return floor + np.exp(self.intercepts[mixture] - self.alpha * np.log(n))

    def as_dict(self) -> dict:
        return {"mixtures": self.mixtures, "shared_alpha": self.alpha, "intercepts": self.intercepts,
                "separate_alphas": self.separate_alphas, "slope_F": self.slope_f, "slope_p": self.slope_p,
                "intercept_F": self.intercept_f, "intercept_p": self.intercept_p, "rss": self.rss,
                "level": self.level, "verdict": self.verdict}


def _rss(design: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    return coef, float(resid @ resid)


def _f_test(rss_small: float, rss_big: float, extra: int, dof_big: int) -> tuple[float, float]:
    if extra <= 0 or dof_big <= 0:
        return float("nan"), float("nan")
    if rss_big <= 0:
        return float("inf"), 0.0 if rss_small > 0 else 1.0
    f = ((rss_small - rss_big) / extra) / (rss_big / dof_big)
    return float(f), float(stats.f.sf(f, extra, dof_big))


def fit_composition(mixture, n, y, *, floor: float = 0.0, level: float = 0.05) -> CompositionFit:
    """Joint fit over rows (mixture label, data size n, error y); see the module docstring."""
    labels = np.asarray(mixture).astype(str)
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    if not (labels.shape == n.shape == y.shape) or labels.ndim != 1:
        raise DataError("mixture, n and y must be 1-D arrays of the same length", "pass one row per measurement")
    if np.any(n <= 0) or np.any(~np.isfinite(y)):
        raise DataError("data sizes must be positive and errors finite", "drop the bad rows")
    if np.any(y - floor <= 0):
        raise DataError(f"every error must exceed the floor {floor}", "lower the floor (or use floor=0)")
    names = list(dict.fromkeys(labels.tolist()))
    j = len(names)
    if j < 2:
        raise DataError("a composition fit needs at least two mixtures", "give rows for two or more mixtures")
    for name in names:
        if len(np.unique(n[labels == name])) < 2:
            raise DataError(f"mixture {name!r} has fewer than two distinct data sizes", "measure more sizes")
    target = np.log(y - floor)
    logn = np.log(n)
    onehot = (labels[:, None] == np.array(names)[None, :]).astype(float)
    coef_full, rss_full = _rss(np.hstack([onehot, onehot * logn[:, None]]), target)
    coef_shared, rss_shared = _rss(np.hstack([onehot, logn[:, None]]), target)
    _, rss_pooled = _rss(np.column_stack([np.ones_like(logn), logn]), target)
    rows = len(y)
    slope_f, slope_p = _f_test(rss_shared, rss_full, j - 1, rows - 2 * j)
    intercept_f, intercept_p = _f_test(rss_pooled, rss_shared, j - 1, rows - j - 1)
    return CompositionFit(
        mixtures=names, alpha=-float(coef_shared[j]),
        intercepts={name: float(coef_shared[i]) for i, name in enumerate(names)},
        separate_alphas={name: -float(coef_full[j + i]) for i, name in enumerate(names)},
        slope_f=slope_f, slope_p=slope_p, intercept_f=intercept_f, intercept_p=intercept_p,
        rss={"full": rss_full, "shared_slope": rss_shared, "pooled": rss_pooled}, level=level)


def synthetic_curves(intercepts: dict[str, float], alphas: dict[str, float] | float, sizes, *, noise: float = 0.05,
                     repeats: int = 1, seed: int = 0):
    """Rows (mixture, n, y) from y = exp(a_j)·n^(−α_j)·exp(noise·ε): a known answer for tests."""
    rng = np.random.default_rng(seed)
    rows_m, rows_n, rows_y = [], [], []
    for name, a in intercepts.items():
        alpha = alphas[name] if isinstance(alphas, dict) else alphas
        for size in sizes:
            for _ in range(repeats):
                rows_m.append(name)
                rows_n.append(float(size))
                rows_y.append(float(np.exp(a - alpha * np.log(size) + noise * rng.standard_normal())))
    return np.array(rows_m), np.array(rows_n), np.array(rows_y)


def digits_mixture_curves(mixtures: dict[str, list[float]], sizes, *, repeats: int = 6, seed: int = 0):
    """Real composition curves on the built-in digits: for each mixture (a weight per class for
    sampling the training subset), the 1-NN test error at each size, one row per repeat."""
    from sklearn.neighbors import KNeighborsClassifier  # lazy: sklearn import costs ~1.5x torch's

    from practicum.data import load_digits  # lazy: torch import costs seconds (via practicum.data)

    train, test = load_digits("train"), load_digits("test")
    x_tr = np.asarray(train.images, dtype=float).reshape(len(train.labels), -1)
    x_te = np.asarray(test.images, dtype=float).reshape(len(test.labels), -1)
    y_tr, y_te = np.asarray(train.labels), np.asarray(test.labels)
    rng = np.random.default_rng(seed)
    rows_m, rows_n, rows_y = [], [], []
    for name, weights in mixtures.items():
        w = np.asarray(weights, dtype=float)
        if w.shape != (train.num_classes,) or np.any(w < 0) or w.sum() <= 0:
            raise DataError(f"mixture {name!r} needs {train.num_classes} non-negative class weights",
                            "give one weight per class")
        prob = w[y_tr]
        prob = prob / prob.sum()
        for size in sizes:
            if size > np.count_nonzero(prob):
                raise DataError(f"mixture {name!r} cannot draw {size} distinct examples", "use smaller sizes")
            for _ in range(repeats):
                idx = rng.choice(len(y_tr), size=int(size), replace=False, p=prob)
                model = KNeighborsClassifier(n_neighbors=1).fit(x_tr[idx], y_tr[idx])
                rows_m.append(name)
                rows_n.append(float(size))
                rows_y.append(float(np.mean(model.predict(x_te) != y_te)))
    return np.array(rows_m), np.array(rows_n), np.array(rows_y)
