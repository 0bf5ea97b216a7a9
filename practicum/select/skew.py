"""Warnings for curation that skews the data silently (each returns a message, or None when all is well).

- `removed_warning`: dedup removed a large share of the pool (semdedup on raw pixels removed 63 %:
  pixel distance merges whole classes, not copies).
- `outlier_warning`: a coverage selection kept the pool's outliers (k-center seeks the farthest
  points, so it keeps noise first); outliers are the 5 % of each class farthest from its mean.
- `kind_warning`: when the pool knows its kinds, a defect kind kept far above the overall rate.
- `class_rank_warning`: the score mostly ranks classes (η² of the rank on the label, see
  `selectors.class_rank_share`), so a selection by score is a selection by class.
"""

from __future__ import annotations

import numpy as np

REMOVED_SHARE = 0.3  # dedup: more than this share removed is rarely only duplicates
OUTLIER_QUANTILE = 0.95  # an outlier is beyond this quantile of its class's distances to the class mean
OUTLIER_ENRICHMENT = 3.0  # warn when the selection holds this many times the pool's share of outliers
CLASS_RANK_SHARE = 0.5  # warn when the label explains more of the rank variance than this


def removed_warning(removed: int, total: int, method: str) -> str | None:
    share = removed / max(1, total)
    if share <= REMOVED_SHARE:
        return None
    hint = ("semdedup on raw pixels merges whole classes: pass --embeddings from a real encoder or lower --eps"
            if method == "semdedup" else "lower --max-distance, or check the pool really repeats itself")
    return f"dedup removed {removed} of {total} examples ({100 * share:.0f} %), more than duplicates usually are; {hint}"


def outliers(features, labels) -> np.ndarray:
    """Mask of each class's examples farthest from the class mean (beyond OUTLIER_QUANTILE)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    mask = np.zeros(len(x), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        distance = np.linalg.norm(x[members] - x[members].mean(axis=0), axis=1)
        mask[members] = distance > np.quantile(distance, OUTLIER_QUANTILE)
    return mask


def outlier_warning(features, labels, chosen, method: str) -> str | None:
    far = outliers(features, labels)
    if not len(chosen) or not far.any():
        return None
    kept, pool = float(far[chosen].mean()), float(far.mean())
    if kept <= OUTLIER_ENRICHMENT * pool:
        return None
    return (f"{method} kept {int(far[chosen].sum())} of the pool's {int(far.sum())} outliers: {100 * kept:.0f} % of "
            f"the selection vs {100 * pool:.0f} % of the pool; outliers are often noise: filter them first "
            "(dedup, label-issues) or use --method herding")


def kind_warning(kinds, chosen, clean: str = "clean") -> str | None:
    """Defect kinds kept at more than twice the overall rate (and more than half of them kept)."""
    kinds = np.asarray(kinds).astype(str)
    picked = np.zeros(len(kinds), dtype=bool)
    picked[np.asarray(chosen, dtype=np.int64)] = True
    rate = picked.mean()
    heavy = [(k, int(picked[kinds == k].sum()), int((kinds == k).sum())) for k in sorted(set(kinds.tolist()))
             if k != clean and picked[kinds == k].mean() > max(0.5, 2 * rate)]
    if not heavy:
        return None
    listed = ", ".join(f"{kept} of {total} {kind}" for kind, kept, total in heavy)
    return f"the selection kept {listed} (overall {100 * rate:.0f} % of the pool): filter those out first"


def class_rank_warning(share: float, balanced: bool) -> str | None:
    if share <= CLASS_RANK_SHARE:
        return None
    effect = ("the class-balanced budget still keeps every class, but within a class the score may mean little"
              if balanced else "a selection by this score is mostly a selection of classes: use --balance")
    return f"the score mostly ranks classes: the label explains {100 * share:.0f} % of the rank variance; {effect}"


__all__ = ["class_rank_warning", "kind_warning", "outlier_warning", "outliers", "removed_warning"]
