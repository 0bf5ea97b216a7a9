"""Mode discovery (MGD³ §2): per class, IPC modes of the real data in the generator's space.

The features are what the generator's `encode()` returns, flattened: for a latent model the
VAE posterior mean times the scaling factor, for a pixel model the [-1, 1] pixels themselves,
so a mode lives in the same space and scale as the sampler's predicted clean sample x̂0.

Methods:
- `kmeans` (default): scikit-learn KMeans with k = IPC, random_state 0, n_init "auto";
  the modes are the centroids, in centroid order.
- `gmm`: a Gaussian mixture (diagonal covariances, random_state 0); the modes are its means.
- `random`: IPC real samples drawn at random (the Table 7 "random" row).
Options (all off by default, as in the reference): `closest_point` replaces each mode by the
nearest real feature; `pca` clusters in a PCA(n) projection and maps the centres back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from practicum.errors import ConfigError, DataError

MODE_METHODS = ("kmeans", "gmm", "random")


@dataclass(frozen=True)
class ClassModes:
    """The modes of one class: `centres` (IPC, D) and, per mode, the dataset index of the nearest real sample."""

    label: int
    centres: np.ndarray
    nearest: np.ndarray  # int (IPC,) row indices into the whole feature array


def discover_modes(features: np.ndarray, ipc: int, *, method: str = "kmeans", closest_point: bool = False,
                   pca: int | None = None, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Modes of one class's features (N, D) → (`centres` (ipc, D) float32, `nearest` (ipc,) int).

    `nearest[k]` is the real row closest (Euclidean) to centre k; with `closest_point` the
    centres are those rows. Deterministic for a `random_state`.
    """
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if method not in MODE_METHODS:
        raise ConfigError(f"unknown mode discovery method {method!r}", f"use one of {', '.join(MODE_METHODS)}")
    if ipc < 1:
        raise ConfigError(f"ipc must be at least 1, not {ipc}")
    if len(features) < ipc:
        raise DataError(f"a class has {len(features)} training images, fewer than ipc={ipc}",
                        "lower --ipc or add images to the smallest class")
    if not np.isfinite(features).all():
        raise DataError("the encoded features contain NaN or inf", "check the encoder and the input images")

    space = features
    projector = None
    if pca is not None:
        from sklearn.decomposition import PCA  # lazy: sklearn import costs ~1.5x torch's

        n_components = int(min(pca, len(features), features.shape[1]))
        projector = PCA(n_components=n_components, random_state=random_state).fit(features)
        space = projector.transform(features)

    if method == "kmeans":
        from sklearn.cluster import KMeans  # lazy: sklearn import costs ~1.5x torch's

        centres = KMeans(n_clusters=ipc, random_state=random_state, n_init="auto").fit(space).cluster_centers_
    elif method == "gmm":
        from sklearn.mixture import GaussianMixture  # lazy: sklearn import costs ~1.5x torch's

        gmm = GaussianMixture(n_components=ipc, covariance_type="diag", random_state=random_state,
                              reg_covar=1e-4).fit(space)
        centres = gmm.means_
    else:
        rng = np.random.default_rng(random_state)
        centres = space[np.sort(rng.choice(len(space), size=ipc, replace=False))]

    if projector is not None:
        centres = projector.inverse_transform(centres)
    nearest = nearest_rows(features, centres)
    if closest_point:
        centres = features[nearest]
    return centres.astype(np.float32), nearest


def nearest_rows(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each centre, the index of the closest feature row (Euclidean; ties → lowest index)."""
    f = np.asarray(features, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    d2 = (c**2).sum(1)[:, None] - 2.0 * c @ f.T + (f**2).sum(1)[None, :]
    return np.argmin(d2, axis=1)


def class_modes(features: np.ndarray, labels: np.ndarray, ipc: int, num_classes: int,
                **options) -> list[ClassModes]:
    """`discover_modes` for every class 0..num_classes-1 (features (N, D), labels (N,))."""
    labels = np.asarray(labels)
    result = []
    for label in range(num_classes):
        rows = np.flatnonzero(labels == label)
        if len(rows) == 0:
            raise DataError(f"class {label} has no training images", "every class needs at least ipc images")
        centres, nearest = discover_modes(features[rows], ipc, **options)
        result.append(ClassModes(label, centres, rows[nearest]))
    return result


__all__ = ["MODE_METHODS", "ClassModes", "class_modes", "discover_modes", "nearest_rows"]
