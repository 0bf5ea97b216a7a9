"""The registry of scaling-law families.

Each family declares its parameters, its formula, its direction and how it is fitted:

- direction "increasing": the formula models a score that rises with data (the LCDB set is
  written for accuracy); direction "decreasing": it models an error or a loss that falls.
  `practicum.scaling.law` maps the user's metric onto the family's direction, so an error
  curve is never fitted with an increasing family silently (it is fitted as 1 − error, or
  −loss for an unbounded loss).
- `func(x, *theta)` evaluates the law (numpy, vectorised, may return non-finite values for bad
  parameters: the fitter rejects those).
- `fitter`: "lsq" (the LCDB multi-start least-squares recipe over `start`) or the name of a
  dedicated routine in `practicum.scaling.fitting` (closed forms, grids, alternating fits).
- `x_scale`: "lcdb" fits on x / (min(x_train)/16), so the first point sits at LCDB's first
  anchor 16 whatever the units of x (so x and 1e6·x give the same fit); this keeps
  exponential forms usable when x is in the millions. The fitted parameters then refer to that unit, reported as
  `x_scale_`. "one" fits on raw x (power laws are scale-free up to their coefficient).

Joint laws of several inputs (Chinchilla L(N, D), Muennighoff L(N, D, U_D)) and Goyal's pool
utility are listed here too, with `kind` saying which API fits them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from practicum.errors import FitError


@dataclass(frozen=True)
class Family:
    name: str
    params: tuple[str, ...]
    formula: str
    direction: str  # "increasing" | "decreasing"
    source: str
    func: Callable[..., np.ndarray] | None = None
    fitter: str = "lsq"
    x_scale: str = "lcdb"
    bounds: tuple[tuple[float, float], ...] | None = None
    kind: str = "curve"  # "curve" (y vs x), "joint" (several inputs), "pool" (Goyal)
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def min_points(self) -> int:
        """Fewest distinct x that pin the parameters down (last1 needs one)."""
        return max(1, self.n_params)

    def describe(self) -> dict:
        return {"name": self.name, "params": list(self.params), "formula": self.formula,
                "direction": self.direction, "source": self.source, "fitter": self.fitter,
                "x_scale": self.x_scale, "kind": self.kind,
                "bounds": None if self.bounds is None else [list(b) for b in self.bounds]}


def _safe(fn):
    """Evaluate with floating-point warnings silenced: bad parameters give inf/nan, rejected later."""
    def wrapped(x, *theta):
        with np.errstate(all="ignore"):
            return fn(np.asarray(x, dtype=float), *theta)
    wrapped.__name__ = fn.__name__
    return wrapped


# ---------------------------------------------------------------- LCDB (increasing)

@_safe
def _last1(x, a):
    return np.full(np.shape(x), a, dtype=float)


@_safe
def _pow2(x, a, b):
    return -a * x ** (-b)


@_safe
def _log2(x, a, b):
    return -a * np.log(x) + b


@_safe
def _exp2(x, a, b):
    return a * np.exp(-b * x)


@_safe
def _lin2(x, a, b):
    return a * x + b


@_safe
def _ilog2(x, a, b):
    return b - a / np.log(x)


@_safe
def _pow3(x, a, b, c):
    return a - b * x ** (-c)


@_safe
def _exp3(x, a, b, c):
    return a * np.exp(-b * x) + c


@_safe
def _vap3(x, a, b, c):
    return np.exp(a + b / x + c * np.log(x))


@_safe
def _expp3(x, a, b, c):
    return c - np.exp((x - b) ** a)


@_safe
def _expd3(x, a, b, c):
    return c - (c - a) * np.exp(-b * x)


@_safe
def _logpower3(x, a, b, c):
    return a / (1 + (x / np.exp(b)) ** c)


@_safe
def _mmf4(x, a, b, c, d):
    return (a * b + c * x ** d) / (b + x ** d)


@_safe
def _wbl4(x, a, b, c, d):
    return c - b * np.exp(-a * x ** d)


@_safe
def _exp4(x, a, b, c, d):
    return c - np.exp(-a * x ** d + b)


@_safe
def _pow4(x, a, b, c, d):
    return a - b * (x + d) ** (-c)


@_safe
def _janoschek4(x, a, b, c, d):
    return a - b * np.exp(-c * x ** d)


# ---------------------------------------------------------------- power laws (decreasing)

@_safe
def _hestness(x, alpha, beta_g, gamma):
    return alpha * x ** beta_g + gamma


@_safe
def _kaplan(x, d_c, alpha_d):
    return (d_c / x) ** alpha_d


@_safe
def _m1(x, beta, c):
    return beta * x ** c


@_safe
def _m2(x, eps_inf, beta, c):
    return eps_inf + beta * x ** c


@_safe
def _m3(x, beta, gamma, c):
    return beta * (1.0 / x + gamma) ** c


def m4_solve(x, eps_inf, eps_0, alpha, beta, c, iters: int = 60):
    """Solve (y − ε∞)/(ε0 − y)^α = β x^c for y in (ε∞, ε0), vectorised over x (and over the
    parameters, which broadcast against x: a column of parameter sets solves a whole grid).

    With y = ε∞ + D·σ(z), D = ε0 − ε∞, the equation becomes
    h(z) = log σ(z) − α·log σ(−z) + (1 − α)·log D − log(β x^c) = 0, where h rises monotonically
    (h′ = σ(−z) + α·σ(z) > 0 for α ≥ 0) and has one curvature sign ((α − 1)·σ(z)σ(−z)), so
    Newton's method converges from any start (after at most one overshoot, monotonically and
    then quadratically): ~6–10 steps to full precision where bisection needed 64. NaN where
    the parameters are invalid (ε0 ≤ ε∞, α < 0, β ≤ 0, or not finite).
    """
    x = np.asarray(x, dtype=float)
    eps_inf, eps_0, alpha, beta, c = (np.asarray(v, dtype=float) for v in (eps_inf, eps_0, alpha, beta, c))
    with np.errstate(all="ignore"):
        valid = np.isfinite(eps_inf) & np.isfinite(eps_0) & (eps_0 > eps_inf) & (alpha >= 0) & (beta > 0)
        log_rhs = np.log(beta) + c * np.log(x)
        span = eps_0 - eps_inf
        const = (1.0 - alpha) * np.log(span) - log_rhs
        z = np.zeros(const.shape)
        for _ in range(iters):
            log_s, log_sn = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
            step = (log_s - alpha * log_sn + const) / (np.exp(log_sn) + alpha * np.exp(log_s))
            z = z - step
            if not np.any(np.abs(step) > 1e-12 * (1.0 + np.abs(z))):
                break
        y = eps_inf + span * np.exp(-np.logaddexp(0.0, -z))
    return np.where(valid & np.isfinite(log_rhs) & np.isfinite(z), y, np.nan)


def _m4(x, eps_inf, eps_0, alpha, beta, c):
    return m4_solve(x, eps_inf, eps_0, alpha, beta, c)


def bnsl_value(x, a, b, c0, *breaks):
    """a + b·x^(−c0)·Π (1 + (x/d_i)^(1/f_i))^(−c_i·f_i); `breaks` = (c1, d1, f1, c2, d2, f2, ...)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        # Work in logs: x^(−c0) and the break factors overflow for x in the billions otherwise.
        log_term = -c0 * np.log(x)
        for i in range(0, len(breaks), 3):
            c_i, d_i, f_i = breaks[i:i + 3]
            log_term = log_term - c_i * f_i * np.logaddexp(0.0, np.log(x / d_i) / f_i)
        return a + b * np.exp(log_term)


def _bnsl1(x, a, b, c0, c1, d1, f1):
    return bnsl_value(x, a, b, c0, c1, d1, f1)


def _bnsl2(x, a, b, c0, c1, d1, f1, c2, d2, f2):
    return bnsl_value(x, a, b, c0, c1, d1, f1, c2, d2, f2)


_INF = np.inf
_LCDB = "Mohr et al., LCDB 1.0 (ECML-PKDD 2022)"

_FAMILIES: dict[str, Family] = {}


def _register(family: Family) -> None:
    _FAMILIES[family.name] = family


for _name, _params, _formula, _fn in [
    ("pow2", "ab", "-a*x^(-b)", _pow2),
    ("log2", "ab", "-a*log(x) + b", _log2),
    ("exp2", "ab", "a*exp(-b*x)", _exp2),
    ("lin2", "ab", "a*x + b", _lin2),
    ("ilog2", "ab", "b - a/log(x)", _ilog2),
    ("pow3", "abc", "a - b*x^(-c)", _pow3),
    ("exp3", "abc", "a*exp(-b*x) + c", _exp3),
    ("vap3", "abc", "exp(a + b/x + c*log(x))", _vap3),
    ("expp3", "abc", "c - exp((x - b)^a)", _expp3),
    ("expd3", "abc", "c - (c - a)*exp(-b*x)", _expd3),
    ("logpower3", "abc", "a / (1 + (x/exp(b))^c)", _logpower3),
    ("mmf4", "abcd", "(a*b + c*x^d) / (b + x^d)", _mmf4),
    ("wbl4", "abcd", "c - b*exp(-a*x^d)", _wbl4),
    ("exp4", "abcd", "c - exp(-a*x^d + b)", _exp4),
    ("pow4", "abcd", "a - b*(x + d)^(-c)", _pow4),
    ("janoschek4", "abcd", "a - b*exp(-c*x^d)", _janoschek4),
]:
    _register(Family(_name, tuple(_params), _formula, "increasing",
                     _LCDB + (" / LCDB 1.1" if _name == "janoschek4" else ""), func=_fn))

_register(Family("last1", ("a",), "a = last observed value", "increasing", _LCDB, func=_last1, fitter="last1",
                 notes="carries the mean of the largest-x measurements forward; no optimisation"))

_register(Family("hestness", ("alpha", "beta_g", "gamma"), "alpha*x^beta_g + gamma", "decreasing",
                 "Hestness et al. 2017 (arXiv 1712.00409)", func=_hestness, fitter="hestness", x_scale="one",
                 bounds=((0, _INF), (-3.0, 0.0), (0, _INF)),
                 notes="multi-start least squares in metric space, alpha in log space, beta_g in [-3, 0]"))
_register(Family("kaplan", ("d_c", "alpha_d"), "(d_c/x)^alpha_d", "decreasing",
                 "Kaplan et al. 2020 (arXiv 2001.08361)", func=_kaplan, fitter="kaplan", x_scale="one",
                 bounds=((0, _INF), (0, _INF)), notes="exact log-linear least squares"))
_register(Family("M1", ("beta", "c"), "beta*x^c", "decreasing",
                 "Alabdulmohsin et al. 2022 (arXiv 2209.06640)", func=_m1, fitter="m1", x_scale="one",
                 bounds=((0, _INF), (-_INF, 0))))
_register(Family("M2", ("eps_inf", "beta", "c"), "eps_inf + beta*x^c", "decreasing",
                 "Alabdulmohsin et al. 2022 (arXiv 2209.06640)", func=_m2, fitter="m2", x_scale="one",
                 bounds=((0, _INF), (0, _INF), (-_INF, 0)),
                 notes="alternating log-linear least squares for (beta, c) with Newton steps on eps_inf"))
_register(Family("M3", ("beta", "gamma", "c"), "beta*(1/x + gamma)^c", "decreasing",
                 "Alabdulmohsin et al. 2022 (arXiv 2209.06640)", func=_m3, fitter="m3", x_scale="one",
                 bounds=((0, _INF), (0, _INF), (0, _INF)), notes="gamma by grid search, (beta, c) log-linear"))
_register(Family("M4", ("eps_inf", "eps_0", "alpha", "beta", "c"),
                 "(y - eps_inf)/(eps_0 - y)^alpha = beta*x^c", "decreasing",
                 "Alabdulmohsin et al. 2022 (arXiv 2209.06640)", func=_m4, fitter="m4", x_scale="one",
                 bounds=((0, _INF), (0, _INF), (0, _INF), (0, _INF), (-_INF, 0)),
                 notes="(beta, c, alpha) by non-negative log-linear regression; (eps_inf, eps_0) by an outer "
                       "search; y solved by bisection"))
_register(Family("bnsl1", ("a", "b", "c0", "c1", "d1", "f1"),
                 "a + b*x^(-c0) * (1 + (x/d1)^(1/f1))^(-c1*f1)", "decreasing",
                 "Caballero et al. 2023 (arXiv 2210.14891)", func=_bnsl1, fitter="bnsl", x_scale="one",
                 bounds=((0, _INF), (0, _INF), (0, _INF), (-_INF, _INF), (0, _INF), (1e-3, _INF)),
                 extra={"breaks": 1}, notes="grid over the curve's range, then least squares on log(y + 1)"))
_register(Family("bnsl2", ("a", "b", "c0", "c1", "d1", "f1", "c2", "d2", "f2"),
                 "a + b*x^(-c0) * prod_i (1 + (x/d_i)^(1/f_i))^(-c_i*f_i), i = 1, 2", "decreasing",
                 "Caballero et al. 2023 (arXiv 2210.14891)", func=_bnsl2, fitter="bnsl", x_scale="one",
                 bounds=((0, _INF), (0, _INF), (0, _INF), (-_INF, _INF), (0, _INF), (1e-3, _INF),
                         (-_INF, _INF), (0, _INF), (1e-3, _INF)),
                 extra={"breaks": 2}))

# Laws of several inputs and the pool law: fitted by their own APIs, listed for discovery.
_register(Family("chinchilla", ("E", "A", "B", "alpha", "beta"), "E + A/N^alpha + B/D^beta", "decreasing",
                 "Hoffmann et al. 2022 (arXiv 2203.15556), approach 3", fitter="chinchilla", kind="joint",
                 notes="fit(np.column_stack([N, D]), L, family='chinchilla') or fit_chinchilla(N, D, L)"))
_register(Family("muennighoff", ("E", "A", "B", "alpha", "beta", "r_d_star", "r_n_star"),
                 "E + A/N'^alpha + B/D'^beta with effective N', D' under repetition", "decreasing",
                 "Muennighoff et al. 2023 (arXiv 2305.16264)", fitter="muennighoff", kind="joint",
                 notes="fit_muennighoff(N, D, U_D, L); effective_data(D, U)"))
_register(Family("goyal", ("a", "b", "tau", "d"), "(a*n/1e5)^b_k + d, b_k = b*0.5^(k/tau) in epoch k",
                 "decreasing", "Goyal et al. 2024 (arXiv 2404.07177)", fitter="goyal", kind="pool",
                 notes="fit_pool(n, y, pool_size); best_pool(...)"))

# Parameters in the user's units of x: the law is fitted on u = x/s; these map its parameters to
# those of the same formula written in x (None where the formula has no such form: ilog2, expp3).
_NATURAL = {
    "pow2": lambda t, s: [t[0] * s ** t[1], t[1]],
    "log2": lambda t, s: [t[0], t[1] + t[0] * math.log(s)],
    "exp2": lambda t, s: [t[0], t[1] / s],
    "lin2": lambda t, s: [t[0] / s, t[1]],
    "pow3": lambda t, s: [t[0], t[1] * s ** t[2], t[2]],
    "exp3": lambda t, s: [t[0], t[1] / s, t[2]],
    "vap3": lambda t, s: [t[0] - t[2] * math.log(s), t[1] * s, t[2]],
    "expd3": lambda t, s: [t[0], t[1] / s, t[2]],
    "logpower3": lambda t, s: [t[0], t[1] + math.log(s), t[2]],
    "mmf4": lambda t, s: [t[0], t[1] * s ** t[3], t[2], t[3]],
    "wbl4": lambda t, s: [t[0] * s ** -t[3], t[1], t[2], t[3]],
    "exp4": lambda t, s: [t[0] * s ** -t[3], t[1], t[2], t[3]],
    "pow4": lambda t, s: [t[0], t[1] * s ** t[2], t[2], t[3] * s],
    "janoschek4": lambda t, s: [t[0], t[1], t[2] * s ** -t[3], t[3]],
    "last1": lambda t, s: list(t),
    "hestness": lambda t, s: [t[0] * s ** -t[1], t[1], t[2]],
    "kaplan": lambda t, s: [t[0] * s, t[1]],
    "M1": lambda t, s: [t[0] * s ** -t[1], t[1]],
    "M2": lambda t, s: [t[0], t[1] * s ** -t[2], t[2]],
    "M3": lambda t, s: [t[0] * s ** t[2], t[1] / s, t[2]],
    "M4": lambda t, s: [t[0], t[1], t[2], t[3] * s ** -t[4], t[4]],
}


def natural_params(name: str, theta, scale: float) -> list[float] | None:
    """The parameters of family `name` for x in the user's units, given those fitted on x/scale."""
    if scale == 1.0:
        return [float(v) for v in theta]
    fn = _NATURAL.get(name)
    if fn is None:
        return None
    with np.errstate(all="ignore"):
        return [float(v) for v in fn(np.asarray(theta, dtype=float), float(scale))]


#: The default candidates of `family="auto"` and of the extrapolation benchmark (spec §10).
DEFAULT_FAMILIES = ("last1", "pow2", "pow3", "exp3", "log2", "ilog2", "vap3", "mmf4", "wbl4", "exp4", "pow4",
                    "M2", "M4", "bnsl1")


#: The candidates of `family="auto"`: the two baselines of spec §7.3 (last1 and the plain power
#: law M1, the only candidates a 2-point prefix of a 3-size curve can validate) and the defaults
#: that level off (a finite asymptote), so a choice made on a short validation horizon cannot run
#: away further out (log2, ilog2, pow2 and vap3 keep falling or rising without bound); bnsl1 is
#: left out because its grid makes auto several times slower.
AUTO_FAMILIES = ("last1", "M1", "pow3", "exp3", "mmf4", "wbl4", "exp4", "pow4", "M2", "M3", "M4")


def families(kind: str | None = None) -> list[str]:
    """Names of every registered family (or those of one `kind`: "curve", "joint", "pool")."""
    return [name for name, fam in _FAMILIES.items() if kind is None or fam.kind == kind]


def get_family(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        lowered = {k.lower(): k for k in _FAMILIES}
        if name.lower() in lowered:
            return _FAMILIES[lowered[name.lower()]]
        raise FitError(f"unknown family {name!r}",
                       f"use 'auto' or one of: {', '.join(_FAMILIES)}") from None
