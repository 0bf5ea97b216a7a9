"""Per-example scores from arrays: one float per example, and **higher = harder / more informative**.

Every scorer takes plain arrays (logits, labels, embeddings, a training record), never a model
or a training loop, so scores can come from any learner (DeepCore's and CCS's lesson: keep the
score apart from the selection rule). What "higher" means for each:

| scorer | value | higher means |
|---|---|---|
| `entropy` | H(softmax z) in nats | the model is less sure (label-free) |
| `margin` | p₍₂₎ − p₍₁₎ (second minus top probability), in [−1, 0] | closer to the decision boundary |
| `loss` | cross-entropy −log p_y | the label is less well fitted |
| `el2n` | ‖softmax z − onehot y‖₂, mean over runs (Paul et al. 2021) | larger error vector |
| `grand` | ‖∇ℓ‖₂ of the last layer (Paul et al. 2021) | larger expected gradient |
| `forgetting` | number of correct → wrong flips (Toneva et al. 2019) | learnt and forgotten more often |
| `aum` | −AUM: minus the mean of z_y − max_{k≠y} z_k over epochs (Pleiss et al. 2020) | more likely mislabelled |
| `prototypicality` | distance to the nearest k-means centre (Sorscher et al. 2022) | less typical |
| `rho_loss` | loss − holdout model's loss (Mindermann et al. 2022) | learnable, worth learning, not yet learnt |
| `random` | uniform in [0, 1) from a seed | nothing (the baseline) |

Keep-easy is `bottom_k` of the same score; see `practicum.select.selectors`.
"""

from __future__ import annotations

import numpy as np

from practicum.errors import DataError

SCORERS = ("entropy", "margin", "loss", "el2n", "grand", "forgetting", "aum", "prototypicality", "rho_loss",
           "random")


# ---------------------------------------------------------------- input checks

def _logits(logits, name: str = "logits") -> np.ndarray:
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise DataError(f"{name} must be (N, C) with C >= 2 classes, got shape {array.shape}",
                        "pass one row of class logits per example")
    if not np.isfinite(array).all():
        raise DataError(f"{name} contain NaN or infinite values", "check the model that produced them")
    return array


def _labels(labels, n: int, num_classes: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"labels must be {n} integers, got {array.dtype} array of shape {array.shape}",
                        "pass one integer class label per example")
    if n and (array.min() < 0 or array.max() >= num_classes):
        raise DataError(f"labels must lie in 0..{num_classes - 1}, found {array.min()}..{array.max()}",
                        "the logits need one column per class")
    return array.astype(np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


# ---------------------------------------------------------------- one model, one moment

def entropy(logits) -> np.ndarray:
    """Predictive entropy −Σ p log p (nats). Label-free; higher = less certain."""
    logp = log_softmax(_logits(logits))
    return -(np.exp(logp) * logp).sum(axis=1)


def margin(logits) -> np.ndarray:
    """p₍₂₎ − p₍₁₎: minus the gap between the two most probable classes (label-free).

    The classic margin-uncertainty score is p₍₁₎ − p₍₂₎ (small = uncertain); it is negated so
    that, like every scorer here, higher means harder.
    """
    probs = np.sort(softmax(_logits(logits)), axis=1)
    return probs[:, -2] - probs[:, -1]


def loss(logits, labels) -> np.ndarray:
    """Per-example cross-entropy −log softmax(z)_y."""
    z = _logits(logits)
    y = _labels(labels, len(z), z.shape[1])
    return -log_softmax(z)[np.arange(len(z)), y]


def el2n(logits, labels) -> np.ndarray:
    """EL2N: ‖softmax(z) − onehot(y)‖₂, averaged over the leading axis if logits are (R, N, C).

    Paul et al. average over several independently initialised models early in training; pass
    their logits stacked as (R, N, C).
    """
    stacked = np.asarray(logits, dtype=np.float64)
    if stacked.ndim == 2:
        stacked = stacked[None]
    if stacked.ndim != 3:
        raise DataError(f"EL2N needs logits of shape (N, C) or (R, N, C), got {stacked.shape}")
    y = _labels(labels, stacked.shape[1], stacked.shape[2])
    onehot = np.eye(stacked.shape[2])[y]
    errors = [np.linalg.norm(softmax(_logits(z)) - onehot, axis=1) for z in stacked]
    return np.mean(errors, axis=0)


def grand(logits, labels, features=None) -> np.ndarray:
    """GraNd restricted to the last linear layer, exactly.

    For z = W h + b and ℓ = CE(z, y): ∇_W ℓ = (p − e_y) hᵀ and ∇_b ℓ = p − e_y, so
    ‖∇_{W,b} ℓ‖₂ = ‖p − e_y‖₂ · sqrt(‖h‖² + 1). Without `features` (the penultimate h) only
    the bias gradient is used, which equals EL2N. Logits (R, N, C) with features (R, N, D)
    average over R runs. The all-parameter version is `practicum.select.dynamics.grand_full`.
    """
    stacked = np.asarray(logits, dtype=np.float64)
    if stacked.ndim == 2:
        stacked = stacked[None]
    if stacked.ndim != 3:
        raise DataError(f"GraNd needs logits of shape (N, C) or (R, N, C), got {stacked.shape}")
    if features is None:
        return el2n(stacked, labels)
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim == 2:
        feats = feats[None]
    if feats.shape[:2] != stacked.shape[:2]:
        raise DataError(f"features {feats.shape} do not match logits {stacked.shape}",
                        "pass the penultimate features of the same examples (and runs)")
    y = _labels(labels, stacked.shape[1], stacked.shape[2])
    onehot = np.eye(stacked.shape[2])[y]
    norms = [np.linalg.norm(softmax(_logits(z)) - onehot, axis=1) * np.sqrt((h ** 2).sum(axis=1) + 1.0)
             for z, h in zip(stacked, feats)]
    return np.mean(norms, axis=0)


# ---------------------------------------------------------------- training dynamics

def forgetting(correct, never_learned: str = "max") -> np.ndarray:
    """Forgetting events from an (E, N) record of correctness at each observation.

    An event is a transition correct → wrong between consecutive observations (Toneva et al.).
    Examples never classified correctly are the most "forgettable": `never_learned="max"`
    (default) gives them E, more than any real count (at most E // 2); `"zero"` leaves them at 0.
    """
    record = np.asarray(correct)
    if record.ndim != 2 or record.shape[0] < 2:
        raise DataError(f"forgetting needs an (epochs, N) correctness record with >= 2 epochs, got {record.shape}",
                        "record the training set's correctness at least twice during training")
    record = record.astype(bool)
    events = (record[:-1] & ~record[1:]).sum(axis=0).astype(np.float64)
    if never_learned == "max":
        events[~record.any(axis=0)] = record.shape[0]
    elif never_learned != "zero":
        raise DataError(f"never_learned must be 'max' or 'zero', not {never_learned!r}")
    return events


def assigned_margin(logits, labels) -> np.ndarray:
    """z_y − max_{k≠y} z_k per example (the AUM margin at one epoch); logits (N, C)."""
    z = _logits(logits)
    y = _labels(labels, len(z), z.shape[1])
    rows = np.arange(len(z))
    assigned = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    return assigned - others.max(axis=1)


def aum(logits_per_epoch, labels) -> np.ndarray:
    """−AUM (Pleiss et al. 2020): minus the assigned margin averaged over epochs; logits (E, N, C).

    Mislabelled examples keep a negative margin (the model prefers another class), so a high
    −AUM flags them. Negated so that higher = harder, like every scorer here.
    """
    stacked = np.asarray(logits_per_epoch, dtype=np.float64)
    if stacked.ndim != 3:
        raise DataError(f"AUM needs logits of shape (epochs, N, C), got {stacked.shape}",
                        "record the logits of the training set at each epoch")
    return -np.mean([assigned_margin(z, labels) for z in stacked], axis=0)


# ---------------------------------------------------------------- embeddings and holdout models

def prototypicality(embeddings, n_clusters: int = 10, labels=None, seed: int = 0) -> np.ndarray:
    """Distance to the nearest k-means centre (Sorscher et al. 2022): higher = less prototypical.

    With `labels`, k-means runs within each class (`n_clusters` centres per class, fewer if the
    class is small) and each example is measured against its own class's centres.
    """
    from sklearn.cluster import KMeans  # lazy: sklearn import costs ~1.5x torch's

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"embeddings must be a non-empty (N, D) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("embeddings contain NaN or infinite values")
    if n_clusters < 1:
        raise DataError(f"n_clusters must be >= 1, not {n_clusters}")
    groups = [np.arange(len(x))] if labels is None else \
        [np.flatnonzero(np.asarray(labels) == c) for c in np.unique(np.asarray(labels))]
    out = np.empty(len(x))
    for members in groups:
        k = min(n_clusters, len(members))
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x[members])
        distances = np.linalg.norm(x[members, None, :] - model.cluster_centers_[None], axis=2)
        out[members] = distances.min(axis=1)
    return out


def rho_loss(train_losses, holdout_losses) -> np.ndarray:
    """Reducible holdout loss (Mindermann et al. 2022): ℓ(current model) − ℓ(model trained on holdout).

    High = the current model has not learnt it yet, but it is learnable (a model that never saw
    it, trained on clean holdout data, does fit it). Noisy labels score low: both models fail.
    """
    a = np.asarray(train_losses, dtype=np.float64)
    b = np.asarray(holdout_losses, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"RHO-loss needs two loss vectors of one length, got {a.shape} and {b.shape}")
    return a - b


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) scores from a seed: the random-selection baseline as a score."""
    return np.random.default_rng(seed).random(n)


__all__ = ["SCORERS", "aum", "assigned_margin", "el2n", "entropy", "forgetting", "grand", "log_softmax", "loss",
           "margin", "prototypicality", "random_scores", "rho_loss", "softmax"]
