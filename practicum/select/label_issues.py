"""Label-issue detection by confident learning (Northcutt et al., JAIR 2021), on out-of-sample probabilities.

practicum computes the probabilities; cleanlab (the authors' reference library) does the counting:

1. `out_of_sample_probs`: K-fold cross-validated class probabilities, so no example is scored by a
   model that trained on it (in-sample probabilities memorise the wrong labels).
2. Per-class thresholds t_j = mean of p_j over the examples labelled j (the model's average
   self-confidence on class j).
3. The confident joint: example i (label y) counts towards C[y, j*] with
   j* = argmax_{j : p_ij >= t_j} p_ij; examples above no threshold are not counted.
4. Issues (`find_label_issues`, cleanlab's `filter_by="confident_learning"`): counted examples with
   j* ≠ y, except those whose most probable class is the given label anyway.
   `label_quality` is the self-confidence p_iy (higher = the label looks right), usable as a score
   with direction higher_is_better.
"""

from __future__ import annotations

import numpy as np

from practicum.errors import ConfigError, DataError
from practicum.log import progress


def _probs_labels(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or y.shape != (len(p),):
        raise DataError(f"need probabilities (N, C) and N labels, got {p.shape} and {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise DataError(f"labels must lie in 0..{p.shape[1] - 1}")
    return p, y.astype(np.int64)


def out_of_sample_probs(features, labels, *, folds: int = 5, seed: int = 0, model=None) -> np.ndarray:
    """Cross-validated predict_proba of `model` (default: logistic regression) on (N, D) features."""
    from sklearn.base import clone  # lazy: sklearn import costs ~1.5x torch's
    from sklearn.linear_model import LogisticRegression  # lazy: sklearn import costs ~1.5x torch's
    from sklearn.model_selection import StratifiedKFold  # lazy: sklearn import costs ~1.5x torch's


    x = np.asarray(features, dtype=np.float64).reshape(len(labels), -1)
    y = np.asarray(labels, dtype=np.int64)
    if folds < 2:
        raise ConfigError(f"out-of-sample probabilities need >= 2 folds, not {folds}")
    model = model if model is not None else LogisticRegression(max_iter=500)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probs = np.zeros((len(y), int(y.max()) + 1))
    for fit_rows, held_out in progress(list(splitter.split(x, y)), f"out-of-sample probabilities ({folds} folds)"):
        fold_model = clone(model).fit(x[fit_rows], y[fit_rows])
        probs[np.ix_(held_out, fold_model.classes_)] = fold_model.predict_proba(x[held_out])
    return probs


def per_class_thresholds(probs, labels) -> np.ndarray:
    from cleanlab.count import get_confident_thresholds  # lazy: cleanlab import costs ~0.2x torch's (after sklearn)

    p, y = _probs_labels(probs, labels)
    return np.asarray(get_confident_thresholds(y, p), dtype=np.float64)


def confident_joint(probs, labels) -> np.ndarray:
    """C[i, j]: how many examples labelled i are confidently of class j (uncalibrated counts)."""
    from cleanlab.count import compute_confident_joint  # lazy: cleanlab import costs ~0.2x torch's (after sklearn)

    p, y = _probs_labels(probs, labels)
    return np.asarray(compute_confident_joint(y, p, calibrate=False), dtype=np.int64)


def find_label_issues(probs, labels) -> np.ndarray:
    """Boolean mask of likely label issues: confidently of another class than labelled."""
    from cleanlab.filter import find_label_issues as cleanlab_issues  # lazy: cleanlab import costs ~0.2x torch's (after sklearn)

    p, y = _probs_labels(probs, labels)
    return np.asarray(cleanlab_issues(y, p, filter_by="confident_learning", n_jobs=1), dtype=bool)


def label_quality(probs, labels) -> np.ndarray:
    """Self-confidence p_iy: higher = the given label looks right."""
    p, y = _probs_labels(probs, labels)
    return p[np.arange(len(y)), y]


__all__ = ["confident_joint", "find_label_issues", "label_quality", "out_of_sample_probs",
           "per_class_thresholds"]
