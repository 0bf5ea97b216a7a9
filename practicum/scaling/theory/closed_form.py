"""Closed forms of the Deliberate Practice pruning theorem (arXiv 2502.15588, ICML 2025 version).

Model: x ~ N(0, I_d), y = sign(w0·x); a selection direction w_s with cos∠(w_s, w0) = ρ keeps
example i with probability q(t_i), t_i = x_i·w_s; the ridge learner on the kept examples,
normalised by the *pool* size n,

    ŵ = (XᵀDX/n + λI)⁻¹ XᵀDY/n,        D = diag(kept),

has test error arccos(cos∠(ŵ, w0))/π. In the proportional limit d/n → φ the error depends on
the rule only through four scalars (Lemmas 1–2):

    p = E[q(G)],  γ = E[q(G)G²],  β = 2E[q(G) N_pdf(τG)],  β̃ = 2E[q(G) N_cdf(τG) G],
    G ~ N(0, 1),  τ = ρ/√(1−ρ²).

Theorem 1 (ICML form) then gives the error from a distorted Marchenko–Pastur law m(z). Two
corrections against the printed paper are built in (see `scaling-laws.md` §8.2):

* r(z) = β²m(z) + β̃²m̃(z), as used in the proof (App. C.2); the main text's ω²m + ω̃²m̃ is a
  typo that sends the predicted error to 0 at large n;
* the arXiv v1 form Φ(−m₀/√(ν₀−m₀²)) was replaced; it is not offered.

Derivatives of m and m̃ are analytic (implicit differentiation of the quadratic m solves), so
the formulas stay accurate down to very small λ; Corollary 1 gives the λ → 0⁺ limit directly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import integrate, special

from practicum.errors import ConfigError

RULES = ("keep-hard", "keep-easy", "random", "none", "soft")
"""Selection rules: keep |t| ≤ ξ (hard), |t| > ξ (easy), a random fraction, everything, or the
soft hard-favouring rule q(t) = c·(4σ(t)(1−σ(t)))^ω."""

_PDF0 = 1.0 / math.sqrt(2.0 * math.pi)  # N_pdf(0)


def npdf(x):
    return np.exp(-0.5 * np.square(x)) * _PDF0


def ncdf(x):
    return special.ndtr(x)


# ---------------------------------------------------------------- the selection rule


@dataclass(frozen=True)
class Rule:
    """A selection rule along w_s, given by its kept fraction p.

    `threshold` (ξ, the paper's α) and the soft rule's constant are derived from p, so every
    rule is compared at the same kept fraction. `sharpness` is the soft rule's ω (its exponent;
    unrelated to the theorem's ω, ω̃).
    """

    name: str
    p: float = 1.0
    sharpness: float = 4.0

    def __post_init__(self):
        if self.name not in RULES:
            raise ConfigError(f"unknown selection rule {self.name!r}", f"use one of {', '.join(RULES)}")
        if self.name == "none":
            object.__setattr__(self, "p", 1.0)
        if not 0.0 < self.p <= 1.0:
            raise ConfigError(f"kept fraction p = {self.p} is outside (0, 1]", "give a fraction such as 0.5")
        if self.name == "soft":
            if self.sharpness <= 0:
                raise ConfigError(f"soft-rule sharpness {self.sharpness} must be > 0", "use e.g. 4")
            if self.p > soft_max_fraction(self.sharpness) + 1e-12:
                raise ConfigError(
                    f"the soft rule with sharpness {self.sharpness} keeps at most "
                    f"{soft_max_fraction(self.sharpness):.3f} of the pool, not p = {self.p}",
                    "lower p or lower the sharpness")

    @property
    def threshold(self) -> float:
        """ξ with P(|G| ≤ ξ) = p (keep-hard) or P(|G| > ξ) = p (keep-easy); nan otherwise."""
        if self.name == "keep-hard":
            return float(special.ndtri((1.0 + self.p) / 2.0))
        if self.name == "keep-easy":
            return float(special.ndtri(1.0 - self.p / 2.0))
        return float("nan")

    def keep_probability(self, t: np.ndarray) -> np.ndarray:
        """q(t): the probability that an example with projection t = x·w_s is kept."""
        t = np.asarray(t, dtype=float)
        if self.name == "keep-hard":
            return (np.abs(t) <= self.threshold).astype(float)
        if self.name == "keep-easy":
            return (np.abs(t) > self.threshold).astype(float)
        if self.name == "soft":
            return soft_constant(self.sharpness, self.p) * _soft_shape(t, self.sharpness)
        return np.full_like(t, self.p)  # random / none: independent of t


def _soft_shape(t, sharpness):
    sig = special.expit(t)
    return np.power(4.0 * sig * (1.0 - sig), sharpness)  # 1 at t = 0, → 0 for easy examples


def _gauss_expectation(fn) -> float:
    value, _ = integrate.quad(lambda g: fn(g) * float(npdf(g)), -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12,
                              limit=200)
    return value


@functools.lru_cache(maxsize=64)
def soft_max_fraction(sharpness: float) -> float:
    """The largest p the soft rule can keep (its constant c = 1, so q(0) = 1)."""
    return _gauss_expectation(lambda g: float(_soft_shape(g, sharpness)))


def soft_constant(sharpness: float, p: float) -> float:
    return p / soft_max_fraction(sharpness)


# ---------------------------------------------------------------- Lemmas 1–2: the rule's scalars


@dataclass(frozen=True)
class Scalars:
    p: float
    gamma: float
    beta: float
    beta_tilde: float

    def as_dict(self):
        return asdict(self)


def _tau(rho: float) -> float:
    _check_rho(rho)
    return rho / math.sqrt(1.0 - rho * rho)


def _check_rho(rho: float) -> None:
    if not -1.0 < rho < 1.0:
        raise ConfigError(f"correlation ρ = {rho} must lie strictly inside (−1, 1)",
                          "use e.g. 0.999 for a near-perfect direction")


def rule_scalars(rule: Rule, rho: float) -> Scalars:
    """(p, γ, β, β̃) in closed form (DP Lemmas 1–2) for hard/easy/random/none; quadrature for soft."""
    tau = _tau(rho)
    s = math.sqrt(1.0 - rho * rho)
    if rule.name == "keep-hard" and rule.p >= 1.0:
        rule = Rule("none")  # ξ = ∞ keeps everything
    if rule.name in ("none", "random"):
        p = rule.p  # q ≡ p is independent of t, so every expectation scales by p
        return Scalars(p, p, p * 2 * _PDF0 * s, p * 2 * rho * _PDF0)
    if rule.name in ("keep-hard", "keep-easy"):
        a = rule.threshold
        eps2 = 2 * ncdf(tau * a) - 1
        if rule.name == "keep-hard":
            p = 2 * ncdf(a) - 1
            gamma = p - 2 * a * npdf(a)
            eps1 = 2 * ncdf(a / s) - 1
            beta_tilde = 2 * (rho * _PDF0 * eps1 - npdf(a) * eps2)
        else:
            p = 2 * (1 - ncdf(a))
            gamma = p + 2 * a * npdf(a)
            eps1 = 2 * (1 - ncdf(a / s))
            beta_tilde = 2 * (rho * _PDF0 * eps1 + npdf(a) * eps2)
        beta = 2 * _PDF0 * s * eps1
        return Scalars(float(p), float(gamma), float(beta), float(beta_tilde))
    return rule_scalars_quadrature(rule, rho)


def rule_scalars_quadrature(rule: Rule, rho: float) -> Scalars:
    """The same scalars by numerical integration of their definitions (any rule)."""
    tau = _tau(rho)
    q = lambda g: float(rule.keep_probability(np.array(g)))  # noqa: E731
    breaks = []
    if rule.name in ("keep-hard", "keep-easy"):
        breaks = [-rule.threshold, rule.threshold]

    def expect(fn):
        if not breaks:
            return _gauss_expectation(lambda g: q(g) * fn(g))
        edges = [-np.inf, *breaks, np.inf]
        return sum(integrate.quad(lambda g: q(g) * fn(g) * float(npdf(g)), lo, hi, epsabs=1e-13, epsrel=1e-12,
                                  limit=200)[0] for lo, hi in zip(edges[:-1], edges[1:]))

    p = expect(lambda g: 1.0)
    gamma = expect(lambda g: g * g)
    beta = 2 * expect(lambda g: float(npdf(tau * g)))
    beta_tilde = 2 * expect(lambda g: float(ncdf(tau * g)) * g)
    return Scalars(p, gamma, beta, beta_tilde)


# ---------------------------------------------------------------- spectral functions


def stieltjes_m(z: float, p: float, phi: float) -> float:
    """The distorted Marchenko–Pastur law at z < 0:

    m(z) = [p − φ − z − √((p−φ−z)² − 4φz)] / (2φz).
    """
    b = p - phi - z
    disc = math.sqrt(b * b - 4.0 * phi * z)
    # the same root written without cancellation: m = 2 / (b + disc) (product of roots is 1/(φz))
    return 2.0 / (b + disc)


def stieltjes_m_prime(z: float, p: float, phi: float) -> float:
    """dm/dz from φz m² − (p−φ−z) m + 1 = 0."""
    m = stieltjes_m(z, p, phi)
    return -(phi * m * m + m) / (2.0 * phi * z * m - (p - phi - z))


@dataclass(frozen=True)
class Spectral:
    m: float
    m_prime: float
    m_tilde: float
    m_tilde_prime: float


def spectral(z: float, s: Scalars, phi: float) -> Spectral:
    m = stieltjes_m(z, s.p, phi)
    mp = stieltjes_m_prime(z, s.p, phi)
    sz = s.gamma / (1.0 + phi * m)
    sp = -s.gamma * phi * mp / (1.0 + phi * m) ** 2
    mt = 1.0 / (sz - z)
    mtp = -(sp - 1.0) / (sz - z) ** 2
    return Spectral(m, mp, mt, mtp)


# ---------------------------------------------------------------- Theorem 1 and Corollary 1


def _check_sizes(d: float, n: float, lam: float | None = None) -> None:
    if d <= 0 or n <= 0:
        raise ConfigError(f"dimension d = {d} and pool size n = {n} must be positive", "give d, n ≥ 1")
    if lam is not None and lam <= 0:
        raise ConfigError(f"ridge λ = {lam} must be > 0", "use corollary_error for the λ → 0 limit")


R_FORMS = ("proof", "main-text")


def theorem_terms(rule: Rule, rho: float, d: float, n: float, lam: float, r_form: str = "proof") -> dict[str, float]:
    """m₀, ν₀ and the error of Theorem 1, with the intermediate scalars (for reports and tests).

    `r_form="proof"` (default, correct) uses r = β²m + β̃²m̃; `"main-text"` reproduces the
    printed typo r = ω²m + ω̃²m̃, kept only to show that it sends the error to 0 at large n.
    """
    _check_sizes(d, n, lam)
    if r_form not in R_FORMS:
        raise ConfigError(f"unknown r(z) form {r_form!r}", f"use one of {', '.join(R_FORMS)}")
    s = rule_scalars(rule, rho)
    phi = d / n
    z = -lam
    sp = spectral(z, s, phi)
    omega = math.sqrt(1.0 - rho * rho) * s.beta
    omega_tilde = rho * s.beta_tilde
    m0 = omega * sp.m + omega_tilde * sp.m_tilde
    b2, bt2 = (s.beta ** 2, s.beta_tilde ** 2) if r_form == "proof" else (omega ** 2, omega_tilde ** 2)
    r = b2 * sp.m + bt2 * sp.m_tilde
    r_prime = b2 * sp.m_prime + bt2 * sp.m_tilde_prime
    nu0 = s.p * phi * sp.m_prime + r_prime - 2.0 * phi * sp.m_prime * r / (1.0 + phi * sp.m)
    cos = min(1.0, abs(m0) / math.sqrt(nu0)) if nu0 > 0 else 0.0
    return {"phi": phi, "m0": m0, "nu0": nu0, "cos": cos, "error": math.acos(cos) / math.pi, **s.as_dict()}


def theorem_error(rule: Rule, rho: float, d: float, n: float, lam: float) -> float:
    """Theorem 1 (ICML): E_test → arccos(|m₀|/√ν₀)/π for pool size n (before pruning)."""
    return theorem_terms(rule, rho, d, n, lam)["error"]


def corollary_error(rule: Rule, rho: float, d: float, n: float) -> float:
    """Corollary 1: the λ → 0⁺ limit, regime (A) φ < p (more kept points than dimensions) or (B) φ > p.

    At φ = p exactly the ridgeless learner interpolates at the peak of the multiple descent and
    the limit is the chance-level error of a direction swamped by noise; we return 0.5.
    """
    _check_sizes(d, n)
    s = rule_scalars(rule, rho)
    phi = d / n
    p, gamma, beta, bt = s.p, s.gamma, s.beta, s.beta_tilde
    omega = math.sqrt(1.0 - rho * rho) * beta
    omega_tilde = rho * bt
    if math.isclose(phi, p, rel_tol=1e-12):
        return 0.5
    if phi < p:
        a = (omega + omega_tilde * p / gamma) / (p - phi)
        r0 = beta ** 2 + bt ** 2 * p / gamma
        r0p = p * (beta ** 2 + bt ** 2 * ((p - phi) * p / gamma ** 2 + phi / gamma))
        b = (p * p * phi + r0p - 2 * phi * r0) / (p - phi) ** 3
    else:
        c0 = 1.0 - p / phi
        c1 = 1.0 - (p - gamma) / phi
        a = (omega + omega_tilde / c1) * c0
        r0 = beta ** 2 + bt ** 2 / c1
        b = (p * phi - r0) * c0
    cos = min(1.0, abs(a) / math.sqrt(b)) if b > 0 else 0.0
    return math.acos(cos) / math.pi


def error_curve(rule: Rule, rho: float, d: float, sizes, lam: float | None, kept: bool = False) -> np.ndarray:
    """Theorem 1 (or Corollary 1 when `lam` is None) over pool sizes, or kept sizes if `kept`."""
    out = []
    for size in np.asarray(sizes, dtype=float):
        n = size / rule.p if kept else size
        out.append(corollary_error(rule, rho, d, n) if lam is None else theorem_error(rule, rho, d, n, lam))
    return np.array(out)


def best_rule_for_fraction(rho: float, d: float, n: float, p: float, lam: float | None,
                           rules=("keep-hard", "keep-easy", "random")) -> tuple[str, dict[str, float]]:
    """Which rule keeping the fraction p of a pool of n gives the lowest theoretical error."""
    errors = {}
    for name in rules:
        rule = Rule(name, p)
        errors[name] = corollary_error(rule, rho, d, n) if lam is None else theorem_error(rule, rho, d, n, lam)
    return min(errors, key=errors.get), errors


def threshold_for_fraction(name: str, p: float) -> float:
    """ξ (the paper's α) for a hard/easy rule that keeps the fraction p."""
    return Rule(name, p).threshold


def fraction_for_threshold(name: str, threshold: float) -> float:
    """The kept fraction p of a hard/easy rule with threshold ξ (Lemma 1's p)."""
    if name == "keep-hard":
        return float(2 * ncdf(threshold) - 1)
    if name == "keep-easy":
        return float(2 * (1 - ncdf(threshold)))
    raise ConfigError(f"rule {name!r} has no threshold", "use keep-hard or keep-easy")


def derivative_check(rule: Rule, rho: float, d: float, n: float, lam: float, step: float | None = None):
    """Analytic m′, m̃′ against central differences (step ~1e-4·λ), for tests."""
    s = rule_scalars(rule, rho)
    phi = d / n
    h = step if step is not None else 1e-4 * lam
    a = spectral(-lam, s, phi)
    up, dn = spectral(-lam + h, s, phi), spectral(-lam - h, s, phi)
    return {"m_prime": (a.m_prime, (up.m - dn.m) / (2 * h)),
            "m_tilde_prime": (a.m_tilde_prime, (up.m_tilde - dn.m_tilde) / (2 * h))}
