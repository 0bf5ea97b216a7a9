"""DP pruning theorem: Lemmas vs quadrature, Theorem 1 vs the spec's table and Monte-Carlo,
Corollary 1, the regimes; and the teacher–student simulation itself."""

import math

import numpy as np
import pytest

from practicum.errors import ConfigError
from practicum.scaling.theory import (
    Rule,
    corollary_error,
    fraction_for_threshold,
    rule_scalars,
    rule_scalars_quadrature,
    simulate,
    simulate_points,
    sorscher_point,
    theorem_error,
    theorem_terms,
)
from practicum.scaling.theory.closed_form import derivative_check, stieltjes_m
from practicum.scaling.theory.simulation import MonteCarlo, Trial, max_margin_direction, run_trial
from practicum.stats import t_interval

# ---------------------------------------------------------------- Lemmas 1–2


@pytest.mark.parametrize("name", ["keep-hard", "keep-easy", "random"])
@pytest.mark.parametrize("p", [0.1, 0.38, 0.75])
@pytest.mark.parametrize("rho", [0.3, 0.8, 0.999])
def test_lemma_closed_forms_match_quadrature(name, p, rho):
    closed = rule_scalars(Rule(name, p), rho)
    quad = rule_scalars_quadrature(Rule(name, p), rho)
    for field in ("p", "gamma", "beta", "beta_tilde"):
        assert getattr(closed, field) == pytest.approx(getattr(quad, field), abs=1e-6, rel=1e-5)


def test_no_pruning_scalars_by_hand():
    # ρ = 0.6: √(1−ρ²) = 0.8, N_pdf(0) = 1/√(2π)
    s = rule_scalars(Rule("none"), 0.6)
    pdf0 = 1 / math.sqrt(2 * math.pi)
    assert (s.p, s.gamma) == (1.0, 1.0)
    assert s.beta == pytest.approx(2 * pdf0 * 0.8, rel=1e-12)
    assert s.beta_tilde == pytest.approx(2 * 0.6 * pdf0, rel=1e-12)
    # keep-hard with ξ = 0.5 keeps P(|G| ≤ 0.5) = 0.38292...
    assert fraction_for_threshold("keep-hard", 0.5) == pytest.approx(0.3829249225, abs=1e-9)
    assert Rule("keep-hard", fraction_for_threshold("keep-hard", 0.5)).threshold == pytest.approx(0.5, abs=1e-12)


def test_soft_rule_scalars_and_feasibility():
    s = rule_scalars(Rule("soft", 0.3, sharpness=4.0), 0.8)
    assert s.p == pytest.approx(0.3, abs=1e-8)
    assert 0 < s.gamma < s.p  # soft keeps mostly small |t|, like keep-hard
    with pytest.raises(ConfigError, match="keeps at most"):
        Rule("soft", 0.9, sharpness=4.0)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError):
        Rule("keep-middle", 0.5)
    with pytest.raises(ConfigError):
        Rule("keep-hard", 1.5)
    with pytest.raises(ConfigError):
        theorem_error(Rule("none"), 1.0, 200, 100, 1e-2)
    with pytest.raises(ConfigError):
        theorem_error(Rule("none"), 0.5, 200, 100, 0.0)


# ---------------------------------------------------------------- spectral functions and Theorem 1


def test_marchenko_pastur_root_and_analytic_derivatives():
    # m solves φz m² − (p−φ−z) m + 1 = 0 and is positive for z < 0
    for p, phi, z in [(1.0, 0.5, -0.01), (0.3, 2.0, -1e-3), (0.7, 0.7, -1e-4)]:
        m = stieltjes_m(z, p, phi)
        assert m > 0
        assert phi * z * m * m - (p - phi - z) * m + 1 == pytest.approx(0, abs=1e-9 * max(1, m * m))
    check = derivative_check(Rule("keep-hard", 0.3), 0.8, 200, 400, 1e-2)
    for analytic, numeric in check.values():
        assert analytic == pytest.approx(numeric, rel=1e-6)


REFERENCE = [  # spec §8.2: d = 200, λ = 1e-2, ρ = 0.8
    ("keep-hard", 0.5, [0.430, 0.366, 0.132, 0.065]),
    ("keep-easy", 1.5, [0.381, 0.301, 0.252, 0.194]),
    ("none", None, [0.339, 0.203, 0.088, 0.043]),
]


@pytest.mark.parametrize("name,threshold,values", REFERENCE)
def test_theorem_reproduces_spec_table(name, threshold, values):
    p = 1.0 if threshold is None else fraction_for_threshold(name, threshold)
    for n, expected in zip([100, 400, 1600, 6400], values):
        assert theorem_error(Rule(name, p), 0.8, 200, n, 1e-2) == pytest.approx(expected, abs=6e-4)


def test_theorem_equal_kept_size_values_and_regimes():
    # spec §8.2, d = 512, λ = 1e-2, at equal kept size m (pool n = m/p)
    def err(name, rho, p, m):
        return theorem_error(Rule(name, p), rho, 512, m / p, 1e-2)

    assert err("keep-hard", 0.999, 0.5, 256) == pytest.approx(0.403, abs=6e-4)
    assert err("keep-easy", 0.999, 0.5, 256) == pytest.approx(0.262, abs=6e-4)
    assert err("keep-hard", 0.999, 0.5, 16384) == pytest.approx(0.015, abs=6e-4)
    # scarce data: keep-easy wins; abundant data: keep-hard wins (near-perfect direction)
    assert err("keep-easy", 0.999, 0.5, 256) < err("keep-hard", 0.999, 0.5, 256)
    assert err("keep-hard", 0.999, 0.5, 4096) < err("keep-easy", 0.999, 0.5, 4096) < err("random", 0.999, 0.5, 4096)
    # imperfect direction + aggressive pruning loses to random
    assert err("random", 0.9, 0.2, 4096) < err("keep-easy", 0.9, 0.2, 4096) < err("keep-hard", 0.9, 0.2, 4096)
    assert err("keep-hard", 0.9, 0.2, 4096) == pytest.approx(0.199, abs=6e-4)


def test_main_text_r_typo_would_send_error_to_zero():
    # With the printed r = ω²m + ω̃²m̃ the error collapses at large n; with the proof's r it
    # stays where Monte-Carlo puts it (0.065 for keep-hard at n = 6400, and above 0 beyond).
    rule = Rule("keep-hard", fraction_for_threshold("keep-hard", 0.5))
    proof = theorem_terms(rule, 0.8, 200, 6400, 1e-2)["error"]
    typo = theorem_terms(rule, 0.8, 200, 6400, 1e-2, r_form="main-text")["error"]
    assert proof == pytest.approx(0.065, abs=6e-4)
    assert typo < 0.5 * proof
    assert theorem_terms(rule, 0.8, 200, 1e7, 1e-2, r_form="main-text")["error"] < 1e-3


@pytest.mark.parametrize("name", ["keep-hard", "keep-easy", "random", "none"])
def test_corollary_matches_theorem_at_small_lambda(name):
    for p in ([1.0] if name == "none" else [0.2, 0.5, 0.8]):
        for rho in (0.5, 0.9, 0.999):
            for ratio in (0.5, 1.0, 4.0, 16.0):
                if abs(p - 1 / ratio) <= 0.1:
                    continue  # the interpolation peak: the λ → 0 limit is reached slowly there
                rule = Rule(name, p)
                gap = theorem_error(rule, rho, 350, 350 * ratio, 1e-4) - corollary_error(rule, rho, 350, 350 * ratio)
                assert abs(gap) < 0.002


def test_corollary_peaks_at_p_equals_phi():
    # multiple descent: at n = 2d the ridgeless error peaks at p = φ = 0.5
    errs = [corollary_error(Rule("random", p), 0.9, 350, 700) for p in (0.3, 0.45, 0.5, 0.55, 0.7)]
    assert errs[2] == 0.5 and errs[1] < errs[2] > errs[3] and errs[0] < errs[1] and errs[4] < errs[3]


# ---------------------------------------------------------------- Monte-Carlo


def test_theorem_vs_monte_carlo_at_spec_points():
    points, expected = [], []
    for name, threshold, _ in REFERENCE:
        p = 1.0 if threshold is None else fraction_for_threshold(name, threshold)
        for n in (100, 400, 1600, 6400):
            points.append(dict(rule=name, p=p, rho=0.8, d=200, n=n, lam=1e-2))
            expected.append(theorem_error(Rule(name, p), 0.8, 200, n, 1e-2))
    counts = [{100: 40, 400: 24, 1600: 8, 6400: 4}[pt["n"]] for pt in points]
    results = simulate_points(points, seeds=counts, seed=11)
    gaps = [abs(mc.mean - e) for mc, e in zip(results, expected)]
    assert max(gaps) < 0.01, gaps


def test_keep_easy_wins_small_keep_hard_wins_large_in_simulation():
    d, p, rho = 100, 0.5, 0.999
    small, large = 50, 1600  # kept sizes m = d/2 and 16 d
    res = simulate_points([dict(rule=r, p=p, rho=rho, d=d, n=int(m / p), lam=1e-2)
                           for m in (small, large) for r in ("keep-hard", "keep-easy")], seeds=[12, 12, 4, 4], seed=3)
    hard_small, easy_small, hard_large, easy_large = (r.mean for r in res)
    assert easy_small < hard_small - 0.05
    assert hard_large < easy_large - 0.01


def test_simulation_is_deterministic_and_reports_ci():
    a = simulate("keep-hard", 0.4, 0.9, 50, 300, seeds=4, seed=7)
    b = simulate("keep-hard", 0.4, 0.9, 50, 300, seeds=4, seed=7)
    c = simulate("keep-hard", 0.4, 0.9, 50, 300, seeds=4, seed=8)
    assert np.array_equal(a.errors, b.errors) and not np.array_equal(a.errors, c.errors)
    assert a.ci_low < a.mean < a.ci_high
    assert abs(a.as_dict()["mean_kept"] - 0.4 * 300) < 40  # threshold selection keeps about p·n


def test_monte_carlo_interval_is_the_one_t_interval_on_a_hand_checked_case():
    mc = MonteCarlo(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.zeros(5))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t_{0.975, 4} · s / √n, s² = 2.5
    assert (mc.ci_low, mc.ci_high) == pytest.approx((3 - half, 3 + half), rel=1e-12)
    assert [mc.ci_low, mc.ci_high] == t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    one = MonteCarlo(np.array([0.3]), np.zeros(1))
    assert one.mean == 0.3 and one.std == 0.0 and math.isnan(one.ci_low) and math.isnan(one.ci_high)


def test_rank_selection_keeps_exactly_and_learners_run():
    for learner in ("max-margin", "perceptron", "logistic", "ridge"):
        err, kept = run_trial(Trial("keep-easy", 0.25, 1.0, 20, 203, learner=learner, selection="rank", seed=1))
        assert kept == round(0.25 * 203)
        assert 0.0 <= err < 0.5


def test_max_margin_direction_is_the_hard_margin_svm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 10))
    y = np.sign(x[:, 0] + 0.3 * x[:, 1])
    w = max_margin_direction(x, y)
    w = w / np.linalg.norm(w)
    margins = y * (x @ w)
    assert margins.min() > 0
    # no small rotation increases the minimum margin (KKT optimality, checked numerically)
    for _ in range(200):
        v = w + 1e-3 * rng.standard_normal(10)
        v /= np.linalg.norm(v)
        assert (y * (x @ v)).min() <= margins.min() + 1e-9


def test_sorscher_regimes_with_max_margin():
    pts = [sorscher_point(a, 0.2, r) for a in (2, 20) for r in ("random", "keep-hard", "keep-easy")]
    res = [m.mean for m in simulate_points(pts, seeds=3, seed=0)]
    rand2, hard2, easy2, rand20, hard20, easy20 = res
    assert easy2 < rand2 < hard2  # few examples per dimension: keep the easy ones
    assert hard20 < easy20 < rand20  # many examples per dimension: keep the hard ones
    assert hard20 == pytest.approx(0.023, abs=0.01)


def test_soft_rule_theorem_vs_monte_carlo():
    rule = Rule("soft", 0.3, sharpness=4.0)
    mc = simulate("soft", 0.3, 0.9, 100, 800, seeds=16, seed=5, sharpness=4.0)
    assert mc.mean == pytest.approx(theorem_error(rule, 0.9, 100, 800, 1e-2), abs=0.015)


def test_best_rule_and_pareto_curve():
    from practicum.scaling.theory import best_rule_for_fraction
    from practicum.scaling.theory.study import pareto_curve

    winner, errors = best_rule_for_fraction(0.999, 100, 3200, 0.5, 1e-2)
    assert winner == "keep-hard" and errors["keep-hard"] < errors["keep-easy"] < errors["random"]
    assert best_rule_for_fraction(0.999, 100, 50, 0.5, None)[0] == "keep-easy"  # λ → 0, scarce data
    kept = [50.0, 400.0, 3200.0]
    best, chosen = pareto_curve(0.999, 100, kept, 1e-2)
    for m, e, p in zip(kept, best, chosen):
        for name in ("keep-hard", "keep-easy"):
            assert e <= theorem_error(Rule(name, 0.5), 0.999, 100, m / 0.5, 1e-2) + 1e-12
        assert e == pytest.approx(min(theorem_error(Rule(r, p), 0.999, 100, m / p, 1e-2)
                                      for r in ("keep-hard", "keep-easy")))
