"""Every family fits its own noise-free synthetic data back (stated tolerances), plus the spec's
known answers: Chinchilla from its start grid and by varpro, tokens per parameter, Muennighoff
effective epochs, Goyal's pool table."""

import math
import warnings

import numpy as np
import pytest

from practicum.scaling import (
    ChinchillaLaw,
    MuennighoffLaw,
    best_pool,
    effective_data,
    effective_epochs,
    families,
    fit,
    fit_chinchilla,
    fit_muennighoff,
    fit_pool,
    get_family,
    pool_error,
)
from practicum.scaling.families import bnsl_value, m4_solve

ANCHORS = 16 * 2 ** (np.arange(17) / 2)  # LCDB anchors 16 … 4096

# (family, metric, true params): LCDB forms are increasing scores; "loss" fits them on −y.
CASES = [
    ("pow2", "loss", (2.0, 0.5)),
    ("log2", "accuracy", (-0.08, 0.1)),
    ("exp2", "accuracy", (0.9, 0.001)),
    ("lin2", "accuracy", (1e-4, 0.3)),
    ("ilog2", "accuracy", (1.0, 1.0)),
    ("pow3", "accuracy", (0.9, 2.0, 0.5)),
    ("exp3", "accuracy", (-0.5, 0.002, 0.9)),
    ("vap3", "accuracy", (-1.0, -5.0, 0.05)),
    ("expp3", "accuracy", (0.02, 0.5, 3.4)),
    ("expd3", "accuracy", (0.2, 0.003, 0.85)),
    ("logpower3", "accuracy", (0.9, 5.0, -0.8)),
    ("mmf4", "accuracy", (0.1, 50.0, 0.9, 1.0)),
    ("wbl4", "accuracy", (0.05, 0.7, 0.9, 0.6)),
    ("exp4", "accuracy", (0.3, -0.5, 0.9, 0.4)),
    ("pow4", "accuracy", (0.9, 2.0, 0.5, 10.0)),
    ("janoschek4", "accuracy", (0.9, 0.7, 0.05, 0.6)),
    ("hestness", "loss", (3.0, -0.4, 0.05)),
    ("M1", "error", (2.0, -0.3)),
    ("M2", "error", (0.05, 3.0, -0.45)),
    ("M3", "error", (2.0, 0.002, 0.4)),
]

# families whose parameters are identifiable from these anchors: check them too (relative tol)
PARAM_CHECK = {"pow2", "log2", "exp2", "lin2", "ilog2", "pow3", "exp3", "vap3", "expd3", "logpower3", "pow4",
               "hestness", "M1", "M2", "M3"}


def _truth(name, metric, theta, x):
    fam = get_family(name)
    t = fam.func(x, *theta)
    if fam.direction == "increasing":
        return t if metric == "accuracy" else -t
    return t


@pytest.mark.parametrize("name,metric,theta", CASES, ids=[c[0] for c in CASES])
def test_family_recovers_its_own_curve(name, metric, theta):
    y = _truth(name, metric, theta, ANCHORS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = fit(ANCHORS, y, name, metric=metric, x_scale=1.0, seed=0)
    assert law.family_ == name
    # the fit reproduces the curve (tolerance: 1e-4 absolute on metric values of order 0.1–1)
    assert np.max(np.abs(law.predict(ANCHORS) - y)) < 1e-4
    assert law.r2_ > 0.9999
    if name in PARAM_CHECK:
        np.testing.assert_allclose(list(law.params_.values()), theta, rtol=2e-3, atol=1e-6)


def test_kaplan_recovers_exactly():
    x = np.geomspace(1e8, 1e11, 8)
    y = (5.4e13 / x) ** 0.095
    law = fit(x, y, "kaplan", metric="loss")
    assert law.params_["alpha_d"] == pytest.approx(0.095, rel=1e-9)
    assert law.params_["d_c"] == pytest.approx(5.4e13, rel=1e-6)


def test_m4_recovers_parameters_and_solver_inverts_the_law():
    x = np.geomspace(1e3, 1e8, 12)
    theta = (0.1, 0.9, 0.7, 30.0, -0.3)
    y = m4_solve(x, *theta)
    # the implicit law holds at the solved y
    np.testing.assert_allclose((y - 0.1) / (0.9 - y) ** 0.7, 30.0 * x ** -0.3, rtol=1e-9)
    law = fit(x, y, "M4")
    np.testing.assert_allclose(list(law.params_.values()), theta, rtol=1e-4)


def test_bnsl_one_break_recovers_the_curve_and_break():
    x = np.geomspace(100, 1e5, 17)
    theta = (0.05, 3.0, 0.2, 0.6, 2000.0, 0.2)
    y = bnsl_value(x, *theta)
    law = fit(x, y, "bnsl1", metric="loss")
    assert np.max(np.abs(np.log(law.predict(x)) - np.log(y))) < 1e-4
    p = law.params_
    assert p["d1"] == pytest.approx(2000.0, rel=0.05)
    assert p["c0"] + p["c1"] == pytest.approx(0.8, abs=0.01)  # slope after the break


def test_bnsl_segment_slopes_follow_the_spec():
    # for small f, segment k has log-log slope −(c0 + … + c_{k−1}) on the reducible part
    x = np.array([10.0, 20.0, 1e6, 2e6])
    y = bnsl_value(x, 0.0, 1.0, 0.3, 0.5, 1000.0, 0.01)
    slope_before = np.log(y[1] / y[0]) / np.log(2)
    slope_after = np.log(y[3] / y[2]) / np.log(2)
    assert slope_before == pytest.approx(-0.3, abs=1e-6)
    assert slope_after == pytest.approx(-0.8, abs=1e-6)


def test_last1_carries_the_mean_of_the_largest_size_forward():
    law = fit([1, 2, 3, 3], [0.5, 0.4, 0.3, 0.2], "last1")
    assert law.predict([10])[0] == pytest.approx(0.25)


def test_registry_lists_every_spec_family_with_direction():
    names = set(families())
    expected = {"last1", "pow2", "log2", "exp2", "lin2", "ilog2", "pow3", "exp3", "vap3", "expp3", "expd3",
                "logpower3", "mmf4", "wbl4", "exp4", "pow4", "janoschek4", "hestness", "kaplan", "bnsl1", "bnsl2",
                "chinchilla", "muennighoff", "goyal", "M1", "M2", "M3", "M4"}
    assert expected <= names
    assert get_family("pow3").direction == "increasing"
    assert get_family("M4").direction == "decreasing"
    assert all(get_family(n).describe()["params"] for n in names)


# ---------------------------------------------------------------- Chinchilla (spec §4.2, §12)

HOFFMANN = ChinchillaLaw(E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
                         alpha=0.33917084, beta=0.2849083)


def _chinchilla_runs():
    N, D = np.meshgrid(np.geomspace(4e7, 1.6e10, 6), np.geomspace(5e9, 5e11, 6))
    N, D = N.ravel(), D.ravel()
    return N, D, HOFFMANN.predict(N, D)


@pytest.mark.parametrize("method", ["grid", "varpro"])
def test_chinchilla_exact_recovery(method):
    N, D, L = _chinchilla_runs()
    # grid: L-BFGS from the 20 best points of the spec's 4,500-point start grid (all of them by default)
    law = fit_chinchilla(N, D, L, method=method, max_starts=20 if method == "grid" else None, warn=False)
    for got, want in zip(law.params_.values(), HOFFMANN.params_.values()):
        assert got == pytest.approx(want, rel=1e-5)


def test_chinchilla_objective_is_the_huber_sum_and_start_grid_has_4500_points():
    from practicum.scaling.chinchilla import _objective, huber, start_grid

    assert start_grid().shape == (4500, 5)
    assert huber(np.array([5e-4]))[0] == pytest.approx(0.5 * 25e-8)
    assert huber(np.array([3e-3]))[0] == pytest.approx(1e-3 * (3e-3 - 0.5e-3))
    N, D, L = _chinchilla_runs()
    q = np.array([6.0, 6.0, 0.5, 0.3, 0.3])
    args = (np.log(N), np.log(D), np.log(L), np.ones_like(L), 1e-3, False)
    value, grad = _objective(q, *args)
    eps = 1e-7
    numeric = [(_objective(q + eps * np.eye(5)[i], *args)[0] - _objective(q - eps * np.eye(5)[i], *args)[0])
               / (2 * eps) for i in range(5)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)
    # a sum over runs: duplicating every run doubles it
    doubled = _objective(q, *(np.tile(a, 2) for a in args[:4]), 1e-3, False)[0]
    assert doubled == pytest.approx(2 * value)


def test_tokens_per_parameter_matches_the_spec():
    assert HOFFMANN.tokens_per_parameter(5.9e23) == pytest.approx(59, abs=1)
    rounded = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    assert rounded.tokens_per_parameter(5.9e23) == pytest.approx(93, abs=1.5)
    n_opt, d_opt = HOFFMANN.compute_optimal(5.9e23)
    assert 6 * n_opt * d_opt == pytest.approx(5.9e23, rel=1e-9)


def test_chinchilla_warns_when_alpha_and_beta_are_not_separable():
    from practicum.scaling import IdentifiabilityWarning

    N = np.geomspace(1e8, 8e8, 6)
    D = 20 * N  # N and D move together: one decade, perfectly correlated
    L = HOFFMANN.predict(N, D)
    with pytest.warns(IdentifiabilityWarning):
        fit_chinchilla(N, D, L, method="varpro")


# ---------------------------------------------------------------- Muennighoff (spec §5)

def test_effective_epochs_match_the_paper():
    np.testing.assert_allclose(effective_epochs([2, 4, 8, 16, 40]), [1.97, 3.73, 6.62, 10.58, 15.17], atol=6e-3)
    assert effective_data(5e9, 1e10) == pytest.approx(5e9)  # under one epoch nothing is repeated


def test_c4_constants_and_n_opt():
    law = MuennighoffLaw()
    assert law.A == pytest.approx(520.8, abs=0.1)
    assert law.B == pytest.approx(1487.7, abs=0.1)
    assert law.E == pytest.approx(1.869, abs=1e-3)
    assert law.G == pytest.approx(0.2258, abs=1e-4)
    assert law.n_opt(1e9) / 1e9 == pytest.approx(0.051, abs=1e-3)


def test_muennighoff_stage_two_recovers_r_stars():
    N, U, E = np.meshgrid(np.geomspace(1e8, 3e9, 4), np.geomspace(1e9, 1e11, 4), [1, 2, 4, 8, 16, 32])
    N, U, E = N.ravel(), U.ravel(), E.ravel()
    truth = MuennighoffLaw(r_d_star=10.0, r_n_star=3.0)
    L = truth.predict(N, E * U, U)
    law = fit_muennighoff(N, E * U, U, L, base=MuennighoffLaw())
    assert law.r_d_star == pytest.approx(10.0, rel=1e-3)
    assert law.r_n_star == pytest.approx(3.0, rel=1e-2)


# ---------------------------------------------------------------- Goyal pools (spec §6)

GOYAL_TABLE = {32e6: [18.25, 15.84, 13.42, 11.68], 64e6: [24.62, 23.30, 20.40, 17.99],
               128e6: [28.73, 29.60, 26.77, 24.13], 640e6: [31.18, 38.55, 37.56, 35.14]}
GOYAL_BEST = {32e6: 1, 64e6: 1, 128e6: 2, 640e6: 2}


@pytest.mark.parametrize("budget", sorted(GOYAL_TABLE))
def test_goyal_pool_table(budget):
    choice = best_pool([-0.16, -0.125, -0.10, -0.085], [6.73, 8.55, 5.27, 2.27], budget, S0=12.8e6,
                       a=0.025, d=0.1)
    np.testing.assert_allclose([100 * (1 - e) for e in choice.errors], GOYAL_TABLE[budget], atol=0.02)
    assert choice.best_k == GOYAL_BEST[budget]


def test_goyal_compose_variants_differ_as_documented():
    n = np.array([5e7])
    kw = dict(a=0.025, b=-0.16, tau=6.73, d=0.1, S=12.8e6)
    code, reducible = pool_error(n, compose="code", **kw), pool_error(n, compose="reducible", **kw)
    assert code[0] < reducible[0]  # "code" also shrinks d by the repetition factors (< 1)
    # within the first epoch all forms agree with the base law
    first = np.array([1e7])
    base = (0.025 * 1e7 / 1e5) ** -0.16 + 0.1
    for compose in ("code", "reducible", "effective"):
        assert pool_error(first, compose=compose, **kw)[0] == pytest.approx(base)


def test_goyal_fit_recovers_a_pool():
    n = np.array([5e6, 1e7, 2e7, 4e7, 8e7, 1.6e8])
    y = pool_error(n, a=0.03, b=-0.2, tau=4.0, d=0.1, S=2e7)
    law = fit_pool(n, y, 2e7, grid=40)
    assert law.a == pytest.approx(0.03, rel=1e-3)
    assert law.b == pytest.approx(-0.2, rel=1e-3)
    assert law.tau == pytest.approx(4.0, rel=1e-3)


def test_bnsl_two_breaks_recovers_both_breaks():
    x = np.geomspace(100, 1e6, 25)
    theta = (0.02, 2.0, 0.1, 0.4, 2000.0, 0.1, 0.5, 1e5, 0.1)
    y = bnsl_value(x, *theta)
    law = fit(x, y, "bnsl2", metric="loss")
    assert np.max(np.abs(np.log(law.predict(x) / y))) < 1e-6
    np.testing.assert_allclose(list(law.params_.values()), theta, rtol=1e-4)


def test_fit_dispatches_joint_laws():
    N, D, L = _chinchilla_runs()
    law = fit(np.column_stack([N, D]), L, "chinchilla", method="varpro", warn=False)
    assert law.alpha == pytest.approx(HOFFMANN.alpha, rel=1e-5)
    with pytest.raises(Exception, match="shape"):
        fit(N, L, "chinchilla")
