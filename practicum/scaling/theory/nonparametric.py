"""The nonparametric binning estimator and its dimension-dependent rate (lecture §4.2).

Setting: x ~ Uniform[0, 1]^d, y = f(x) + N(0, σ²) with f Lipschitz. Cut the cube into k^d
bins of side h = 1/k and predict the mean y of the training points in x's bin.

Rate derivation (what `rate(d)` returns and the benchmark measures). The integrated squared
error splits into
* bias²    ≈ (h²/12)·E|∇f|²   (f varies by about h·|∇f| inside a bin),
* variance ≈ σ²·k^d/n          (each bin mean averages about n/k^d noisy labels).
Balancing the two gives h ∝ n^(−1/(2+d)) and

    MSE ∝ n^(−2/(2+d))         (the classical minimax rate for Lipschitz regression).

We measure the **squared error** at this bias–variance-optimal bin width, with n = c0·k^(2+d)
exactly so that the bins tile the cube without rounding: the measured log–log slope is then
−2/(2+d) up to O(k^(−2)) corrections. The lecture's simplified n^(−1/d) agrees with it only at
d = 2 (slope −1/2); in general n^(−1/d) is not the rate of this estimator (for large d the
squared error falls as n^(−2/d), and its square root as n^(−1/d)). Both the
root-mean-square rate n^(−1/(2+d)) and the lecture's are available from `rate(d, kind=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from practicum.errors import ConfigError, DataError

RATE_KINDS = ("mse", "rmse", "lecture")


def rate(d: int, kind: str = "mse", smoothness: float = 1.0) -> float:
    """The exponent a in error ∝ n^(−a) for the binning / local-average estimator in d dimensions.

    `mse`: 2β/(2β+d) (β = `smoothness`, 1 for Lipschitz); `rmse`: β/(2β+d); `lecture`: 1/d.
    """
    if d < 1:
        raise ConfigError(f"dimension d = {d} must be ≥ 1", "give a positive integer")
    if kind == "mse":
        return 2 * smoothness / (2 * smoothness + d)
    if kind == "rmse":
        return smoothness / (2 * smoothness + d)
    if kind == "lecture":
        return 1.0 / d
    raise ConfigError(f"unknown rate kind {kind!r}", f"use one of {', '.join(RATE_KINDS)}")


def default_target(x: np.ndarray) -> np.ndarray:
    """A smooth Lipschitz test function on [0, 1]^d: mean of sin(2π x_j) scaled to unit variance."""
    d = x.shape[1]
    return np.sin(2 * np.pi * x).sum(axis=1) * np.sqrt(2.0 / d)


class BinningRegressor:
    """Piecewise-constant regression on a regular grid over [0, 1]^d (scikit-learn style).

    `bins_per_axis` fixes k; None picks the bias–variance-optimal k = round((n/c0)^(1/(2+d))).
    Empty bins predict the global mean of y.
    """

    def __init__(self, bins_per_axis: int | None = None, c0: float = 1.0):
        self.bins_per_axis = bins_per_axis
        self.c0 = c0

    def _index(self, x: np.ndarray) -> np.ndarray:
        cells = np.clip((x * self.k_).astype(np.int64), 0, self.k_ - 1)
        return np.ravel_multi_index(cells.T, (self.k_,) * x.shape[1])

    def fit(self, x, y) -> "BinningRegressor":
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise DataError(f"need x of shape (n, d) and y of shape (n,), got {x.shape} and {y.shape}",
                            "reshape the inputs")
        if np.any(x < 0) or np.any(x > 1):
            raise DataError("inputs must lie in the unit cube [0, 1]^d", "rescale x first")
        n, d = x.shape
        k = self.bins_per_axis or max(1, int(round((n / self.c0) ** (1.0 / (2 + d)))))
        if k ** d > 50_000_000:
            raise ConfigError(f"{k}^{d} bins are too many", "lower bins_per_axis or the dimension")
        self.k_, self.d_ = k, d
        idx = self._index(x)
        sums = np.bincount(idx, weights=y, minlength=k ** d)
        counts = np.bincount(idx, minlength=k ** d)
        self.fallback_ = float(y.mean())
        self.values_ = np.where(counts > 0, sums / np.maximum(counts, 1), self.fallback_)
        self.empty_fraction_ = float(np.mean(counts == 0))
        return self

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self.values_[self._index(x)]


@dataclass
class RateMeasurement:
    d: int
    sizes: list[int]
    mse: list[float]
    slope: float
    rate: float

    def as_dict(self) -> dict:
        return {"d": self.d, "sizes": self.sizes, "mse": self.mse, "measured_slope": self.slope,
                "documented_slope": -self.rate, "abs_gap": abs(self.slope + self.rate)}


def measure_rate(d: int, ks, *, repeats: int = 8, c0: float = 1.0, noise: float = 1.0, test_points: int = 20_000,
                 seed: int = 0, target=default_target) -> RateMeasurement:
    """Integrated squared error of the binning estimator at n = c0·k^(2+d) for each k in `ks`,
    averaged over `repeats` training sets, and the least-squares log–log slope against n."""
    ks = [int(k) for k in ks]
    if len(ks) < 2 or min(ks) < 1:
        raise ConfigError(f"need at least two bin counts ≥ 1, got {ks}", "e.g. ks=range(4, 12)")
    rng = np.random.default_rng(seed)
    sizes, errors = [], []
    for k in ks:
        n = int(round(c0 * k ** (2 + d)))
        mses = []
        for _ in range(repeats):
            x = rng.random((n, d))
            y = target(x) + noise * rng.standard_normal(n)
            model = BinningRegressor(bins_per_axis=k).fit(x, y)
            xt = rng.random((test_points, d))
            mses.append(float(np.mean((model.predict(xt) - target(xt)) ** 2)))
        sizes.append(n)
        errors.append(float(np.mean(mses)))
    slope = float(np.polyfit(np.log(sizes), np.log(errors), 1)[0])
    return RateMeasurement(d, sizes, errors, slope, rate(d, "mse"))
