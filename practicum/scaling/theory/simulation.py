"""Monte-Carlo of teacher–student pruning: the DP ridge setting and Sorscher et al.'s max-margin one.

x ~ N(0, I_d), y = sign(w0·x). By rotation invariance we put the teacher on the first axis and
the selection direction in the first two, w_s = ρ·e1 + √(1−ρ²)·e2, which changes nothing in
distribution and saves a d×d rotation per trial. A trial draws a pool of n examples, keeps some
along t = x·w_s, trains a learner on the kept ones and returns the exact test error
arccos(cos∠(ŵ, w0))/π.

Selection (`selection=`):
* `"threshold"` (default, the DP theorem's setting): keep each example with probability q(t)
  of the rule at its population threshold, so the kept count is random with mean p·n;
* `"rank"` (Sorscher et al.): keep exactly round(p·n) examples, those with the smallest
  margins |t| (keep-hard), the largest (keep-easy) or a uniform subset (random).

Learners: `ridge` (DP: ŵ = (XᵀDX/n + λI)⁻¹XᵀDY/n, normalised by the *pool* size n),
`max-margin` (Sorscher: the hard-margin SVM through the origin, solved exactly as a
min-norm point by NNLS), `perceptron` (the classic online rule through the origin) and
`logistic` (weakly L2-regularised logistic regression, Sorscher's stand-in for max-margin).

Ridge trials stream the pool in chunks and accumulate XᵀDX, so memory stays O(d²) whatever n.
Each trial has its own seed (from `shard_seed`), so results do not depend on the executor.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError
from practicum.scaling.theory.closed_form import Rule
from practicum.stats import t_interval

LEARNERS = ("ridge", "max-margin", "perceptron", "logistic")
SELECTIONS = ("threshold", "rank")
_CHUNK = 4096  # rows generated at a time by the streaming ridge trial


@dataclass(frozen=True)
class Trial:
    """One Monte-Carlo trial: everything needed to reproduce it, including its seed."""

    rule: str
    p: float
    rho: float
    d: int
    n: int
    learner: str = "ridge"
    lam: float = 1e-2
    selection: str = "threshold"
    sharpness: float = 4.0
    seed: int = 0


@dataclass
class MonteCarlo:
    """Test errors over seeds with a Student-t confidence interval of the mean."""

    errors: np.ndarray
    kept: np.ndarray
    confidence: float = 0.95
    mean: float = field(init=False)
    std: float = field(init=False)
    ci_low: float = field(init=False)
    ci_high: float = field(init=False)

    def __post_init__(self):
        e = np.asarray(self.errors, dtype=float)
        self.mean = float(e.mean())
        self.std = float(e.std(ddof=1)) if e.size > 1 else 0.0
        ci = t_interval(e, self.confidence)  # None for one seed: no interval
        self.ci_low, self.ci_high = ci if ci is not None else (math.nan, math.nan)

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "seeds": int(len(self.errors)), "mean_kept": float(np.mean(self.kept))}


def _validate(trial: Trial) -> None:
    if trial.learner not in LEARNERS:
        raise ConfigError(f"unknown learner {trial.learner!r}", f"use one of {', '.join(LEARNERS)}")
    if trial.selection not in SELECTIONS:
        raise ConfigError(f"unknown selection {trial.selection!r}", f"use one of {', '.join(SELECTIONS)}")
    if not -1.0 <= trial.rho <= 1.0:
        raise ConfigError(f"correlation ρ = {trial.rho} must lie in [−1, 1]",
                          "e.g. 0.9, or cos(θ) for a probe at angle θ")
    if trial.d < 2 or trial.n < 1:
        raise ConfigError(f"need d ≥ 2 and n ≥ 1 (got d = {trial.d}, n = {trial.n})", "give a larger d or n")
    if trial.learner == "ridge" and trial.lam <= 0:
        raise ConfigError(f"ridge λ = {trial.lam} must be > 0", "use e.g. 1e-2")


def _draw(rng: np.random.Generator, rows: int, d: int, rho: float):
    x = rng.standard_normal((rows, d))
    t = rho * x[:, 0] + math.sqrt(max(0.0, 1.0 - rho * rho)) * x[:, 1]
    y = np.where(x[:, 0] >= 0, 1.0, -1.0)
    return x, t, y


def _keep_mask(rng: np.random.Generator, rule: Rule, t: np.ndarray, selection: str) -> np.ndarray:
    if selection == "threshold" or rule.name == "none":
        q = rule.keep_probability(t)
        if rule.name in ("keep-hard", "keep-easy", "none"):
            return q > 0.5  # deterministic rules: q ∈ {0, 1}
        return rng.random(t.shape[0]) < q
    k = int(round(rule.p * t.shape[0]))
    order = {"keep-hard": lambda: np.argsort(np.abs(t), kind="stable"),
             "keep-easy": lambda: np.argsort(-np.abs(t), kind="stable"),
             "soft": lambda: np.argsort(rng.random(t.shape[0]) / np.maximum(rule.keep_probability(t), 1e-300)),
             "random": lambda: rng.permutation(t.shape[0])}[rule.name]()
    mask = np.zeros(t.shape[0], dtype=bool)
    mask[order[:k]] = True
    return mask


def angle_error(w: np.ndarray) -> float:
    """arccos(cos∠(w, e1))/π: the exact test error of a linear classifier sign(w·x) for teacher e1."""
    norm = float(np.linalg.norm(w))
    if norm == 0.0 or not np.isfinite(norm):
        return 0.5
    return math.acos(float(np.clip(w[0] / norm, -1.0, 1.0))) / math.pi


def _ridge_streaming(trial: Trial, rule: Rule, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    d = trial.d
    gram = np.zeros((d, d))
    xty = np.zeros(d)
    kept = 0
    if trial.selection == "rank":  # exact ranks need the whole pool at once
        x, t, y = _draw(rng, trial.n, d, trial.rho)
        mask = _keep_mask(rng, rule, t, "rank")
        xk, yk = x[mask], y[mask]
        gram, xty, kept = xk.T @ xk, xk.T @ yk, int(mask.sum())
    else:
        for start in range(0, trial.n, _CHUNK):
            x, t, y = _draw(rng, min(_CHUNK, trial.n - start), d, trial.rho)
            mask = _keep_mask(rng, rule, t, "threshold")
            xk = x[mask]
            gram += xk.T @ xk
            xty += xk.T @ y[mask]
            kept += int(mask.sum())
    a = gram / trial.n + trial.lam * np.eye(d)
    return np.linalg.solve(a, xty / trial.n), kept


def max_margin_direction(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The hard-margin SVM direction through the origin, exactly.

    By duality, max_{|w|=1} min_i y_i w·x_i = min over the convex hull of z_i = y_i x_i of |u|,
    attained at w ∝ u. The min-norm point is a non-negative least-squares problem: minimise
    |Zα|² + (Σα − 1)² over α ≥ 0 (the scale of the second term does not change the direction),
    which Lawson–Hanson NNLS solves exactly and ~20× faster than liblinear at a huge C.
    """

    z = (y[:, None] * x).T
    a = np.vstack([z, np.ones((1, z.shape[1]))])
    b = np.zeros(a.shape[0])
    b[-1] = 1.0
    alpha, _ = nnls(a, b, maxiter=50 * a.shape[1])
    return z @ alpha


def _fit_classifier(learner: str, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    if len(np.unique(y)) < 2:  # one class: no margin to maximise; use the Hebbian direction
        return (y[:, None] * x).sum(axis=0) if len(y) else np.zeros(x.shape[1])
    if learner == "max-margin":
        return max_margin_direction(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter at tiny regularisation is expected
        if learner == "logistic":
            from sklearn.linear_model import LogisticRegression  # lazy: sklearn import costs ~1.5x torch's

            model = LogisticRegression(C=1e3, fit_intercept=False, max_iter=5_000, tol=1e-8)
        else:
            from sklearn.linear_model import Perceptron  # lazy: sklearn import costs ~1.5x torch's

            model = Perceptron(fit_intercept=False, max_iter=1_000, tol=None, shuffle=True,
                               random_state=seed % (2 ** 31))
        model.fit(x, y)
    return np.asarray(model.coef_, dtype=float).ravel()


def run_trial(trial: Trial) -> tuple[float, int]:
    """(test error, kept count) of one trial. Top-level, so executors can ship it to workers.

    BLAS runs single-threaded inside a trial: trials are the unit of parallelism (the executor
    spreads them), and a multi-threaded OpenBLAS on a busy machine can be 100× slower on the
    small solves here.
    """

    with threadpool_limits(limits=1):
        return _run_trial(trial)


def _run_trial(trial: Trial) -> tuple[float, int]:
    _validate(trial)
    rule = Rule(trial.rule, trial.p, trial.sharpness)
    rng = np.random.default_rng(trial.seed)
    if trial.learner == "ridge":
        w, kept = _ridge_streaming(trial, rule, rng)
        return angle_error(w), kept
    x, t, y = _draw(rng, trial.n, trial.d, trial.rho)
    mask = _keep_mask(rng, rule, t, trial.selection)
    w = _fit_classifier(trial.learner, x[mask], y[mask], trial.seed)
    return angle_error(w), int(mask.sum())


def trials_for(point: dict, seeds: int, seed: int, point_index: int) -> list[Trial]:
    """The seeded trials of one (rule, p, ρ, d, n, ...) point; seeds from (seed, point, repetition)."""
    return [Trial(**point, seed=shard_seed(seed, point_index, k)) for k in range(seeds)]


def simulate_points(points: list[dict], *, seeds: int | list[int] = 5, seed: int = 0, engine: str = "local",
                    description: str = "Monte-Carlo", confidence: float = 0.95) -> list[MonteCarlo]:
    """Monte-Carlo for many points at once: every (point, repetition) is one executor item.

    `seeds` is the number of independent pools per point, or one number per point.
    """
    counts = list(seeds) if isinstance(seeds, (list, tuple)) else [seeds] * len(points)
    if len(counts) != len(points) or min(counts, default=1) < 1:
        raise ConfigError(f"seeds must be ≥ 1 (one count, or one per point); got {seeds}", "use e.g. 5")
    items = []
    for i, (point, count) in enumerate(zip(points, counts)):
        trials = trials_for(point, count, seed, i)
        _validate(trials[0])
        items.extend(trials)
    results = get_executor(engine).map(run_trial, items, description=description)
    out, start = [], 0
    for count in counts:
        chunk = results[start:start + count]
        start += count
        out.append(MonteCarlo(np.array([e for e, _ in chunk]), np.array([k for _, k in chunk]), confidence))
    return out


def simulate(rule: str, p: float, rho: float, d: int, n: int, *, learner: str = "ridge", lam: float = 1e-2,
             selection: str = "threshold", sharpness: float = 4.0, seeds: int = 5, seed: int = 0,
             engine: str = "local") -> MonteCarlo:
    """Monte-Carlo test error of one setting over `seeds` independent pools."""
    point = dict(rule=rule, p=p, rho=rho, d=d, n=n, learner=learner, lam=lam, selection=selection,
                 sharpness=sharpness)
    return simulate_points([point], seeds=seeds, seed=seed, engine=engine)[0]


def sorscher_point(alpha_tot: float, f: float, rule: str, *, N: int = 100, theta: float = 0.0,
                   learner: str = "max-margin") -> dict:
    """Sorscher et al.'s setting as a point: P = α_tot·N examples, keep the fraction f by margin
    rank along a probe at angle θ (radians) from the teacher, train a max-margin student."""
    return dict(rule=rule, p=f, rho=math.cos(theta), d=N, n=int(round(alpha_tot * N)), learner=learner,
                lam=1e-2, selection="rank")
