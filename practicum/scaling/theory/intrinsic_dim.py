"""Intrinsic-dimension estimators: TwoNN (Facco et al. 2017) and Levina–Bickel MLE (2004).

Both look only at nearest-neighbour distances, so they see the dimension D of the manifold the
data lies on, not the ambient dimension of the pixels. Bahri et al. (2021) tie the data-scaling
exponent to it (α ≈ c/D); `learning_curve.dimension_exponent_check` measures both on real data.

TwoNN: with r1 ≤ r2 the distances to the two nearest neighbours, μ = r2/r1 is Pareto(D) under
local uniformity, P(μ > x) = x^(−D). `method="fit"` (Facco's recipe) discards the largest 10 %
of μ and fits −log(1 − F(μ)) = D·log μ through the origin; `method="mle"` is (N−1)/Σ log μ.

Levina–Bickel: for k neighbours at T_1 ≤ … ≤ T_k, m̂_k(x) = [(1/(k−1)) Σ_{j<k} log(T_k/T_j)]⁻¹.
`aggregate="mackay"` (default; MacKay & Ghahramani's correction, less biased) inverts the mean of
the inverses over points; `"mean"` averages m̂_k as in the original paper. The estimate is
averaged over k = k1…k2.

Duplicate points (a zero nearest-neighbour distance) carry no scale information and are dropped.
"""

from __future__ import annotations

import numpy as np

from practicum.errors import DataError

METHODS = ("twonn", "mle")


def _as_points(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2:
        raise DataError(f"points must be a 2-D array (n, features), got shape {x.shape}", "reshape to (n, -1)")
    if not np.all(np.isfinite(x)):
        raise DataError("points contain NaN or infinite values", "clean or drop those rows first")
    x = np.unique(x, axis=0)  # duplicates have zero neighbour distance
    return x


def _neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors  # lazy: sklearn import costs ~1.5x torch's

    if x.shape[0] <= k + 1:
        raise DataError(f"{x.shape[0]} distinct points are too few for {k} neighbours",
                        f"give at least {k + 2} distinct points")
    nn = NearestNeighbors(n_neighbors=k + 1).fit(x)
    dist, _ = nn.kneighbors(x)
    return dist[:, 1:]  # drop the point itself


def twonn(x, method: str = "fit", discard: float = 0.1) -> float:
    """TwoNN intrinsic dimension of the rows of `x` (images are flattened)."""
    if method not in ("fit", "mle"):
        raise DataError(f"unknown TwoNN method {method!r}", "use 'fit' or 'mle'")
    if not 0.0 <= discard < 1.0:
        raise DataError(f"discard fraction {discard} must be in [0, 1)", "use e.g. 0.1")
    dist = _neighbour_distances(_as_points(x), 2)
    mu = dist[:, 1] / dist[:, 0]
    mu = mu[np.isfinite(mu) & (mu > 1.0)]
    if mu.size < 3:
        raise DataError("too few points with distinct neighbour distances for TwoNN", "give more points")
    if method == "mle":
        return float((mu.size - 1) / np.log(mu).sum())
    mu = np.sort(mu)
    n = mu.size
    keep = int(np.floor(n * (1.0 - discard)))
    empirical_cdf = np.arange(1, n + 1) / n
    xs = np.log(mu[:keep])
    ys = -np.log(1.0 - empirical_cdf[:keep])
    return float((xs @ ys) / (xs @ xs))


def levina_bickel(x, k1: int = 10, k2: int = 20, aggregate: str = "mackay") -> float:
    """Levina–Bickel MLE of the intrinsic dimension, averaged over k = k1…k2."""
    if not 2 <= k1 <= k2:
        raise DataError(f"need 2 ≤ k1 ≤ k2 (got k1 = {k1}, k2 = {k2})", "use e.g. k1=10, k2=20")
    if aggregate not in ("mackay", "mean"):
        raise DataError(f"unknown aggregate {aggregate!r}", "use 'mackay' or 'mean'")
    dist = _neighbour_distances(_as_points(x), k2)
    logs = np.log(np.maximum(dist, 1e-300))
    estimates = []
    for k in range(k1, k2 + 1):
        # mean over j < k of log(T_k / T_j): the inverse of the local estimate m̂_k(x). Its
        # sum is Gamma(k−1, D) under local uniformity, so the mean is unbiased for 1/D and the
        # inverse of its average over points is consistent (MacKay–Ghahramani).
        inverse = logs[:, k - 1] - logs[:, : k - 1].mean(axis=1)
        inverse = inverse[inverse > 0]
        if aggregate == "mackay":
            estimates.append(1.0 / inverse.mean())
        else:
            estimates.append(np.mean(1.0 / inverse))
    return float(np.mean(estimates))


def intrinsic_dimension(x, method: str = "twonn", **options) -> float:
    """Dispatch to `twonn` or `levina_bickel` (`method="mle"`)."""
    if method == "twonn":
        return twonn(x, **options)
    if method == "mle":
        return levina_bickel(x, **options)
    raise DataError(f"unknown intrinsic-dimension method {method!r}", f"use one of {', '.join(METHODS)}")


def curved_manifold(n: int, intrinsic: int = 5, ambient: int = 64, seed: int = 0) -> np.ndarray:
    """n points on a smooth `intrinsic`-dimensional manifold curled into `ambient` dimensions.

    Latent z ~ Uniform[0, 2π)^D is mapped by sin/cos of random integer-free frequencies through
    a random rotation, so the set is curved (not a linear subspace) and has no boundary in most
    directions. Used to test the estimators on a known answer.
    """
    if ambient < 2 * intrinsic or ambient % 2:
        raise DataError(f"ambient dimension {ambient} must be even and ≥ 2·intrinsic ({2 * intrinsic})",
                        "raise the ambient dimension")
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.0, 2.0 * np.pi, size=(n, intrinsic))
    freq = rng.normal(0.0, 0.35, size=(intrinsic, ambient // 2))
    # each latent coordinate owns one pure frequency too, so the map is an immersion everywhere
    for i in range(intrinsic):
        freq[:, i] = 0.0
        freq[i, i] = 1.0
    phase = z @ freq
    features = np.concatenate([np.sin(phase), np.cos(phase)], axis=1)
    rotation, _ = np.linalg.qr(rng.standard_normal((ambient, ambient)))
    return features @ rotation
