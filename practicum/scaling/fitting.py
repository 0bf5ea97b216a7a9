"""Fitting routines for single-curve families.

Every routine takes the curve in the family's own space: `u` (x divided by the family's
x-scale) and `t` (the target in the family's direction: a rising score for LCDB families, a
positive falling error/loss otherwise), sample weights `w` and a numpy Generator; it returns a
`FitOutcome` or raises `FitError`.

- `lsq` (the fitter named by LCDB families) dispatches to `fit_varpro` where the formula has
  linear parameters (all but vap3 and expp3): closed-form weighted least squares for those, a
  fixed grid over the 0–2 nonlinear ones evaluated in one batched pass, one Gauss–Newton polish
  from the best grid point. Otherwise (or with `method="lsq"`) `fit_lsq`, the LCDB recipe
  (spec §4.1) with deterministic starts: a fixed Halton set in [0, 1)^k screened for finite
  values on the training and check anchors and ranked by SSE, Levenberg–Marquardt from the
  best, `n_restarts` successes kept. No routine draws random numbers, so the same data give the
  same fit whatever the seed; with x divided by x_min/16 they also give it whatever the units.
- dedicated routines for last1, Hestness, Kaplan, M1–M4 and BNSL (see each docstring).

`init` (a parameter vector) turns every routine into a local polish from that point: the
bootstrap refits from the point estimate that way (spec §4.2 "refit from the point estimate").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares, leastsq, minimize_scalar
from scipy.stats import qmc

from practicum.errors import FitError
from practicum.scaling.families import Family, bnsl_value, m4_solve


@dataclass
class FitOutcome:
    theta: np.ndarray
    loss: float  # the routine's own objective at theta
    info: dict = field(default_factory=dict)


def _finite(values) -> bool:
    return bool(np.isfinite(values).all())


def _wmean(values, w) -> float:
    return float(np.sum(w * values) / np.sum(w))


# ---------------------------------------------------------------- LCDB multi-start least squares

_START_POOL_SIZE = 256
_START_POOLS: dict[int, np.ndarray] = {}


def start_pool(k: int) -> np.ndarray:
    """A fixed quasi-random set of starts in [0, 1)^k (unscrambled Halton, the all-zero point
    dropped): the same starts for every seed, so the same data always give the same fit."""
    if k not in _START_POOLS:
        _START_POOLS[k] = qmc.Halton(d=k, scramble=False).random(_START_POOL_SIZE + 1)[1:]
    return _START_POOLS[k]


def fit_lsq(fam: Family, u, t, w, rng: np.random.Generator | None = None, *, u_check=None, init=None,
            extra_starts=(), n_restarts: int = 6, max_failed_fits: int = 200,
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


# ---------------------------------------------------------------- variable projection (LCDB families)
#
# Most LCDB formulas are linear in some parameters given the others (pow3 = a − b·u^(−c) is linear
# in a, b for fixed c). Variable projection solves those by weighted least squares inside the
# objective, so only the 0–2 nonlinear ones are searched: a fixed grid over them (deterministic,
# the same for every seed and, since u = x/(x_min/16), for every unit of x), then a
# Gauss–Newton polish of the best grid points. Each spec: (nonlinear names' positions, basis(u,
# q) → columns whose weighted combination is f, assemble(q, lin) → θ or None, grid(u) → q rows).

def _cols(*columns):
    """Stack basis columns on the last axis, broadcasting: q may hold one point (scalars) or a
    whole grid (arrays of shape (G, 1)), giving (n, m) or (G, n, m)."""
    return np.stack(np.broadcast_arrays(*columns), axis=-1)


def _rates(u, n=40):
    return np.geomspace(0.01 / u.max(), 30.0 / u.min(), n)


def _shape_rate_grid(u, n=15):
    rows = []
    for d in np.linspace(0.05, 2.5, n):
        for a in np.geomspace(0.01 / u.max() ** d, 30.0 / u.min() ** d, n):
            rows.append((a, d))
    return np.array(rows)


_EXPONENTS = np.linspace(-0.5, 3.0, 71)

VARPRO = {
    "pow2": (lambda u, q: _cols(-(u ** -q[0])), lambda q, l: [l[0], q[0]], lambda t: [t[1]],
             lambda u: _EXPONENTS[:, None]),
    "exp2": (lambda u, q: _cols(np.exp(-q[0] * u)), lambda q, l: [l[0], q[0]], lambda t: [t[1]],
             lambda u: _rates(u)[:, None]),
    "log2": (lambda u, q: _cols(-np.log(u), 1.0), lambda q, l: [l[0], l[1]],
             lambda t: [], lambda u: np.zeros((1, 0))),
    "lin2": (lambda u, q: _cols(u, 1.0), lambda q, l: [l[0], l[1]],
             lambda t: [], lambda u: np.zeros((1, 0))),
    "ilog2": (lambda u, q: _cols(-1.0 / np.log(u), 1.0), lambda q, l: [l[0], l[1]],
              lambda t: [], lambda u: np.zeros((1, 0))),
    "pow3": (lambda u, q: _cols(1.0, -(u ** -q[0])), lambda q, l: [l[0], l[1], q[0]],
             lambda t: [t[2]], lambda u: _EXPONENTS[:, None]),
    "exp3": (lambda u, q: _cols(np.exp(-q[0] * u), 1.0), lambda q, l: [l[0], q[0], l[1]],
             lambda t: [t[1]], lambda u: _rates(u)[:, None]),
    "expd3": (lambda u, q: _cols(np.exp(-q[0] * u), 1.0 - np.exp(-q[0] * u)),
              lambda q, l: [l[0], q[0], l[1]], lambda t: [t[1]], lambda u: _rates(u)[:, None]),
    "logpower3": (lambda u, q: _cols(1.0 / (1.0 + (u / np.exp(q[0])) ** q[1])),
                  lambda q, l: [l[0], q[0], q[1]], lambda t: [t[1], t[2]],
                  lambda u: np.array([(b, c) for b in np.log(np.geomspace(u.min() / 100, u.max() * 100, 15))
                                      for c in np.concatenate([np.linspace(-4.0, -0.1, 8),
                                                               np.linspace(0.1, 4.0, 8)])])),
    "mmf4": (lambda u, q: _cols(q[0] / (q[0] + u ** q[1]), u ** q[1] / (q[0] + u ** q[1])),
             lambda q, l: [l[0], q[0], l[1], q[1]], lambda t: [t[1], t[3]],
             lambda u: np.array([(np.sqrt(u.min() * u.max()) ** d * r, d) for d in np.linspace(0.05, 3.0, 15)
                                 for r in np.geomspace(1e-3, 1e3, 15)])),
    "wbl4": (lambda u, q: _cols(-np.exp(-q[0] * u ** q[1]), 1.0),
             lambda q, l: [q[0], l[0], l[1], q[1]], lambda t: [t[0], t[3]], _shape_rate_grid),
    "exp4": (lambda u, q: _cols(-np.exp(-q[0] * u ** q[1]), 1.0),
             lambda q, l: None if l[0] <= 0 else [q[0], float(np.log(l[0])), l[1], q[1]],
             lambda t: [t[0], t[3]], _shape_rate_grid),
    "janoschek4": (lambda u, q: _cols(1.0, -np.exp(-q[0] * u ** q[1])),
                   lambda q, l: [l[0], l[1], q[0], q[1]], lambda t: [t[2], t[3]], _shape_rate_grid),
    "pow4": (lambda u, q: _cols(1.0, -((u + q[1]) ** -q[0])),
             lambda q, l: [l[0], l[1], q[0], q[1]], lambda t: [t[2], t[3]],
             lambda u: np.array([(c, u.min() * d) for c in np.linspace(0.05, 3.0, 15)
                                 for d in np.concatenate([[-0.9, -0.5, 0.0], np.geomspace(0.01, 100, 12)])])),
}


def _d(*columns):
    """∂(basis column j)/∂q_k stacked as (n, m, k) from per-column lists of per-parameter arrays."""
    return np.stack([np.stack(np.broadcast_arrays(*col), axis=-1) for col in columns], axis=-2)


def _stretched(u, q):
    """(u^d, e^(−a·u^d), ln u) for the stretched exponentials wbl4, exp4, janoschek4 (q = a, d)."""
    ud = u ** q[1]
    return ud, np.exp(-q[0] * ud), np.log(u)


# ∂basis/∂q of each VARPRO family with nonlinear parameters, for the analytic Jacobian of the
# projected residual (finite differences cost k more projections per polish step, each mostly numpy's
# per-call overhead on ~10-60 points). (u, q) → (n, m, k); checked against finite differences in
# tests/test_scaling_issue23.py.
VARPRO_GRADIENT = {
    "pow2": lambda u, q: _d([u ** -q[0] * np.log(u)]),
    "exp2": lambda u, q: _d([-u * np.exp(-q[0] * u)]),
    "pow3": lambda u, q: _d([0.0 * u], [u ** -q[0] * np.log(u)]),
    "exp3": lambda u, q: _d([-u * np.exp(-q[0] * u)], [0.0 * u]),
    "expd3": lambda u, q: _d([-u * np.exp(-q[0] * u)], [u * np.exp(-q[0] * u)]),
    "logpower3": lambda u, q: (lambda s, lu: _d([q[1] * s / (1 + s) ** 2, -s * (lu - q[0]) / (1 + s) ** 2]))(
        np.exp(q[1] * (np.log(u) - q[0])), np.log(u)),
    "mmf4": lambda u, q: (lambda v, lu: _d([v / (q[0] + v) ** 2, -q[0] * v * lu / (q[0] + v) ** 2],
                                           [-v / (q[0] + v) ** 2, q[0] * v * lu / (q[0] + v) ** 2]))(
        u ** q[1], np.log(u)),
    "wbl4": lambda u, q: (lambda ud, e, lu: _d([ud * e, q[0] * ud * lu * e], [0.0 * u, 0.0 * u]))(*_stretched(u, q)),
    "janoschek4": lambda u, q: (lambda ud, e, lu: _d([0.0 * u, 0.0 * u], [ud * e, q[0] * ud * lu * e]))(
        *_stretched(u, q)),
    "pow4": lambda u, q: (lambda p: _d([0.0 * u, 0.0 * u], [p * np.log(u + q[1]), q[0] * p / (u + q[1])]))(
        (u + q[1]) ** -q[0]),
}
VARPRO_GRADIENT["exp4"] = VARPRO_GRADIENT["wbl4"]  # the same basis (−e^(−a·u^d), 1); only θ's assembly differs

# Lower bounds on the nonlinear parameters, where a family needs them. pow4 = a − b·(u + d)^(−c)
# is an `auto` candidate because it levels off at a (families.AUTO_FAMILIES), which needs c ≥ 0;
# an unbounded polish can take c below 0, where the law grows without limit instead (BB/unit
# 2-shot of Alabdulmohsin et al.: c = −0.14, a lower training error and a worse extrapolation than
# the c ≈ 0.001 fit before issue 15). A polish that leaves the bounds is redone within them, so
# fits that respect them are unchanged.
VARPRO_LOWER = {"pow4": np.array([0.0, -np.inf])}


def _grid_sse(basis, qs, u, t, sw) -> np.ndarray:
    """The projected SSE of every grid row at once (batched normal equations); inf where the
    basis is not finite or the projection is singular."""
    if qs.shape[1] == 0:
        return np.zeros(len(qs))
    with np.errstate(all="ignore"):
        design = basis(u, [qs[:, j:j + 1] for j in range(qs.shape[1])]) * sw[None, :, None]
        design = np.broadcast_to(design, (len(qs),) + design.shape[-2:])
        target = t * sw
        ok = np.all(np.isfinite(design), axis=(1, 2))
        design = np.where(ok[:, None, None], design, 0.0)
        gram = np.einsum("gni,gnj->gij", design, design)
        rhs = np.einsum("gni,n->gi", design, target)
        ridge = 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(gram.shape[1])
        try:
            lin = np.linalg.solve(gram + ridge + 1e-300 * np.eye(gram.shape[1]), rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            return np.full(len(qs), np.inf)
        sse = np.sum((np.einsum("gni,gi->gn", design, lin) - target) ** 2, axis=1)
    return np.where(ok & np.isfinite(sse), sse, np.inf)


def _solve_small(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """gram⁻¹·rhs for the 1×1 and 2×2 normal equations of the projection, in closed form (np.linalg.solve's
    checks and dispatch cost more than the arithmetic at this size); larger systems go to np.linalg.solve."""
    m = gram.shape[0]
    if m == 1:
        return rhs / gram[0, 0]
    if m == 2:
        (a, b), (c, d) = gram
        det = a * d - b * c
        if det == 0 or not np.isfinite(det):
            raise np.linalg.LinAlgError("singular normal equations")
        inverse = np.array([[d, -b], [-c, a]]) / det
        return inverse @ rhs
    return np.linalg.solve(gram, rhs)


def _project(basis, assemble, u, t, sw, q):
    """(θ, weighted residual r, (A, G, c)) of the projection at nonlinear parameters q: c the weighted
    least-squares coefficients of the basis columns, A = W½Φ(q), G = AᵀA (with a whisper of ridge);
    (None, None, None) where the basis is not finite or θ cannot be formed."""
    with np.errstate(all="ignore"):
        design = basis(u, q)
        if not _finite(design):
            return None, None, None
        a = design * sw[:, None]
        try:  # normal equations: m <= 2 columns, much cheaper than lstsq
            gram = a.T @ a
            gram = gram + 1e-12 * np.trace(gram) * np.eye(gram.shape[0])
            lin = _solve_small(gram, a.T @ (t * sw))
        except np.linalg.LinAlgError:
            return None, None, None
        theta = assemble(q, lin)
        if theta is None:
            return None, None, None
        return np.asarray(theta, dtype=float), sw * (design @ lin - t), (a, gram, lin)


def _projected_jacobian(gradient, u, sw, q, parts, r) -> np.ndarray:
    """∂r/∂q of the projected residual r = A·c(q) − W½t, exactly (Golub & Pereyra):
    P⊥·D_k·c − A·G⁻¹·D_kᵀ·r with D_k = W½·∂Φ/∂q_k; zeros where it is not finite."""
    a, gram, lin = parts
    with np.errstate(all="ignore"):
        d = gradient(u, q) * sw[:, None, None]  # (n, m, k)
        dc = np.einsum("nmk,m->nk", d, lin)
        try:
            jac = dc - a @ _solve_small(gram, a.T @ dc + np.einsum("nmk,n->mk", d, r))
        except np.linalg.LinAlgError:
            return np.zeros((u.size, len(q)))
    return jac if _finite(jac) else np.zeros((u.size, len(q)))


def fit_varpro(fam: Family, u, t, w, rng=None, *, u_check=None, init=None, extra_starts=(), n_polish: int = 1,
               **opts) -> FitOutcome:
    """Variable projection for the LCDB families in `VARPRO` (see above); `init` (the bootstrap's
    refit from the point estimate) polishes the nonlinear parameters from there."""
    basis, assemble, split, grid = VARPRO[fam.name]
    u_all = u if u_check is None else np.concatenate([u, u_check])
    sw = np.sqrt(w)

    last = {}  # the last projection, which the Jacobian at the same q reuses

    def project(q):
        theta, r, parts = _project(basis, assemble, u, t, sw, q)
        if parts is not None:
            last.update(q=np.array(q, dtype=float), r=r, parts=parts)
        return theta, r

    def resid(q):
        _, r = project(q)
        return np.full(u.size, 1e5) if r is None or not _finite(r) else r

    gradient = VARPRO_GRADIENT.get(fam.name)

    def jacobian(q):
        if not (last and np.array_equal(last["q"], q)):
            last.clear()
            project(q)
        if not last or not _finite(last["r"]):
            return np.zeros((u.size, len(q)))  # where resid is its constant penalty
        return _projected_jacobian(gradient, u, sw, q, last["parts"], last["r"])

    def valid(theta):
        return theta is not None and _finite(theta) and _finite(fam.func(u_all, *theta))

    if init is not None:
        starts = [np.asarray(split(np.asarray(init, dtype=float)), dtype=float)]
    else:
        qs = np.array(list(grid(u)) + [split(np.asarray(s, dtype=float)) for s in extra_starts], dtype=float)
        qs = qs.reshape(len(qs), -1)
        order = np.argsort(_grid_sse(basis, qs, u, t, sw), kind="stable")
        starts = []
        for i in order:  # the best valid grid points, in order of their projected SSE
            theta, _ = project(qs[i])
            if valid(theta):
                starts.append(qs[i])
                if len(starts) == n_polish:
                    break
    # a positive rate (the first nonlinear parameter of these) is polished in log space: rates span
    # orders of magnitude, and a linear step wanders along the flat valley of exp(−a·u^d)
    log_rate = fam.name in ("exp2", "exp3", "expd3", "mmf4", "wbl4", "exp4", "janoschek4")
    lower = VARPRO_LOWER.get(fam.name)  # in q's own space: no bounded family has a log rate
    best = None
    for q0 in starts:
        q = q0
        if q0.size:
            use_log = log_rate and q0[0] > 0
            to_q = (lambda z: np.concatenate([np.exp(z[:1]), z[1:]])) if use_log else (lambda z: z)
            z0 = np.concatenate([np.log(q0[:1]), q0[1:]]) if use_log else q0

            def jac_z(z):  # the chain rule through the log rate: ∂q0/∂z0 = q0
                q = to_q(z)
                return jacobian(q) * (np.concatenate([q[:1], np.ones(q.size - 1)]) if use_log else 1.0)

            def polish(start, method, **how):
                # MINPACK's 'lm' counts the k evaluations of a finite-difference Jacobian in max_nfev and
                # an analytic one not: the same cap of about 20 iterations either way
                analytic = gradient is not None
                nfev = 20 if analytic and method == "lm" else 20 * (q0.size + 1)
                return least_squares(lambda z: resid(to_q(z)), start, x_scale="jac", method=method,
                                     jac=jac_z if analytic else "2-point", max_nfev=nfev, **how).x

            try:
                z = polish(z0, method="lm" if u.size >= q0.size else "trf")
                if lower is not None and np.any(z < lower):
                    z = polish(np.maximum(z0, lower), method="trf", bounds=(lower, np.inf))
                q = to_q(z)
            except (ValueError, np.linalg.LinAlgError):
                q = q0
        for cand in (q, q0):
            theta, r = project(cand)
            if valid(theta):
                sse = float(r @ r)
                if best is None or sse < best[0]:
                    best = (sse, theta)
                break
    if best is None:
        if init is None:  # nothing on the grid was valid: the LCDB recipe as a last resort
            return fit_lsq(fam, u, t, w, rng, u_check=u_check, extra_starts=extra_starts, **opts)
        raise FitError(f"{fam.name}: the refit from the point estimate is not finite", "use more data points")
    return FitOutcome(best[1], best[0] / float(np.sum(w)), {"method": "varpro"})


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


def _loglin_rows(logx, logy, w):
    """`_loglin` for a whole grid at once: `logx` and `logy` are (G, n) or (n,) (broadcast), and
    each row's weighted regression comes in closed form → (p0, p1), each (G,)."""
    logx, logy = np.broadcast_arrays(np.atleast_2d(logx), np.atleast_2d(logy))
    sw = float(np.sum(w))
    x_mean, y_mean = logx @ w / sw, logy @ w / sw
    dx, dy = logx - x_mean[:, None], logy - y_mean[:, None]
    p1 = (dx * dy) @ w / ((dx * dx) @ w)
    return y_mean - p1 * x_mean, p1


def _log_sse_rows(pred, t, w) -> np.ndarray:
    """`_log_sse` of every row of `pred` (G, n); inf where a row is not finite."""
    with np.errstate(all="ignore"):
        r = np.log(pred) - np.log(t)
        sse = (r ** 2) @ w
    return np.where(np.all(np.isfinite(r), axis=1), sse, np.inf)


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
    grid = np.asarray(grid, dtype=float)
    with np.errstate(all="ignore"):  # the whole grid in one batched regression
        p0, p1 = _loglin_rows(logu, np.log(t[None, :] - grid[:, None]), w)
        p1 = np.minimum(p1, 0.0)
        losses = _log_sse_rows(grid[:, None] + np.exp(p0)[:, None] * u[None, :] ** p1[:, None], t, w)
    best = int(np.argmin(losses))
    best_loss, best_theta = float(losses[best]), np.array([grid[best], np.exp(p0[best]), p1[best]])
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
        grid = np.array([max(init[1], 0.0)])
    else:
        grid = np.concatenate([[0.0], np.logspace(lo, hi, 60)])
    with np.errstate(all="ignore"):  # the whole grid in one batched regression
        p0, p1 = _loglin_rows(np.log(inv[None, :] + grid[:, None]), np.log(t), w)
        p1 = np.maximum(p1, 0.0)
        losses = _log_sse_rows(np.exp(p0)[:, None] * (inv[None, :] + grid[:, None]) ** p1[:, None], t, w)
    best = int(np.argmin(losses))
    best_loss, best_theta = float(losses[best]), np.array([np.exp(p0[best]), grid[best], p1[best]])
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


def _m4_inner(logu, t, w, eps_inf, eps_0, with_sse=False):
    """(β, c, α) for fixed (ε∞, ε0): log(y − ε∞) = log β + c·log x + α·log(ε0 − y) with c ≤ 0,
    α ≥ 0, solved exactly over the four active sets of the two sign constraints."""
    z = np.log(t - eps_inf)
    v = np.log(eps_0 - t)
    if not (_finite(z) and _finite(v)):
        return (np.nan, np.nan, np.nan, np.inf) if with_sse else (np.nan, np.nan, np.nan)
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
        if use_c and use_a:
            break  # the unconstrained optimum is feasible, so it is the constrained one too
    if best is None:
        return (np.nan, np.nan, np.nan, np.inf) if with_sse else (np.nan, np.nan, np.nan)
    sse, beta, c, alpha = best
    return (beta, c, alpha, sse) if with_sse else (beta, c, alpha)


def _m4_inner_rows(logu, t, w, eps_inf, eps_0):
    """`_m4_inner` for G pairs (ε∞, ε0) at once → (β, c, α), each (G,): the four active sets'
    regressions by batched pseudo-inverses (lstsq's minimum-norm solutions), then per row the
    unconstrained optimum if feasible, else the feasible set with the smallest SSE."""
    with np.errstate(all="ignore"):
        z = np.log(t[None, :] - eps_inf[:, None])
        v = np.log(eps_0[:, None] - t[None, :])
    n_rows = eps_inf.size
    sw = np.sqrt(w)
    ones, lu = np.ones((n_rows, t.size)), np.broadcast_to(logu, (n_rows, t.size))
    ok_rows = np.all(np.isfinite(z), axis=1) & np.all(np.isfinite(v), axis=1)
    z, v = np.where(ok_rows[:, None], z, 0.0), np.where(ok_rows[:, None], v, 0.0)
    best = np.full((n_rows, 4), np.nan)  # (sse, beta, c, alpha)
    for use_c, use_a in ((True, True), (True, False), (False, True), (False, False)):
        cols = [ones] + ([lu] if use_c else []) + ([v] if use_a else [])
        design = np.stack(cols, axis=2) * sw[None, :, None]
        coef = np.einsum("gkn,gn->gk", np.linalg.pinv(design), z * sw)
        c = coef[:, 1] if use_c else np.zeros(n_rows)
        a = coef[:, -1] if use_a else np.zeros(n_rows)
        sse = np.sum((np.einsum("gnk,gk->gn", design, coef) - z * sw) ** 2, axis=1)
        feasible = (c <= 0) & (a >= 0) & ok_rows
        if use_c and use_a:  # the unconstrained optimum, where feasible, is the constrained one
            take = feasible
        else:
            take = feasible & (np.isnan(best[:, 0]) | (sse < best[:, 0])) & ~full
        best[take] = np.column_stack([sse, np.exp(coef[:, 0]), c, a])[take]
        if use_c and use_a:
            full = take
    return best[:, 1], best[:, 2], best[:, 3]


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

    def resid(p):
        eps_inf, e0 = unpack(p)
        with np.errstate(all="ignore"):
            beta, c, alpha = _m4_inner(logu, t, w, eps_inf, e0)
            r = np.sqrt(w) * (np.log(m4_solve(u, eps_inf, e0, alpha, beta, c)) - np.log(t))
        return np.where(np.isfinite(r), r, 1e3)

    def jacobian(p):
        """Forward differences (scipy's '2-point' steps) with the base point and both steps solved
        in one batched pass: a third of the inner regressions' and the solver's calls."""
        h = np.sqrt(np.finfo(float).eps) * np.where(p >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(p))
        h = (p + h) - p
        rows = np.vstack([p, p + np.diag(h)])
        eps_infs, e0s = unpack(rows.T)
        e0s = np.broadcast_to(np.asarray(e0s, dtype=float), eps_infs.shape)
        with np.errstate(all="ignore"):
            beta, c, alpha = _m4_inner_rows(logu, t, w, eps_infs, e0s)
            pred = m4_solve(u[None, :], eps_infs[:, None], e0s[:, None], alpha[:, None], beta[:, None], c[:, None])
            r = np.sqrt(w) * (np.log(pred) - np.log(t))
        r = np.where(np.isfinite(r), r, 1e3)
        return ((r[1:] - r[0]) / h[:, None]).T

    if init is not None:
        e_inf = min(max(init[0], tmin * 1e-9), tmin * (1 - 1e-9))
        if bounded:
            frac = min(max((init[1] - tmax) / (eps_0_max - tmax), 1e-9), 1 - 1e-9)
            p1 = np.log(frac / (1 - frac)) - 2.0
        else:
            p1 = np.log(max(init[1] - tmax, span * 1e-6) / span)
        p_starts = [np.array([np.log(e_inf / (tmin - e_inf)), p1])]
    else:
        # the grid on the true objective (a search in the regression's transformed space alone
        # extrapolated worse on the NMT curves of Alabdulmohsin et al.), all 49 points at once
        grid = np.array(list(itertools.product(np.linspace(-6, 6, 7), np.linspace(-5, 4, 7))))
        eps_infs, e0s = (np.array(v) for v in zip(*(unpack(p) for p in grid)))
        beta, c, alpha = _m4_inner_rows(logu, t, w, eps_infs, e0s)
        pred = m4_solve(u[None, :], eps_infs[:, None], e0s[:, None], alpha[:, None], beta[:, None], c[:, None])
        losses = np.where(e0s > tmax, _log_sse_rows(pred, t, w), np.inf)
        p_starts = [grid[int(np.argmin(losses))]]

    best_loss, best_theta = np.inf, None
    for p0 in p_starts:
        # a Gauss–Newton polish of the two outer parameters from the best grid point (Nelder–Mead
        # before it cost 3x the time for the same fits on the Alabdulmohsin curves)
        try:
            p_fin = least_squares(resid, p0, jac=jacobian, method="trf", max_nfev=60, x_scale=1.0).x
        except (ValueError, np.linalg.LinAlgError):
            p_fin = p0
        for p in (p0, p_fin):
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


def fit_lcdb(fam, u, t, w, rng=None, **opts) -> FitOutcome:
    """Variable projection where the formula allows it, the LCDB multi-start recipe otherwise
    (vap3, expp3) or when asked (`method="lsq"`)."""
    if fam.name in VARPRO and opts.pop("method", "varpro") == "varpro":
        return fit_varpro(fam, u, t, w, rng, **opts)
    opts.pop("method", None)
    return fit_lsq(fam, u, t, w, rng, **opts)


FITTERS = {
    "lsq": fit_lcdb, "last1": fit_last1, "kaplan": fit_kaplan, "m1": fit_m1, "m2": fit_m2, "m3": fit_m3,
    "m4": fit_m4, "hestness": fit_hestness, "bnsl": fit_bnsl,
}
