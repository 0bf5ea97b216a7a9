"""Issue 23: seed jackknife-t intervals for repeated runs, and the batched grids of M2/M3/M4."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t as student_t

from practicum.scaling import fit
from practicum.scaling.bootstrap import Bootstrap, interval_ok, made_at
from practicum.scaling.compare import multiplier_interval
from practicum.scaling.families import m4_solve
from scipy.optimize._numdiff import approx_derivative

from practicum.scaling.fitting import (VARPRO, VARPRO_GRADIENT, _loglin, _loglin_rows, _m4_inner, _m4_inner_rows,
                                       _project, _projected_jacobian)


def test_batched_log_regression_matches_one_at_a_time():
    rng = np.random.default_rng(0)
    logx, w = np.log(np.geomspace(10, 1e4, 9)), rng.uniform(0.5, 2.0, 9)
    rows = rng.normal(size=(5, 9))
    p0, p1 = _loglin_rows(logx, rows, w)
    for i in range(5):
        assert (p0[i], p1[i]) == pytest.approx(tuple(_loglin(logx, rows[i], w)), rel=1e-10, abs=1e-12)
    # x varying per row (M3's grid), y fixed
    q0, q1 = _loglin_rows(rows, logx, w)
    assert (q0[2], q1[2]) == pytest.approx(tuple(_loglin(rows[2], logx, w)), rel=1e-10, abs=1e-12)


# nonlinear parameters at which each family's basis is finite on u in [1, 300]
JACOBIAN_POINTS = {"pow2": [0.4], "exp2": [0.01], "pow3": [0.4], "exp3": [0.01], "expd3": [0.02],
                   "logpower3": [2.0, 0.7], "mmf4": [3.0, 0.6], "wbl4": [0.3, 0.5], "exp4": [0.3, 0.5],
                   "janoschek4": [0.3, 0.5], "pow4": [0.4, 2.0]}


@pytest.mark.parametrize("name", sorted(VARPRO_GRADIENT))
def test_analytic_jacobian_of_the_projected_residual_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    u = np.geomspace(1, 300, 12)
    t = 0.9 - 0.5 * u ** -0.4 + 0.01 * rng.standard_normal(12)
    sw = np.sqrt(rng.uniform(0.5, 2.0, 12))
    basis, assemble, _, _ = VARPRO[name]
    q = np.array(JACOBIAN_POINTS[name], dtype=float)
    theta, r, parts = _project(basis, assemble, u, t, sw, q)
    analytic = _projected_jacobian(VARPRO_GRADIENT[name], u, sw, q, parts, r)
    numeric = approx_derivative(lambda z: _project(basis, assemble, u, t, sw, z)[1], q, method="3-point")
    assert analytic.shape == (12, q.size)
    assert np.abs(analytic - numeric).max() <= 1e-5 * max(1.0, np.abs(numeric).max())
    assert np.abs(analytic).max() > 1e-3  # not a zero Jacobian passing by accident


def test_m4_grid_in_one_pass_matches_the_loop():
    u = np.geomspace(1, 300, 8)
    t = m4_solve(u, 0.05, 0.9, 0.8, 2.0, -0.5) * (1 + 0.01 * np.sin(np.arange(8)))
    w = np.ones(8)
    eps_inf = np.array([0.0, 0.01, 0.04, 0.049, 0.2])  # the last one is above min y: no fit
    eps_0 = np.array([0.95, 1.0, 0.92, 2.0, 0.95])
    beta, c, alpha = _m4_inner_rows(np.log(u), t, w, eps_inf, eps_0)
    for i in range(4):
        assert (beta[i], c[i], alpha[i]) == pytest.approx(_m4_inner(np.log(u), t, w, eps_inf[i], eps_0[i]), rel=1e-8)
    assert np.isnan(beta[4])
    # the solver broadcasts a column of parameter sets against x, row by row the scalar answer
    rows = m4_solve(u[None, :], eps_inf[:4, None], eps_0[:4, None], alpha[:4, None], beta[:4, None], c[:4, None])
    for i in range(4):
        assert rows[i] == pytest.approx(m4_solve(u, eps_inf[i], eps_0[i], alpha[i], beta[i], c[i]), rel=1e-12)
    assert np.isnan(m4_solve(u, 0.5, 0.4, 1.0, 1.0, -0.5)).all()  # ε0 <= ε∞: invalid


def _fake(by: str, law, samples: np.ndarray) -> Bootstrap:
    """A Bootstrap whose refits invert to `samples` (the quantity is what the test controls)."""
    boot = Bootstrap(law=law, thetas=np.zeros((samples.size, 1)), n_requested=samples.size, n_failed=0, by=by)
    boot.quantity = lambda fn: samples  # type: ignore[method-assign]
    return boot


def test_multiplier_interval_adds_log_variances_with_welch_degrees_of_freedom():
    law = fit(np.geomspace(100, 3200, 6), 0.5 * np.geomspace(100, 3200, 6) ** -0.3, "M1")
    a = np.array([90.0, 100.0, 110.0])        # 3 seeds: df 2
    b = np.array([40.0, 50.0, 55.0, 45.0, 60.0])  # 5 seeds: df 4
    ci, _ = multiplier_interval(_fake("seeds", law, a), _fake("seeds", law, b), 0.1, 100.0, 50.0, 0.95)
    va = 2 / 3 * np.sum((np.log(a) - np.log(a).mean()) ** 2)
    vb = 4 / 5 * np.sum((np.log(b) - np.log(b).mean()) ** 2)
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 4)
    half = student_t.ppf(0.975, df) * np.sqrt(va + vb)
    assert ci == pytest.approx((2.0 * np.exp(-half), 2.0 * np.exp(half)), rel=1e-10)
    # a leave-one-seed-out refit that never reaches the target: no interval, not a made-up one
    ci, info = multiplier_interval(_fake("seeds", law, np.array([90.0, np.nan, 110.0])),
                                   _fake("seeds", law, b), 0.1, 100.0, 50.0, 0.95)
    assert ci is None and info["undefined"] == 1.0


def test_intervals_are_printed_by_method_and_structure():
    assert interval_ok("multiplier", 3, "seeds")[0] and interval_ok("x_needed", 10, "seeds")[0]
    ok, why = interval_ok("prediction", 3, "points")  # repeated runs bootstrapped as points
    assert not ok and "per-seed" not in why and "points method" in why
    # one seed: x needed is printed at its calibrated nominal 98 %; the multiplier stays withheld
    assert interval_ok("x_needed", 1, "points")[0] and made_at("x_needed", 1, "points") == 0.98
    assert made_at("x_needed", 3, "seeds") == 0.95 and made_at("prediction", 1, "points") == 0.95
    ok, why = interval_ok("multiplier", 1, "points")
    assert not ok and "89.2 %" in why
    assert interval_ok("prediction", 1, "points")[0]  # 93.2 % of 2,000 curves
    assert interval_ok("x_needed", 3, "seeds")[0]  # 94.3 % of 1,200 curves with growing noise
    # per family: M4's 10-seed prediction covered 89.2 %, M2's 94.2 %
    ok, why = interval_ok("prediction", 10, "seeds", family="M4")
    assert not ok and "89.2 % (M4" in why
    assert interval_ok("prediction", 3, "seeds", family="M4")[0]  # 93.7 % of 1,000 curves
    assert interval_ok("prediction", 10, "seeds", family="M2")[0] and interval_ok("prediction", 10, "seeds")[0]
    # a law whose family `auto` chose: its own family's cells and auto's (3 seeds: 89.5 %)
    ok, why = interval_ok("prediction", 3, "seeds", family=("M2", "auto"))
    assert not ok and "89.5 % (auto" in why
    assert interval_ok("prediction", 3, "seeds", family="M2")[0] and interval_ok("prediction", 5, "seeds", family=("M2", "auto"))[0]


def test_a_calibrated_cell_is_made_at_its_wider_nominal_level(monkeypatch):
    from practicum.scaling import bootstrap, compare

    monkeypatch.setitem(bootstrap.CALIBRATED_LEVEL, ("multiplier", "2-4", "seeds"), 0.99)
    assert bootstrap.made_at("multiplier", 3, "seeds") == 0.99
    assert bootstrap.made_at("multiplier", 3, "seeds", level=0.9) == 0.9  # calibrated at 95 % only
    assert bootstrap.made_at("multiplier", 5, "seeds") == 0.95
    assert "nominal 99.0%" in bootstrap.calibration_note("multiplier", 3, "seeds")
    rng = np.random.default_rng(5)
    sizes = np.array([100, 200, 400, 800, 1600, 3200], dtype=float)
    x, seeds = np.repeat(sizes, 3), np.tile([0, 1, 2], sizes.size)
    ya = 0.05 + 2.0 * x ** -0.5 * (1 + 0.02 * rng.standard_normal(x.size))
    yb = 0.05 + 2.0 * (2 * x) ** -0.5 * (1 + 0.02 * rng.standard_normal(x.size))
    wide = compare.data_multiplier(x, ya, x, yb, seeds_a=seeds, seeds_b=seeds, family="M2", target=0.1)
    monkeypatch.delitem(bootstrap.CALIBRATED_LEVEL, ("multiplier", "2-4", "seeds"))
    plain = compare.data_multiplier(x, ya, x, yb, seeds_a=seeds, seeds_b=seeds, family="M2", target=0.1)
    assert wide.multiplier == plain.multiplier
    assert wide.ci[0] < plain.ci[0] <= plain.ci[1] < wide.ci[1]
    assert "calibrated" in wide.ci_note and "calibrated" not in plain.ci_note


def test_pow4_keeps_a_non_negative_exponent_so_it_levels_off():
    # accuracy that keeps rising as a power of x: pow4's unconstrained optimum has c < 0 (no
    # asymptote, accuracy above 1 further out); the variable-projection fit stays at the bound c = 0
    from practicum.scaling.law import ScalingLaw

    x = np.geomspace(16, 2048, 10)
    y = 0.3 + 0.02 * x ** 0.3 * (1 + 0.002 * np.sin(np.arange(10)))
    free = ScalingLaw("pow4", metric="accuracy", warn=False, method="lsq").fit(x, y)  # the LCDB recipe, unbounded
    assert free.theta_[2] < -0.2
    law = ScalingLaw("pow4", metric="accuracy", warn=False).fit(x, y)
    assert 0.0 <= law.theta_[2] < 1e-3  # the bound binds
    assert law.objective_ > free.objective_  # ... at a cost on the training points
    assert law.predict([1e7])[0] < 1.0 < free.predict([1e7])[0]


def test_auto_puts_m4_first_on_error_curves_within_the_prior_factor(monkeypatch):
    """The ranking is the argmin of the prefix scores, except that on error-rate curves M4 goes first
    when its score is within `error_prior`× of the best (hand-set scores: M2 0.010, M4 0.018, M1 0.030)."""
    from practicum.scaling.law import ScalingLaw

    scores = {"last1": 0.05, "M1": 0.030, "M2": 0.010, "M4": 0.018}
    monkeypatch.setattr(ScalingLaw, "_prefix_scores", lambda self, x, y, w, names: dict(scores))
    curve = ([(np.array([1.0, 2, 4, 8, 16]), np.array([0.5, 0.4, 0.3, 0.25, 0.22]), np.ones(5))])

    def ranking(**kwargs):
        return ScalingLaw("auto", candidates=list(scores), **kwargs)._rank_candidates(curve)

    assert ranking()[:2] == ["M4", "M2"]                                  # 0.018 <= 2 × 0.010
    assert ranking(error_prior=1.5)[:2] == ["M2", "M4"]                   # 0.018 > 1.5 × 0.010
    assert ranking(error_prior=None)[:2] == ["M2", "M4"]                  # the plain argmin
    assert ranking(metric="loss")[:2] == ["M2", "M4"]                     # only error-rate curves
