"""Seeded web-like defects for small demos (Alchemist §9.7: pruning only helps on dirty pools).

A clean curated set gives selection little to do, so the demo pool is corrupted the way web
data is: wrong labels (caption misalignment), near-duplicates of a few plain, easy images (the
"product shot on a white background") and noise images. The three groups are disjoint rows of
the pool; ids are kept, and `kinds` says what was done to each row.
"""

from __future__ import annotations

import numpy as np
import torch

from practicum.data import Dataset
from practicum.errors import ConfigError

DEFECT_KINDS = ("clean", "wrong_label", "duplicate", "noise")


def inject_defects(dataset: Dataset, *, wrong_labels: float = 0.2, duplicates: float = 0.1, noise: float = 0.1,
                   duplicate_sources: int = 5, duplicate_jitter: float = 0.05, seed: int = 0
                   ) -> tuple[Dataset, np.ndarray]:
    """Return the corrupted copy and a `kinds` array (one of DEFECT_KINDS per row).

    - wrong_label: the label is replaced by a different class, uniformly.
    - duplicate: the image becomes a copy of one of `duplicate_sources` easy images (each the
      example nearest its class mean, from different classes) plus N(0, jitter²) pixel noise,
      with that source's (correct) label.
    - noise: the image becomes uniform noise in [-1, 1]; the label is left as it was.
    """
    fractions = (wrong_labels, duplicates, noise)
    if any(f < 0 for f in fractions) or sum(fractions) > 1:
        raise ConfigError(f"defect fractions {fractions} must be >= 0 and sum to at most 1")
    rng = np.random.default_rng([seed, 0xDEFEC7])  # its own stream: never the same draws as a selector's seed
    n = len(dataset)
    images = dataset.images.clone()
    labels = dataset.labels.clone()
    counts = [int(round(f * n)) for f in fractions]
    order = rng.permutation(n)
    groups = np.split(order[: sum(counts)], np.cumsum(counts)[:-1])
    kinds = np.full(n, "clean", dtype=object)

    wrong = groups[0]
    shift = torch.from_numpy(rng.integers(1, dataset.num_classes, size=len(wrong)))
    labels[wrong] = (labels[wrong] + shift) % dataset.num_classes
    kinds[wrong] = "wrong_label"

    dup = groups[1]
    if len(dup):
        sources = _easy_sources(dataset, duplicate_sources, exclude=np.concatenate(groups))
        pick = sources[rng.integers(0, len(sources), size=len(dup))]
        jitter = torch.from_numpy(rng.normal(0.0, duplicate_jitter, size=(len(dup), *dataset.image_shape))).float()
        images[dup] = (dataset.images[pick] + jitter).clamp(-1, 1)
        labels[dup] = dataset.labels[pick]
        kinds[dup] = "duplicate"

    noisy = groups[2]
    images[noisy] = torch.from_numpy(rng.uniform(-1, 1, size=(len(noisy), *dataset.image_shape))).float()
    kinds[noisy] = "noise"
    return Dataset(images, labels, dataset.ids.copy(), dataset.class_names), kinds.astype(str)


def _easy_sources(dataset: Dataset, count: int, exclude: np.ndarray) -> np.ndarray:
    """The examples nearest their class mean, one per class, for the first `count` classes that have one."""
    flat = dataset.images.reshape(len(dataset), -1).numpy()
    labels = dataset.labels.numpy()
    allowed = np.ones(len(dataset), dtype=bool)
    allowed[exclude] = False
    sources = []
    for c in range(dataset.num_classes):
        members = np.flatnonzero((labels == c) & allowed)
        if len(members) == 0:
            continue
        centre = flat[labels == c].mean(axis=0)
        sources.append(members[np.argmin(((flat[members] - centre) ** 2).sum(axis=1))])
        if len(sources) == count:
            break
    return np.asarray(sources)


__all__ = ["DEFECT_KINDS", "inject_defects"]
