"""Near-duplicate removal: perceptual hashes for images, SemDeDup-style clustering for embeddings.

Both return a boolean *keep* mask (True = keep), so they intersect with any other filter.

- `perceptual_hash` is the DCT hash (pHash) of the reference library imagehash: resize to 32x32,
  take the 2-D DCT, keep the top-left 8x8 low frequencies and set a bit where a coefficient exceeds
  their median. Small blur, noise or contrast changes keep most bits.
- `hash_dedup` keeps one image per group of hashes within `max_distance` bits (Hamming),
  preferring the higher `priority` (e.g. a quality score), ties by index.
- `semdedup` (Abbas et al. 2023): k-means on normalised embeddings; within each cluster, walk the
  members from the least to the most central and drop any whose cosine similarity to an already
  kept member exceeds 1 − ε (SemDeDup keeps the member farthest from the centroid).
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

from practicum.errors import ConfigError, DataError
from practicum.log import progress


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Stretch one image to 0..255 (pHash ignores contrast, so any input range hashes alike)."""
    low, high = float(image.min()), float(image.max())
    return np.round((image - low) * (255.0 / max(high - low, 1e-12))).astype(np.uint8)


def perceptual_hash(images, hash_size: int = 8, resize: int = 32) -> np.ndarray:
    """imagehash's pHash of images (N, H, W) or (N, C, H, W) (channels averaged): (N, hash_size²) bools."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x.mean(axis=1)
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"images must be (N, H, W) or (N, C, H, W), got shape {np.shape(images)}")
    if hash_size < 2 or resize % hash_size:
        raise ConfigError(f"resize {resize} must be a multiple of hash_size {hash_size} (>= 2)")
    factor = resize // hash_size
    return np.stack([imagehash.phash(Image.fromarray(_to_uint8(im)), hash_size=hash_size,
                                     highfreq_factor=factor).hash.reshape(-1)
                     for im in progress(x, "hashing images")])


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between two sets of boolean hashes: (len(a), len(b))."""
    a = np.asarray(a, dtype=np.int32)
    b = np.asarray(b, dtype=np.int32)
    return a.shape[1] - (a @ b.T + (1 - a) @ (1 - b).T)


def hash_dedup(hashes, max_distance: int = 4, priority=None, chunk: int = 2048) -> np.ndarray:
    """Keep mask: walk examples by descending priority (ties by index), keep one unless it is within
    `max_distance` bits of an already kept hash."""
    h = np.asarray(hashes, dtype=bool)
    if h.ndim != 2:
        raise DataError(f"hashes must be (N, bits), got shape {h.shape}")
    n = len(h)
    order = np.arange(n) if priority is None else np.lexsort((np.arange(n), -np.asarray(priority, float)))
    keep = np.zeros(n, dtype=bool)
    kept: list[int] = []
    for start in progress(range(0, n, chunk), "comparing hashes"):
        block = order[start:start + chunk]
        # against everything kept in earlier blocks at once, then greedily inside the block
        near_old = (hamming(h[block], h[kept]) <= max_distance).any(axis=1) if kept else np.zeros(len(block), bool)
        inner = hamming(h[block], h[block]) <= max_distance
        taken: list[int] = []
        for j, idx in enumerate(block):
            if near_old[j] or any(inner[j, t] for t in taken):
                continue
            taken.append(j)
            keep[idx] = True
        kept.extend(block[taken].tolist())
    return keep


def semdedup(embeddings, eps: float = 0.05, n_clusters: int = 10, seed: int = 0) -> np.ndarray:
    """Keep mask from SemDeDup: drop members within cosine distance ε of a kept member of their cluster."""
    from sklearn.cluster import KMeans  # lazy: sklearn import costs ~1.5x torch's

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise DataError(f"embeddings must be a finite, non-empty (N, D) array, got shape {x.shape}")
    if not 0 <= eps < 1:
        raise ConfigError(f"eps must be in [0, 1), not {eps}")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = max(1, min(n_clusters, len(x)))
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    keep = np.zeros(len(x), dtype=bool)
    for c in progress(range(k), "deduplicating clusters"):
        members = np.flatnonzero(model.labels_ == c)
        centre = model.cluster_centers_[c] / max(np.linalg.norm(model.cluster_centers_[c]), 1e-12)
        members = members[np.lexsort((members, x[members] @ centre))]  # least central first
        sims = x[members] @ x[members].T
        kept: list[int] = []
        for j in range(len(members)):
            if not kept or sims[j, kept].max() <= 1 - eps:
                kept.append(j)
        keep[members[kept]] = True
    return keep


__all__ = ["hamming", "hash_dedup", "perceptual_hash", "semdedup"]
