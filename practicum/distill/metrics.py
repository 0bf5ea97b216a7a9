"""Diversity and representativeness of a distilled set (MGD³ §5.2, App. B/C/G; spec §7.3).

Definitions, in some embedding e (all per class, then averaged over classes):
- diversity of a distilled sample i: min over the other distilled samples j of its class of
  d(e_i, e_j); higher is more diverse. Undefined at IPC 1 (reported as None).
- representativeness of a distilled sample i: the mean of d(e_i, r) over its `k` (50) nearest
  real samples r of its class; **lower is better** (plots show 1 − representativeness).

Two embeddings:
- `tsne` (the paper's): a 2-D t-SNE fitted per class jointly on the real features and the
  distilled features of **every method** (`joint_scores`), so the methods' numbers live in one
  embedding and can be compared (issue 13: a per-method fit put each method in its own space); the joint embedding is min-max normalised to the unit square (the paper's scores
  lie in [0, 1]; it does not say how, so this is our reading) and distances are divided by √2,
  the unit square's diagonal, so every score lies in [0, 1].
- `cosine` (the stable project metric, no t-SNE): cosine distance / 2 between features centred
  on the mean real feature, also in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np

from practicum.errors import ConfigError, DataError

METRIC_SPACES = ("tsne", "cosine")
REPRESENTATIVE_NEIGHBOURS = 50


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if metric == "euclidean":
        d2 = (a**2).sum(1)[:, None] - 2.0 * a @ b.T + (b**2).sum(1)[None, :]
        return np.sqrt(np.clip(d2, 0.0, None))
    if metric == "cosine":
        na = np.linalg.norm(a, axis=1, keepdims=True)
        nb = np.linalg.norm(b, axis=1, keepdims=True)
        cos = (a / np.where(na == 0, 1, na)) @ (b / np.where(nb == 0, 1, nb)).T
        return (1.0 - np.clip(cos, -1.0, 1.0)) / 2.0
    raise ConfigError(f"unknown distance {metric!r}", "use euclidean or cosine")


def diversity_per_sample(emb: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """min_{j≠i} d(e_i, e_j) for one class's distilled embeddings; NaN if it has one sample."""
    if len(emb) < 2:
        return np.full(len(emb), np.nan)
    d = pairwise_distances(emb, emb, metric)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def representativeness_per_sample(emb: np.ndarray, real: np.ndarray, k: int = REPRESENTATIVE_NEIGHBOURS,
                                  metric: str = "euclidean") -> np.ndarray:
    """Mean distance from each distilled embedding to its k nearest real embeddings (k ≤ len(real))."""
    if len(real) == 0:
        raise DataError("a class has no real samples to measure representativeness against")
    k = min(k, len(real))
    d = pairwise_distances(emb, real, metric)
    return np.sort(d, axis=1)[:, :k].mean(axis=1)


def _class_mean(values: dict[int, float]) -> float | None:
    finite = [v for v in values.values() if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def scores_in_embedding(real_emb: np.ndarray, real_labels: np.ndarray, dist_emb: np.ndarray,
                        dist_labels: np.ndarray, metric: str = "euclidean", scale: float = 1.0,
                        k: int = REPRESENTATIVE_NEIGHBOURS) -> dict:
    """Diversity and representativeness, per class and averaged over classes, in a given embedding."""
    per_class = {}
    for label in np.unique(dist_labels):
        d = dist_emb[dist_labels == label]
        r = real_emb[real_labels == label]
        div = diversity_per_sample(d, metric) / scale
        rep = representativeness_per_sample(d, r, k, metric) / scale
        per_class[int(label)] = {"diversity": float(np.mean(div)) if np.isfinite(div).all() else None,
                                 "representativeness": float(np.mean(rep))}
    return {
        "diversity": _class_mean({c: v["diversity"] for c, v in per_class.items()}),
        "representativeness": _class_mean({c: v["representativeness"] for c, v in per_class.items()}),
        "per_class": per_class,
    }


def tsne_embedding(real: np.ndarray, distilled: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D t-SNE fitted jointly on (real, distilled) rows, min-max normalised to [0, 1]²."""
    from sklearn.manifold import TSNE  # lazy: sklearn import costs ~1.5x torch's

    joint = np.concatenate([np.asarray(real, np.float64).reshape(len(real), -1),
                            np.asarray(distilled, np.float64).reshape(len(distilled), -1)])
    if len(joint) < 4:
        raise DataError(f"t-SNE needs at least 4 points, got {len(joint)}")
    perplexity = float(min(30.0, (len(joint) - 1) / 3.0))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
               max_iter=500).fit_transform(joint)
    lo, hi = emb.min(axis=0), emb.max(axis=0)
    emb = (emb - lo) / np.where(hi > lo, hi - lo, 1.0)
    return emb[: len(real)], emb[len(real):]


def distillation_scores(real: np.ndarray, real_labels: np.ndarray, distilled: np.ndarray,
                        distilled_labels: np.ndarray, spaces: tuple[str, ...] = METRIC_SPACES,
                        seed: int = 0, k: int = REPRESENTATIVE_NEIGHBOURS) -> dict:
    """Both metrics in each requested space.

    Returns `{space: {"diversity", "representativeness", "per_class"}}`; the `tsne` entry also
    holds the per-class 2-D embeddings (`embeddings`: label → (real (n, 2), distilled (m, 2))) for plots.
    """
    real = np.asarray(real, np.float64).reshape(len(real), -1)
    distilled = np.asarray(distilled, np.float64).reshape(len(distilled), -1)
    real_labels, distilled_labels = np.asarray(real_labels), np.asarray(distilled_labels)
    out: dict = {}
    for space in spaces:
        if space == "cosine":
            centre = real.mean(axis=0, keepdims=True)
            out["cosine"] = scores_in_embedding(real - centre, real_labels, distilled - centre, distilled_labels,
                                                metric="cosine", k=k)
        elif space == "tsne":
            real_parts, dist_parts, embeddings = [], [], {}
            for label in np.unique(distilled_labels):
                r_rows, d_rows = real_labels == label, distilled_labels == label
                r_emb, d_emb = tsne_embedding(real[r_rows], distilled[d_rows], seed=seed)
                embeddings[int(label)] = (r_emb, d_emb)
                real_parts.append((r_emb, np.full(len(r_emb), label)))
                dist_parts.append((d_emb, np.full(len(d_emb), label)))
            r_all = np.concatenate([p[0] for p in real_parts])
            r_lab = np.concatenate([p[1] for p in real_parts])
            d_all = np.concatenate([p[0] for p in dist_parts])
            d_lab = np.concatenate([p[1] for p in dist_parts])
            scores = scores_in_embedding(r_all, r_lab, d_all, d_lab, metric="euclidean", scale=math.sqrt(2.0), k=k)
            scores["embeddings"] = embeddings
            out["tsne"] = scores
        else:
            raise ConfigError(f"unknown metric space {space!r}", f"use one of {', '.join(METRIC_SPACES)}")
    return out


def joint_scores(real: np.ndarray, real_labels: np.ndarray, sets: dict[str, tuple[np.ndarray, np.ndarray]],
                 spaces: tuple[str, ...] = METRIC_SPACES, seed: int = 0, k: int = REPRESENTATIVE_NEIGHBOURS,
                 real_per_class: int | None = 500) -> dict[str, dict]:
    """Both metrics for several methods' distilled sets, with one joint t-SNE per class.

    `sets`: method → (features (m, D), labels (m,)). For t-SNE, per class, the real rows (at most
    `real_per_class`, a fixed seeded subsample, to bound the cost) and every method's rows of that
    class are embedded together. The cosine variant needs no fit and uses all real rows.
    Returns method → {space → {"diversity", "representativeness", "per_class"}}; the `tsne` entries
    also carry `embeddings` (label → (real (n, 2), this method's distilled (m, 2))) for plots.
    """
    real = np.asarray(real, np.float64).reshape(len(real), -1)
    real_labels = np.asarray(real_labels)
    methods = list(sets)
    flat = {m: (np.asarray(f, np.float64).reshape(len(f), -1), np.asarray(y)) for m, (f, y) in sets.items()}
    out: dict[str, dict] = {m: {} for m in methods}
    for space in spaces:
        if space == "cosine":
            for m in methods:
                out[m]["cosine"] = distillation_scores(real, real_labels, *flat[m], spaces=("cosine",), k=k)["cosine"]
        elif space == "tsne":
            per_method = {m: {"real": [], "real_lab": [], "dist": [], "dist_lab": [], "emb": {}} for m in methods}
            rng = np.random.default_rng(seed)
            for label in np.unique(np.concatenate([flat[m][1] for m in methods])):
                r = real[real_labels == label]
                if real_per_class is not None and len(r) > real_per_class:
                    r = r[np.sort(rng.choice(len(r), real_per_class, replace=False))]
                parts = [flat[m][0][flat[m][1] == label] for m in methods]
                r_emb, d_emb = tsne_embedding(r, np.concatenate(parts), seed=seed)
                start = 0
                for m, part in zip(methods, parts):
                    mine = d_emb[start:start + len(part)]
                    start += len(part)
                    entry = per_method[m]
                    entry["real"].append(r_emb)
                    entry["real_lab"].append(np.full(len(r_emb), label))
                    entry["dist"].append(mine)
                    entry["dist_lab"].append(np.full(len(mine), label))
                    entry["emb"][int(label)] = (r_emb, mine)
            for m in methods:
                e = per_method[m]
                scores = scores_in_embedding(np.concatenate(e["real"]), np.concatenate(e["real_lab"]),
                                             np.concatenate(e["dist"]), np.concatenate(e["dist_lab"]),
                                             metric="euclidean", scale=math.sqrt(2.0), k=k)
                scores["embeddings"] = e["emb"]
                out[m]["tsne"] = scores
        else:
            raise ConfigError(f"unknown metric space {space!r}", f"use one of {', '.join(METRIC_SPACES)}")
    return out


__all__ = ["METRIC_SPACES", "joint_scores", "REPRESENTATIVE_NEIGHBOURS", "distillation_scores", "diversity_per_sample",
           "pairwise_distances", "representativeness_per_sample", "scores_in_embedding", "tsne_embedding"]
