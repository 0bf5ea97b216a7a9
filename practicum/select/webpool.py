"""A web-like Fashion-MNIST pool: a graded, mostly benign quality spread (Alchemist §9.7 at small scale).

Web data is not "clean plus 40 % garbage": most of it is usable, some is redundant, some is
degraded to varying degrees, and a small part is clearly harmful. `build_web_pool` turns a clean
split into such a pool, row for row (ids kept; `kinds` and `severity` say what was done):

| kind | fraction | what | harmful? |
|---|---|---|---|
| clean | rest (~54 %) | untouched | no |
| duplicate | 10 % | near-copies (tiny jitter) of a few hundred plain items (nearest their class mean) | no (redundant) |
| blur | 5 % | box blur, radius 1-3 by severity | severity > 2/3 |
| downup | 5 % | down-sample by 2-4 then up-sample (blocky) | severity > 2/3 |
| low_contrast | 5 % | squeezed towards mid-grey by 40-85 % | severity > 2/3 |
| noise | 5 % | Gaussian pixel noise σ 0.1-0.5 | severity > 2/3 |
| marks | 4 % | an overlaid bright bar / box ("watermark or text") | no |
| mosaic | 3 % | 2×2 tiles of four items of mixed classes under the first tile's label | yes |
| label_flip | 7 % | label swapped with a confusable class (shirt↔T-shirt, pullover↔coat, ...) | yes |
| pure_noise | 2 % | uniform noise, label kept | yes |

Severity is uniform in [0, 1) per degraded row; `harmful` marks the clearly harmful rows (about
18 % of the pool with the defaults, under the ≤ 20 % the issue asks for).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from practicum.data import Dataset
from practicum.errors import ConfigError
from practicum.select.selectors import rank_descending

WEB_FRACTIONS = {"duplicate": 0.10, "blur": 0.05, "downup": 0.05, "low_contrast": 0.05, "noise": 0.05,
                 "marks": 0.04, "mosaic": 0.03, "label_flip": 0.07, "pure_noise": 0.02}
GRADED = ("blur", "downup", "low_contrast", "noise")
ALWAYS_HARMFUL = ("mosaic", "label_flip", "pure_noise")
# Fashion-MNIST's confusable pairs: T-shirt(0)↔Shirt(6), Pullover(2)↔Coat(4), Sneaker(7)↔Ankle boot(9),
# Sandal(5)↔Sneaker(7) is folded into the boot pair; Trouser(1)↔Dress(3), Bag(8)↔Pullover(2) is rare.
CONFUSABLE = {0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7, 5: 7, 1: 3, 3: 1, 8: 2}


def _box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), k, stride=1)


def build_web_pool(dataset: Dataset, *, fractions: dict[str, float] | None = None, duplicate_sources: int = 300,
                   seed: int = 0) -> tuple[Dataset, dict[str, np.ndarray]]:
    """(the pool, {"kind", "severity", "harmful"}) from a clean split; rows keep their ids."""
    fractions = dict(WEB_FRACTIONS if fractions is None else fractions)
    unknown = set(fractions) - set(WEB_FRACTIONS)
    if unknown or any(v < 0 for v in fractions.values()) or sum(fractions.values()) > 1:
        raise ConfigError(f"web-pool fractions {fractions} must name kinds of {sorted(WEB_FRACTIONS)}, be >= 0 "
                          "and sum to at most 1")
    rng = np.random.default_rng([seed, 0x3EB])  # its own stream, apart from any selector's seed
    n = len(dataset)
    images = dataset.images.clone()
    labels = dataset.labels.clone()
    kind = np.full(n, "clean", dtype=object)
    severity = np.zeros(n)
    order = rng.permutation(n)
    counts = [int(round(fractions.get(k, 0.0) * n)) for k in WEB_FRACTIONS]
    groups = dict(zip(WEB_FRACTIONS, np.split(order[: sum(counts)], np.cumsum(counts)[:-1])))
    untouched = np.setdiff1d(np.arange(n), order[: sum(counts)])

    rows = groups["duplicate"]
    if len(rows):
        sources = _plain_items(dataset, duplicate_sources, untouched)
        pick = sources[rng.integers(0, len(sources), size=len(rows))]
        jitter = torch.from_numpy(rng.normal(0, 0.02, size=(len(rows), *dataset.image_shape))).float()
        images[rows] = (dataset.images[pick] + jitter).clamp(-1, 1)
        labels[rows] = dataset.labels[pick]
    for name in GRADED:
        rows = groups[name]
        sev = rng.random(len(rows))
        severity[rows] = sev
        for i, s in zip(rows, sev):
            x = images[i:i + 1]
            if name == "blur":
                x = _box_blur(x, 1 + int(s * 3))
            elif name == "downup":
                factor = 2 + int(s * 3)  # 2, 3 or 4
                small = F.interpolate(x, scale_factor=1 / factor, mode="area")
                x = F.interpolate(small, size=x.shape[-2:], mode="nearest")
            elif name == "low_contrast":
                x = x * (1 - (0.4 + 0.45 * s))  # towards mid-grey 0
            else:
                x = x + float(0.1 + 0.4 * s) * torch.from_numpy(rng.normal(size=x.shape)).float()
            images[i:i + 1] = x.clamp(-1, 1)
    rows = groups["marks"]
    h, w = dataset.image_shape[-2:]
    for i in rows:
        top, left = rng.integers(0, h - 4), rng.integers(0, w - 10)
        images[i, :, top:top + 3, left:left + int(rng.integers(8, 11))] = 1.0  # a bright bar across the item
    rows = groups["mosaic"]
    for i in rows:
        others = rng.choice(n, size=3, replace=False)
        tiles = F.interpolate(torch.cat([dataset.images[i:i + 1], dataset.images[others]]), size=(h // 2, w // 2),
                              mode="area")
        images[i] = torch.cat([torch.cat([tiles[0], tiles[1]], -1), torch.cat([tiles[2], tiles[3]], -1)], -2)
    rows = groups["label_flip"]
    labels[rows] = torch.tensor([CONFUSABLE.get(int(c), (int(c) + 1) % dataset.num_classes)
                                 for c in dataset.labels[rows]], dtype=labels.dtype)
    rows = groups["pure_noise"]
    images[rows] = torch.from_numpy(rng.uniform(-1, 1, size=(len(rows), *dataset.image_shape))).float()
    for name, rows in groups.items():
        kind[rows] = name
    harmful = np.isin(kind, ALWAYS_HARMFUL) | (np.isin(kind, GRADED) & (severity > 2 / 3))
    pool = Dataset(images, labels, dataset.ids.copy(), dataset.class_names)
    return pool, {"kind": kind.astype(str), "severity": severity, "harmful": harmful}


def _plain_items(dataset: Dataset, count: int, allowed: np.ndarray) -> np.ndarray:
    """`count` plain items: per class, the allowed rows nearest the class mean (the "white background" shots)."""
    flat = dataset.images.reshape(len(dataset), -1).numpy()
    labels = dataset.labels.numpy()
    per_class = max(1, count // dataset.num_classes)
    picks = []
    for c in range(dataset.num_classes):
        members = np.intersect1d(np.flatnonzero(labels == c), allowed)
        if len(members) == 0:
            continue
        distance = ((flat[members] - flat[labels == c].mean(axis=0)) ** 2).sum(axis=1)
        picks.append(members[np.argsort(distance, kind="stable")[:per_class]])
    return np.concatenate(picks)


def clean_holdout(dataset: Dataset, size: int, seed: int = 0) -> Dataset:
    """A small clean held-out set for the rater's validation loss: `size` rows, stratified by class."""
    if not 0 < size <= len(dataset):
        raise ConfigError(f"cannot hold out {size} of {len(dataset)} examples")
    rng = np.random.default_rng([seed, 0x7A1])
    labels = dataset.labels.numpy()
    classes = np.unique(labels)
    rows = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: size // len(classes)] for c in classes])
    rows = np.sort(rows)
    return Dataset(dataset.images[rows], dataset.labels[rows], dataset.ids[rows], dataset.class_names)


def rank_by_kind(scores, kinds, harmful=None) -> dict[str, dict[str, float]]:
    """Mean rank percentile (0 = top of the descending ranking) and count per kind (and for harmful rows)."""
    s = np.asarray(scores, dtype=np.float64)
    pct = np.empty(len(s))
    pct[rank_descending(s)] = np.arange(len(s)) / max(1, len(s) - 1)
    kinds = np.asarray(kinds)
    out = {k: {"count": int((kinds == k).sum()), "mean_rank_pct": float(pct[kinds == k].mean())}
           for k in sorted(set(kinds.tolist()))}
    if harmful is not None:
        h = np.asarray(harmful, dtype=bool)
        out["(harmful)"] = {"count": int(h.sum()), "mean_rank_pct": float(pct[h].mean()) if h.any() else float("nan")}
    return out


__all__ = ["ALWAYS_HARMFUL", "CONFUSABLE", "GRADED", "WEB_FRACTIONS", "build_web_pool", "clean_holdout", "rank_by_kind"]
