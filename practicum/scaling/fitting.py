"""Fitting routines for single-curve families.

Every routine takes the curve in the family's own space: `u` (x divided by the family's
x-scale) and `t` (the target in the family's direction: a rising score for LCDB families, a
positive falling error/loss otherwise), sample weights `w` and a numpy Generator; it returns a
`FitOutcome` or raises `FitError`.

- `lsq`: the LCDB recipe (spec §4.1): uniform [0, 1)^k starts, a start is rejected until the law
  is finite on the training and check anchors, Levenberg–Marquardt on f(u) − t, non-finite
  extrapolations rejected, `n_restarts` successes kept, the lowest training MSE wins; give up
  after `max_bad_starts` bad starts or `max_failed_fits` failed fits. pow4 also starts from the
  best pow3 solution.
- dedicated routines for last1, Hestness, Kaplan, M1–M4 and BNSL (see each docstring).

`init` (a parameter vector) turns every routine into a local polish from that point: the
bootstrap refits from the point estimate that way (spec §4.2 "refit from the point estimate").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares, leastsq, minimize, minimize_scalar

from practicum.errors import FitError
from practicum.scaling.families import Family, bnsl_value, m4_solve


@dataclass
class FitOutcome:
    theta: np.ndarray
    loss: float  # the routine's own objective at theta
    info: dict = field(default_factory=dict)


def _finite(values) -> bool:
    return bool(np.all(np.isfinite(values)))


def _wmean(values, w) -> float:
    return float(np.sum(w * values) / np.sum(w))


# ---------------------------------------------------------------- LCDB multi-start least squares

_START_POOL_SIZE = 256
_START_POOLS: dict[int, np.ndarray] = {}


def start_pool(k: int) -> np.ndarray:
    """A fixed quasi-random set of starts in [0, 1)^k (unscrambled Halton, the all-zero point
    dropped): the same starts for every seed, so the same data always give the same fit."""
    if k not in _START_POOLS:
        from scipy.stats import qmc

        _START_POOLS[k] = qmc.Halton(d=k, scramble=False).random(_START_POOL_SIZE + 1)[1:]
    return _START_POOLS[k]


def fit_lsq(fam: Family, u, t, w, rng: np.random.Generator | None = None, *, u_check=None, init=None,
            extra_starts=(), n_restarts: int = 6, max_bad_starts: int = 1000, max_failed_fits: int = 200,
            **_) -> FitOutcome:
    """The LCDB recipe with deterministic starts: the 256 points of a fixed Halton set in
    [0, 1)^k (LCDB's start box) are screened (finite on the training and check anchors) and
    ranked by training SSE in one cheap pass; Levenberg–Marquardt polishes the extra starts and
    then the best-ranked ones until `n_restarts` succeed. `rng` is unused (kept for the API)."""
    u_check = u if u_check is None else np.concatenate([u, u_check])
    sw = np.sqrt(w)
    k = fam.n_params

    def resid(theta):
        r = sw * (fam.func(u, *theta) - t)
        return np.where(np.isfinite(r), r, 1e10)  # keep LM away from invalid regions

    # Levenberg–Marquardt needs at least as many residuals as parameters.
    method = "lm" if len(u) >= k else "trf"
    bad = 0
    if init is not None:
        starts, keep = [np.asarray(init, dtype=float)], 1
    else:
        keep = n_restarts
        screened = []
        for theta0 in start_pool(k):
            if not _finite(fam.func(u_check, *theta0)):
                bad += 1
                continue
            screened.append((float(np.sum(resid(theta0) ** 2)), tuple(theta0)))
        screened.sort()
        starts = [np.asarray(s, dtype=float) for s in extra_starts] + [np.array(s) for _, s in screened]
    best: list[tuple[float, np.ndarray]] = []
    failed = 0
    for theta0 in starts:
        if len(best) >= keep:
            break
        try:
            if method == "lm":
                # MINPACK's LM via leastsq, with curve_fit's default budget of 200·(k+1) calls (as LCDB)
                theta, _, _, _, status = leastsq(resid, theta0, maxfev=200 * (k + 1), full_output=True)
            else:
                theta = least_squares(resid, theta0, method="trf", max_nfev=200 * (k + 1)).x
            ok = _finite(theta) and _finite(fam.func(u_check, *theta))
        except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
            ok = False
        if not ok:
            failed += 1
            if failed >= max_failed_fits:
                break
            continue
        mse = _wmean((fam.func(u, *theta) - t) ** 2, w)
        best.append((mse, theta))
    if not best:
        raise FitError(f"{fam.name}: no start converged to a finite fit ({bad} bad starts, {failed} failed fits)",
                       "try another family or more data points")
    mse, theta = min(best, key=lambda item: item[0])
    return FitOutcome(theta, mse, {"successes": len(best), "bad_starts": bad, "failed_fits": failed})


def fit_last1(fam, u, t, w, rng, **_) -> FitOutcome:
    """The value at the largest x (mean over repeated measurements there)."""
    last = u == u.max()
    a = _wmean(t[last], w[last])
    return FitOutcome(np.array([a]), _wmean((t - a) ** 2, w))


# ---------------------------------------------------------------- log-linear helpers

def _loglin(logx, logy, w):
    """Weighted least squares logy ≈ p0 + p1·logx; returns (p0, p1)."""
    sw = np.sqrt(w)
    design = np.column_stack([np.ones_like(logx), logx]) * sw[:, None]
    coef, *_ = np.linalg.lstsq(design, logy * sw, rcond=None)
    return coef


def _log_sse(pred, t, w) -> float:
    with np.errstate(all="ignore"):
        r = np.log(pred) - np.log(t)
    if not _finite(r):
        return np.inf
    return float(np.sum(w * r ** 2))


def _need_positive(fam, t):
    if np.any(t <= 0):
        raise FitError(f"{fam.name} models a positive error or loss but got values <= 0",
                       "pass --metric accuracy for accuracies, or use an LCDB family for signed metrics")


def fit_kaplan(fam, u, t, w, rng, **_) -> FitOutcome:
    """log L = α·log D_c − α·log D: exact weighted log-linear least squares."""
    _need_positive(fam, t)
    p0, p1 = _loglin(np.log(u), np.log(t), w)
    alpha = -p1
    if alpha <= 0:
        raise FitError("kaplan: the curve does not fall with x (fitted exponent <= 0)",
                       "use last1 or an LCDB family for flat or rising curves")
    d_c = np.exp(p0 / alpha)
    theta = np.array([d_c, alpha])
    return FitOutcome(theta, _log_sse(fam.func(u, *theta), t, w))


def fit_m1(fam, u, t, w, rng, **_) -> FitOutcome:
    """y = β·x^c by log-linear least squares, c clipped to ≤ 0."""
    _need_positive(fam, t)
    p0, p1 = _loglin(np.log(u), np.log(t), w)
    if p1 > 0:  # a rising curve: the best falling power law is flat
        p1, p0 = 0.0, np.log(np.exp(_wmean(np.log(t), w)))
    theta = np.array([np.exp(p0), p1])
    return FitOutcome(theta, _log_sse(fam.func(u, *theta), t, w))


def fit_m2(fam, u, t, w, rng, *, init=None, **_) -> FitOutcome:
    """y = ε∞ + β·x^c: for a given ε∞, (β, c) is log-linear least squares of log(y − ε∞) on log x;
    ε∞ is searched on a grid over [0, min y) and then polished by a bounded 1-D minimisation
    (the paper alternates the regression with Newton steps on ε∞). Objective: Σ w (log ŷ − log y)²."""
    _need_positive(fam, t)
    logu, tmin = np.log(u), float(t.min())

    def solve(eps):
        p0, p1 = _loglin(logu, np.log(t - eps), w)
        p1 = min(p1, 0.0)
        theta = np.array([eps, np.exp(p0), p1])
        return _log_sse(fam.func(u, *theta), t, w), theta

    if init is not None:
        grid = [min(max(init[0], 0.0), tmin * (1 - 1e-9))]
    else:
        grid = np.concatenate([[0.0], tmin * (1 - np.logspace(-4, 0, 40)[::-1][:-1])])
        grid = np.unique(np.clip(grid, 0, tmin * (1 - 1e-6)))
    scored = [solve(e) for e in grid]
    best_loss, best_theta = min(scored, key=lambda s: s[0])
    # polish ε∞ in the fraction of min(y) it uses (bounded, so the log stays defined)
    res = minimize_scalar(lambda f: solve(tmin * f)[0], bounds=(0.0, 1 - 1e-9), method="bounded",
                          options={"xatol": 1e-10})
    loss, theta = solve(tmin * res.x)
    if loss < best_loss:
        best_loss, best_theta = loss, theta
    if not np.isfinite(best_loss):
        raise FitError("M2: no finite fit", "check the curve is positive and falling")
    return FitOutcome(best_theta, best_loss)


def fit_m3(fam, u, t, w, rng, *, init=None, **_) -> FitOutcome:
    """y = β·(1/x + γ)^c, c ≥ 0: γ by grid search (log-spaced around the range of 1/x, plus 0),
    then (β, c) by log-linear least squares; the best γ is polished in log space."""
    _need_positive(fam, t)

    def solve(gamma):
        p0, p1 = _loglin(np.log(1.0 / u + gamma), np.log(t), w)
        p1 = max(p1, 0.0)
        theta = np.array([np.exp(p0), gamma, p1])
        return _log_sse(fam.func(u, *theta), t, w), theta

    inv = 1.0 / u
    lo, hi = np.log10(inv.min()) - 4, np.log10(inv.max()) + 2
    if init is not None:
        grid = [max(init[1], 0.0)]
    else:
        grid = np.concatenate([[0.0], np.logspace(lo, hi, 60)])
    best_loss, best_theta = min((solve(g) for g in grid), key=lambda s: s[0])
    if best_theta[1] > 0:
        res = minimize_scalar(lambda lg: solve(10.0 ** lg)[0],
                              bounds=(np.log10(best_theta[1]) - 0.5, np.log10(best_theta[1]) + 0.5),
                              method="bounded")
        loss, theta = solve(10.0 ** res.x)
        if loss < best_loss:
            best_loss, best_theta = loss, theta
    if not np.isfinite(best_loss):
        raise FitError("M3: no finite fit", "check the curve is positive and falling")
    return FitOutcome(best_theta, best_loss)


def _m4_inner(logu, t, w, eps_inf, eps_0):
    """(β, c, α) for fixed (ε∞, ε0): log(y − ε∞) = log β + c·log x + α·log(ε0 − y) with c ≤ 0,
    α ≥ 0, solved exactly over the four active sets of the two sign constraints."""
    z = np.log(t - eps_inf)
    v = np.log(eps_0 - t)
    if not (_finite(z) and _finite(v)):
        return np.nan, np.nan, np.nan
    sw = np.sqrt(w)
    best = None
    for use_c, use_a in ((True, True), (True, False), (False, True), (False, False)):
        cols = [np.ones_like(logu)] + ([logu] if use_c else []) + ([v] if use_a else [])
        design = np.column_stack(cols) * sw[:, None]
        try:
            coef, *_ = np.linalg.lstsq(design, z * sw, rcond=None)
        except np.linalg.LinAlgError:
            continue
        c = coef[1] if use_c else 0.0
        a = coef[-1] if use_a else 0.0
        if c > 0 or a < 0:
            continue
        sse = float(np.sum((design @ coef - z * sw) ** 2))
        if best is None or sse < best[0]:
            best = (sse, np.exp(coef[0]), c, a)
    if best is None:
        return np.nan, np.nan, np.nan
    _, beta, c, alpha = best
    return beta, c, alpha


def fit_m4(fam, u, t, w, rng, *, init=None, eps_0=None, eps_0_max=None, **_) -> FitOutcome:
    """(y − ε∞)/(ε0 − y)^α = β·x^c. For given (ε∞, ε0) the other three come from non-negative
    log-linear regression (`_m4_inner`); (ε∞, ε0) are searched in a reparameterisation that keeps
    0 ≤ ε∞ < min y and ε0 > max y (a grid, then Nelder–Mead), minimising Σ w (log ŷ − log y)²
    with ŷ from the bisection solver. Pass `eps_0=` to fix the random-guess error instead, or
    `eps_0_max=` to bound it (1 for error rates: the error of a random guess cannot exceed 1)."""
    _need_positive(fam, t)
    logu, tmin, tmax = np.log(u), float(t.min()), float(t.max())
    span = max(tmax - tmin, 1e-12 * tmax)

    bounded = eps_0 is None and eps_0_max is not None and tmax < eps_0_max

    def unpack(p):
        eps_inf = tmin / (1.0 + np.exp(-p[0]))
        if eps_0 is not None:
            e0 = float(eps_0)
        elif bounded:  # ε0 in (max y, eps_0_max) through a logistic
            e0 = tmax + (eps_0_max - tmax) / (1.0 + np.exp(-(p[1] + 2.0)))
        else:
            e0 = tmax + span * np.exp(p[1])
        return eps_inf, e0

    def objective(p):
        eps_inf, e0 = unpack(p)
        if e0 <= tmax:
            return np.inf, None
        with np.errstate(all="ignore"):
            beta, c, alpha = _m4_inner(logu, t, w, eps_inf, e0)
        theta = np.array([eps_inf, e0, alpha, beta, c])
        if not _finite(theta):
            return np.inf, None
        return _log_sse(m4_solve(u, *theta), t, w), theta

    if init is not None:
        e_inf = min(max(init[0], tmin * 1e-9), tmin * (1 - 1e-9))
        if bounded:
            frac = min(max((init[1] - tmax) / (eps_0_max - tmax), 1e-9), 1 - 1e-9)
            p1 = np.log(frac / (1 - frac)) - 2.0
        else:
            p1 = np.log(max(init[1] - tmax, span * 1e-6) / span)
        p_starts = [np.array([np.log(e_inf / (tmin - e_inf)), p1])]
    else:
        grid = list(itertools.product(np.linspace(-6, 6, 7), np.linspace(-5, 4, 7)))
        scored = sorted(((objective(np.array(p))[0], p) for p in grid), key=lambda s: s[0])
        p_starts = [np.array(scored[0][1])]
    def resid(p):
        eps_inf, e0 = unpack(p)
        with np.errstate(all="ignore"):
            beta, c, alpha = _m4_inner(logu, t, w, eps_inf, e0)
            r = np.sqrt(w) * (np.log(m4_solve(u, eps_inf, e0, alpha, beta, c)) - np.log(t))
        return np.where(np.isfinite(r), r, 1e3)

    best_loss, best_theta = np.inf, None
    for p0 in p_starts:
        res = minimize(lambda p: objective(p)[0], p0, method="Nelder-Mead",
                       options={"xatol": 1e-4, "fatol": 1e-14, "maxiter": 120})
        # then a Gauss–Newton polish of the two outer parameters
        try:
            p_fin = least_squares(resid, res.x, method="trf", max_nfev=60, x_scale=1.0).x
        except (ValueError, np.linalg.LinAlgError):
            p_fin = res.x
        for p in (res.x, p_fin):
            loss, theta = objective(p)
            if theta is not None and loss < best_loss:
                best_loss, best_theta = loss, theta
    if best_theta is None or not np.isfinite(best_loss):
        raise FitError("M4: no finite fit", "check the curve is positive and falling, or use M2")
    return FitOutcome(best_theta, best_loss)


# ---------------------------------------------------------------- Hestness

def fit_hestness(fam, u, t, w, rng, *, init=None, n_restarts: int = 6, **_) -> FitOutcome:
    """ε = α·m^β_g + γ by multi-start least squares in metric space (α in log space for scale,
    β_g ∈ [−3, 0], γ ∈ [0, ∞)); starts: γ uniform in [0, min y), β_g from the log-linear fit."""
    _need_positive(fam, t)
    sw = np.sqrt(w)
    logu, tmin = np.log(u), float(t.min())

    def resid(q):  # q = (log α, β_g, γ)
        with np.errstate(all="ignore"):
            r = sw * (np.exp(q[0] + q[1] * logu) + q[2] - t)
        return np.where(np.isfinite(r), r, 1e10)

    if init is not None:
        starts = [np.array([np.log(max(init[0], 1e-300)), init[1], init[2]])]
    else:
        starts = []
        for gamma in tmin * np.linspace(0.0, 1.0, n_restarts + 1)[:-1]:  # fixed starts: seed-free
            p0, p1 = _loglin(logu, np.log(t - gamma * (1 - 1e-9)), w)
            starts.append(np.array([p0, np.clip(p1, -3, 0), gamma]))
    lower, upper = [-np.inf, -3.0, 0.0], [np.inf, 0.0, np.inf]
    best = None
    for q0 in starts:
        q0 = np.clip(q0, np.array(lower) + 1e-12, np.array(upper) - 1e-12)
        res = least_squares(resid, q0, bounds=(lower, upper), method="trf", max_nfev=2000)
        loss = float(np.sum(res.fun ** 2))
        if _finite(res.x) and (best is None or loss < best[0]):
            best = (loss, res.x)
    if best is None:
        raise FitError("hestness: no finite fit", "check the curve is positive and falling")
    q = best[1]
    return FitOutcome(np.array([np.exp(q[0]), q[1], q[2]]), best[0] / np.sum(w))


# ---------------------------------------------------------------- BNSL

def fit_bnsl(fam, u, t, w, rng, *, init=None, grid_size: str = "full", **_) -> FitOutcome:
    """Broken neural scaling law with 1 or 2 breaks (spec §3.3).

    Objective: Σ w (log(ŷ + 1) − log(y + 1))² (the reference's MSLE). A brute-force grid adapted
    to the curve's range: a ∈ min(y)·{0, .1, …, .9}; b log-spaced so that b·x_min^(−c0) spans
    the range of y; c0, c1 ∈ {0, .25, .5, .75}; d1 log-spaced over [x_min, x_max]; f1 ∈ {.05,
    .25, .5, .75}; the best grid points are refined by least squares with b, d, f in log space.
    With 2 breaks, the second break is grid-searched on top of the best 1-break fit.
    """
    _need_positive(fam, t)
    n_breaks = fam.extra.get("breaks", 1)
    sw = np.sqrt(w)
    log1t = np.log1p(t)
    lo_x, hi_x = float(u.min()), float(u.max())

    def to_theta(q):  # internal (a, log b, c0, [c, log d, log f]*) → public
        theta = [q[0], np.exp(q[1]), q[2]]
        for i in range(3, len(q), 3):
            theta += [q[i], np.exp(q[i + 1]), np.exp(q[i + 2])]
        return np.array(theta)

    def to_q(theta):
        q = [theta[0], np.log(theta[1]), theta[2]]
        for i in range(3, len(theta), 3):
            q += [theta[i], np.log(theta[i + 1]), np.log(theta[i + 2])]
        return np.array(q)

    def resid(q):
        with np.errstate(all="ignore"):
            r = sw * (np.log1p(bnsl_value(u, *to_theta(q))) - log1t)
        return np.where(np.isfinite(r), r, 1e10)

    def refine(q0):
        # a (the limit) stays >= 0; the other parameters are free in their log/linear coordinates
        lower = np.full(q0.size, -np.inf)
        lower[0] = 0.0
        q0 = q0.copy()
        q0[0] = max(q0[0], 0.0)
        res = least_squares(resid, q0, method="trf", bounds=(lower, np.inf), max_nfev=300 * len(q0))
        return float(np.sum(res.fun ** 2)), res.x

    if init is not None:
        loss, q = refine(to_q(np.asarray(init, dtype=float)))
        return FitOutcome(to_theta(q), loss)

    fine = grid_size == "full"
    a_grid = t.min() * np.linspace(0, 0.9, 10 if fine else 4)
    c_grid = np.array([0.0, 0.25, 0.5, 0.75])
    f_grid = np.array([0.05, 0.25, 0.5, 0.75])
    d_grid = np.exp(np.linspace(np.log(lo_x), np.log(hi_x), 16 if fine else 8))
    brel_grid = (t.max() - 0.0) * np.logspace(-1.5, 1.0, 16 if fine else 6)
    A, BR, C0, C1, D1, F1 = np.meshgrid(a_grid, brel_grid, c_grid, c_grid, d_grid, f_grid, indexing="ij")
    cand = np.stack([A.ravel(), BR.ravel(), C0.ravel(), C1.ravel(), D1.ravel(), F1.ravel()], axis=1)
    b = cand[:, 1] * lo_x ** cand[:, 2]  # b·x_min^(−c0) = b_rel
    with np.errstate(all="ignore"):
        logx = np.log(u)[None, :]
        term = -cand[:, 2:3] * logx - cand[:, 3:4] * cand[:, 5:6] * np.logaddexp(
            0.0, (logx - np.log(cand[:, 4:5])) / cand[:, 5:6])
        pred = cand[:, 0:1] + b[:, None] * np.exp(term)
        sse = np.sum(w[None, :] * (np.log1p(pred) - log1t[None, :]) ** 2, axis=1)
    sse = np.where(np.isfinite(sse), sse, np.inf)
    order = np.argsort(sse)[:3]
    refined = []
    for i in order:
        theta0 = np.array([cand[i, 0], b[i], cand[i, 2], cand[i, 3], cand[i, 4], cand[i, 5]])
        refined.append(refine(to_q(theta0)))
    refined.sort(key=lambda r: r[0])
    best = refined[0]
    if n_breaks == 2:
        # a second break on top of each of the refined one-break fits: grid, then refine the best
        starts = []
        for _, base_q in refined:
            for c2, d2, f2 in itertools.product([-0.5, -0.25, 0.25, 0.5, 1.0], d_grid, f_grid):
                q = np.concatenate([base_q, [c2, np.log(d2), np.log(f2)]])
                starts.append((float(np.sum(resid(q) ** 2)), q))
        starts.sort(key=lambda s: s[0])
        best = min((refine(q0) for _, q0 in starts[:5]), key=lambda r: r[0])
    theta = to_theta(best[1])
    if not _finite(theta):
        raise FitError(f"{fam.name}: no finite fit", "use fewer breaks or another family")
    return FitOutcome(theta, best[0])


FITTERS = {
    "lsq": fit_lsq, "last1": fit_last1, "kaplan": fit_kaplan, "m1": fit_m1, "m2": fit_m2, "m3": fit_m3,
    "m4": fit_m4, "hestness": fit_hestness, "bnsl": fit_bnsl,
}
