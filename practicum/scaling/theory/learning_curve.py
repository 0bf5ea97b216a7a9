"""What sets the exponent: intrinsic dimension D vs the measured learning-curve exponent α.

Bahri et al. (2021, "Explaining neural scaling laws") argue that in the resolution-limited
regime the loss falls as n^(−c/D) with D the intrinsic dimension of the data manifold (c = 4 for
smooth models and squared loss; a nearest-neighbour learner of a Lipschitz target gives c ≈ 1
for the error itself and c ≈ 2 for its square). The lecture notes call the link suggestive but
"not airtight": the dimension estimates are themselves shaky. This module makes the check
reproducible rather than claiming it holds.

The check on the built-in digits: for each view of the data (the 64 raw pixels and projections
onto the first k principal components, which lower D), estimate D with TwoNN and Levina–Bickel
on the training split, measure the test error of a 1-nearest-neighbour classifier trained on
random subsets of the training split of growing size, fit the learning curve with
`practicum.scaling.fit` (default family M1, error = β·n^c, α = −c) and report α·D, the
implied constant c. Train is the only data the learner sees; the test split gives the reported
errors (there is no tuning, so the validation split is not needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from practicum.data import load_digits
from practicum.errors import DataError
from practicum.scaling import fit
from practicum.scaling.theory.intrinsic_dim import levina_bickel, twonn

REFERENCE_CONSTANTS = {"nearest-neighbour error (c = 1)": 1.0, "squared error, Lipschitz (c = 2)": 2.0,
                       "Bahri et al. smooth, squared loss (c = 4)": 4.0}


def power_law_exponent(sizes, errors, family: str = "M1") -> dict:
    """α of a decreasing learning curve, fitted with the scaling toolkit (`practicum.scaling.fit`).

    M1 (β·n^c) gives the pure power-law exponent; M2 (ε∞ + β·n^c) subtracts an irreducible error
    first. Returns the exponent α = −c and the law's parameters.
    """
    sizes = np.asarray(sizes, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if sizes.size < 3:
        raise DataError(f"{sizes.size} points are too few to measure an exponent", "give at least 3 sizes")
    law = fit(sizes, errors, family=family, metric="error")
    params = law.params_
    return {"alpha": -float(params["c"]), "family": family, "params": params}


@dataclass
class ExponentCheck:
    view: str
    ambient: int
    dim_twonn: float
    dim_mle: float
    sizes: list[int]
    errors: list[float]
    alpha: float
    scale: float = float("nan")  # β of the fitted law error = β·n^(−α)

    @property
    def dimension(self) -> float:
        """The mean of the two estimators (they disagree by more than they each err)."""
        return 0.5 * (self.dim_twonn + self.dim_mle)

    @property
    def implied_c(self) -> float:
        return self.alpha * self.dimension

    def as_dict(self) -> dict:
        return {"view": self.view, "ambient": self.ambient, "dim_twonn": self.dim_twonn, "dim_mle": self.dim_mle,
                "dimension": self.dimension, "alpha": self.alpha, "implied_c": self.implied_c,
                        "scale": self.scale, "sizes": self.sizes, "errors": self.errors}


def nn_learning_curve(x_train, y_train, x_test, y_test, sizes, repeats: int, seed: int) -> np.ndarray:
    """Mean 1-NN test error over `repeats` random training subsets of each size."""
    from sklearn.neighbors import KNeighborsClassifier  # lazy: sklearn import costs ~1.5x torch's

    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        reps = 1 if n >= len(y_train) else repeats
        errs = []
        for _ in range(reps):
            idx = rng.choice(len(y_train), size=int(n), replace=False)
            model = KNeighborsClassifier(n_neighbors=1).fit(x_train[idx], y_train[idx])
            errs.append(float(np.mean(model.predict(x_test) != y_test)))
        out.append(float(np.mean(errs)))
    return np.array(out)


def _views(x_train: np.ndarray, components: tuple[int, ...]):
    """('pixels', identity) and ('pcaK', projection onto the first K components of train)."""
    mean = x_train.mean(axis=0)
    _, _, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    yield "pixels", None
    for k in components:
        yield f"pca{k}", (mean, vt[:k].T)


def dimension_exponent_check(components: tuple[int, ...] = (2, 4, 8), sizes=None, repeats: int = 8,
                             seed: int = 0, family: str = "M1", progress=None) -> list[ExponentCheck]:
    """Estimate D and measure α on the built-in digits for each view; see the module docstring."""
    train, test = load_digits("train"), load_digits("test")
    x_tr = np.asarray(train.images, dtype=float).reshape(len(train.labels), -1)
    x_te = np.asarray(test.images, dtype=float).reshape(len(test.labels), -1)
    y_tr, y_te = np.asarray(train.labels), np.asarray(test.labels)
    if sizes is None:
        sizes = np.unique(np.round(np.geomspace(40, len(y_tr), 10)).astype(int))
    results = []
    for view, proj in _views(x_tr, components):
        a, b = (x_tr, x_te) if proj is None else ((x_tr - proj[0]) @ proj[1], (x_te - proj[0]) @ proj[1])
        errors = nn_learning_curve(a, y_tr, b, y_te, sizes, repeats, seed)
        law = power_law_exponent(sizes, errors, family)
        results.append(ExponentCheck(view, a.shape[1], twonn(a), levina_bickel(a), [int(s) for s in sizes],
                                     [float(e) for e in errors], law["alpha"],
                                     float(law["params"].get("beta", float("nan")))))
        if progress is not None:
            progress()
    return results


def fit_constant(checks: list[ExponentCheck]) -> dict:
    """Least-squares c in α = c/D across views, and how well 1/D explains α (R², Spearman ρ)."""
    inv_d = np.array([1.0 / c.dimension for c in checks])
    alpha = np.array([c.alpha for c in checks])
    c_hat = float(inv_d @ alpha / (inv_d @ inv_d))
    resid = alpha - c_hat * inv_d
    total = np.sum((alpha - alpha.mean()) ** 2)
    r2 = float(1.0 - resid @ resid / total) if total > 0 else float("nan")
    spearman = float(stats.spearmanr(inv_d, alpha).statistic) if len(checks) > 2 else float("nan")
    return {"c": c_hat, "r2_through_origin_model": r2, "spearman_alpha_vs_inverse_d": spearman}
