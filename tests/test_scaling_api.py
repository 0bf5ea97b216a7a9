"""The Python contract other subsystems rely on: fit / predict / invert / bootstrap /
data_multiplier, directions, auto on short curves, determinism, extrapolation evaluation."""

import json
import warnings

import numpy as np
import pytest

from practicum.errors import DataError, FitError
from practicum.scaling import IdentifiabilityWarning, crossover, data_multiplier, fit, rmsle
from practicum.scaling.evaluate import evaluate_holdout, extrapolate, mean_ranks, prefix_split
from practicum.scaling.bootstrap import t_interval

SIZES = np.array([100.0, 200, 400, 800, 1600, 3200])


def power_error(x, scale=1.0):
    return 0.04 + 2.5 * (scale * np.asarray(x, dtype=float)) ** -0.5


def test_fit_predict_invert_round_trip():
    law = fit(SIZES, power_error(SIZES), "M2")
    assert law.family_ == "M2"
    assert law.params_ == pytest.approx({"eps_inf": 0.04, "beta": 2.5, "c": -0.5}, rel=1e-6)
    assert law.predict([1e5])[0] == pytest.approx(power_error(1e5), rel=1e-6)
    # data needed for 6 % error: 0.02 = 2.5 x^-0.5 → x = (2.5/0.02)^2
    assert law.invert(0.06) == pytest.approx((2.5 / 0.02) ** 2, rel=1e-6)
    with pytest.raises(FitError, match="never reaches"):
        law.invert(0.03)  # below the asymptote 0.04
    json.dumps(law.to_dict())  # JSON-ready
    assert law.rmsle_ < 1e-8 and law.r2_ > 0.999999


def test_accuracy_and_error_give_the_same_law():
    err = power_error(SIZES)
    by_error = fit(SIZES, err, "M2", metric="error")
    by_accuracy = fit(SIZES, 1 - err, "M2", metric="accuracy")
    assert by_accuracy.params_ == pytest.approx(by_error.params_, rel=1e-9)
    assert by_accuracy.predict([1e4])[0] == pytest.approx(1 - by_error.predict([1e4])[0])
    assert by_accuracy.invert(1 - 0.06) == pytest.approx(by_error.invert(0.06), rel=1e-9)
    # an LCDB (increasing) family is fitted on accuracy = 1 − error, and predicts errors back
    pow3 = fit(SIZES, err, "pow3", metric="error")
    assert pow3.direction == "increasing"
    assert np.allclose(pow3.predict(SIZES), err, atol=1e-6)


def test_rising_values_are_not_silently_fitted_as_an_error():
    acc = 1 - power_error(SIZES)  # accuracies given but declared as error: they rise
    with pytest.raises(FitError, match="does not fall"):
        fit(SIZES, acc, "kaplan", metric="error")


@pytest.mark.parametrize("n_sizes", [3, 4, 5, 8])
def test_auto_is_robust_on_short_curves(n_sizes):
    rng = np.random.default_rng(n_sizes)
    x = np.repeat(SIZES[:n_sizes] if n_sizes <= 6 else 100 * 2.0 ** np.arange(n_sizes), 3)
    y = power_error(x) * (1 + 0.03 * rng.standard_normal(x.size))
    seeds = np.tile([0, 1, 2], x.size // 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = fit(x, y, seeds=seeds)
    assert law.family_ in law.auto_scores_
    assert law.auto_scores_[law.family_] == min(law.auto_scores_.values())
    assert np.all(np.isfinite(law.predict([1e4, 1e5])))


def test_auto_with_two_sizes_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="only 2 distinct x"):
        law = fit([100, 200], [0.3, 0.2])
    assert law.family_ == "M1"


def test_auto_prefers_the_right_shape_over_last1_on_a_clean_power_law():
    x = 100 * 2.0 ** np.arange(8)
    law = fit(x, power_error(x))
    assert law.family_ != "last1"
    assert law.auto_scores_[law.family_] < law.auto_scores_["last1"]
    assert law.predict([1e6])[0] == pytest.approx(power_error(1e6), rel=0.05)


def test_identifiability_warning_on_a_flat_direction():
    # An M2-shaped curve leaves M4's eps_0 and alpha unidentified (alpha -> 0, eps_0 free).
    x = 100 * 2.0 ** np.arange(8)
    with pytest.warns(IdentifiabilityWarning):
        law = fit(x, power_error(x), "M4")
    assert law.identifiable_ is False
    assert any("identifiable" in w for w in law.warnings_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        assert fit(x, power_error(x), "M2").identifiable_ is True


def test_same_seed_same_result_and_weights_matter():
    rng = np.random.default_rng(0)
    y = power_error(SIZES) * (1 + 0.05 * rng.standard_normal(SIZES.size))
    a = fit(SIZES, y, "pow3", seed=3)
    b = fit(SIZES, y, "pow3", seed=3)
    assert a.params_ == b.params_
    w = np.array([1, 1, 1, 1, 1, 100.0])
    weighted = fit(SIZES, y, "pow3", weights=w, seed=3)
    assert abs(weighted.residuals_[-1]) < abs(a.residuals_[-1])


def test_bootstrap_cis_cover_the_truth_and_seeds_are_left_out_in_turn():
    rng = np.random.default_rng(1)
    x = np.repeat(SIZES, 5)
    seeds = np.tile(np.arange(5), SIZES.size)
    y = power_error(x) * (1 + 0.02 * rng.standard_normal(x.size))
    law = fit(x, y, "M2", seeds=seeds)
    boot = law.bootstrap(150, seed=0)
    # repeated seeds: one refit per left-out seed (the jackknife), not 150 resamples
    assert boot.by == "seeds" and boot.n_requested == 5 and boot.n_ok == 5
    lo, hi = boot.predict_ci([1e4])
    assert lo[0] < power_error(1e4) < hi[0]
    assert lo[0] < law.predict([1e4])[0] < hi[0]
    ci = boot.invert_ci(0.08)
    assert ci["low"] < law.invert(0.08) < ci["high"]
    cis = boot.param_ci()
    assert cis["c"][0] < -0.5 < cis["c"][1]
    assert fit(SIZES, power_error(SIZES), "M2").bootstrap(5).by == "points"
    three = seeds < 3
    assert fit(x[three], y[three], "M2", seeds=seeds[three]).bootstrap(5).n_requested == 3


def test_jackknife_t_interval_matches_a_hand_computed_case():
    # leave-one-out values 1, 2, 4 around a center of 2: on the log scale g = 0, log 2, log 4,
    # se^2 = (2/3) * sum((g - log 2)^2) = (2/3) * 2 (log 2)^2, t_2(0.975) = 4.302653
    lo, hi = t_interval(np.array(2.0), np.array([1.0, 2.0, 4.0]), 0.95)
    half = 4.302653 * np.sqrt(4 / 3) * np.log(2)
    assert float(lo) == pytest.approx(2 * np.exp(-half), rel=1e-6)
    assert float(hi) == pytest.approx(2 * np.exp(half), rel=1e-6)
    # a parameter that is not positive stays on its own scale: -1 +- t * se
    lo, hi = t_interval(np.array(-1.0), np.array([-1.5, -1.0, -0.5]), 0.95)
    assert float(hi) - (-1.0) == pytest.approx(4.302653 * np.sqrt(2 / 3 * 0.5), rel=1e-6)
    # a leave-one-out value that never reached a target leaves the interval undefined
    assert np.isnan(t_interval(np.array(2.0), np.array([1.0, np.nan, 4.0]), 0.95)[0])


def test_data_multiplier_recovers_a_known_ratio():
    x = SIZES
    res = data_multiplier(x, power_error(x), x, power_error(x, scale=2.5), family="M2", n_boot=0)
    assert res.multiplier == pytest.approx(2.5, rel=1e-4)
    assert res.target == pytest.approx(power_error(3200))  # A's best observed
    assert res.crossover is None
    assert json.loads(json.dumps(res.to_dict()))["multiplier"] == pytest.approx(2.5, rel=1e-4)


def test_data_multiplier_ci_with_noise_and_explicit_target():
    rng = np.random.default_rng(5)
    x = np.repeat(SIZES, 3)
    seeds = np.tile([0, 1, 2], SIZES.size)
    ya = power_error(x) * (1 + 0.02 * rng.standard_normal(x.size))
    yb = power_error(x, 2.0) * (1 + 0.02 * rng.standard_normal(x.size))
    res = data_multiplier(x, ya, x, yb, seeds_a=seeds, seeds_b=seeds, family="M2", target=0.1, n_boot=60)
    assert res.target == 0.1 and res.multiplier == pytest.approx(2.0, rel=0.15)
    # 3 seeds: the seed jackknife-t interval (issue 23), printed with its assumptions
    assert res.ci[0] < 2.0 < res.ci[1] and res.ci[0] <= res.multiplier <= res.ci[1]
    assert res.bootstrap_unit == "seeds" and "independent seeds" in res.ci_note
    # a point bootstrap of the same repeated runs ignores the per-seed correlation: withheld
    forced = data_multiplier(x, ya, x, yb, seeds_a=seeds, seeds_b=seeds, family="M2", target=0.1, n_boot=60,
                             by="points")
    assert forced.ci is None and "withheld" in forced.ci_note and "no interval" in forced.summary()
    one = seeds == 0  # one seed: the point bootstrap covered 89.2 % of 1,200 curves (issue 23), so it is withheld
    res = data_multiplier(x[one], ya[one], x[one], yb[one], family="M2", target=0.1, n_boot=60)
    assert res.multiplier is not None and 1.0 < res.multiplier < 4.0
    assert res.ci is None and "withheld" in res.ci_note and "89.2 %" in res.ci_note


def test_crossover_of_two_power_laws():
    a = fit(SIZES, 0.30 * SIZES ** -0.2, "M1", metric="loss")
    b = fit(SIZES, 3.0 * SIZES ** -0.5, "M1", metric="loss")
    # 0.3 x^-0.2 = 3 x^-0.5  →  x^0.3 = 10  →  x = 10^(1/0.3)
    assert crossover(a, b, 10, 1e5) == pytest.approx(10 ** (1 / 0.3), rel=1e-6)
    assert crossover(a, b, 10, 100) is None


@pytest.mark.parametrize("x,y,match", [
    ([1, 2, np.nan], [0.3, 0.2, 0.1], "NaN"),
    ([1, 2, 3], [0.3, np.inf, 0.1], "NaN or infinite"),
    ([0, 2, 3], [0.3, 0.2, 0.1], "positive"),
    (["a", 2, 3], [0.3, 0.2, 0.1], "numbers"),
    ([1, 2], [0.3, 0.2, 0.1], "x has 2"),
    ([1, 2, 3], [30, 20, 10], r"\[0, 1\]"),
])
def test_bad_curves_are_one_clear_error(x, y, match):
    with pytest.raises(DataError, match=match):
        fit(x, y, "M2")


def test_unknown_family_and_too_few_points():
    with pytest.raises(FitError, match="unknown family"):
        fit(SIZES, power_error(SIZES), "pow7")
    with pytest.raises(FitError, match="distinct x"):
        fit(SIZES[:3], power_error(SIZES[:3]), "M4")
    with pytest.raises(DataError, match="duplicate"):
        fit([1, 1, 2], [0.3, 0.3, 0.2], "M1", seeds=[0, 0, 0])


def test_rmsle_and_extrapolation_evaluation():
    assert rmsle([1.0, np.e], [1.0, 1.0]) == pytest.approx(np.sqrt(0.5))
    assert rmsle([-1.0], [1.0]) == np.inf
    x = 100 * 2.0 ** np.arange(10)
    y = power_error(x)
    mask = prefix_split(x, 0.5)
    assert mask.sum() == 5
    scores = extrapolate(x[mask], y[mask], x[~mask], y[~mask], ["M2", "pow2"], metric="error")
    assert "last1" in scores  # always included
    assert scores["M2"]["rmsle"] < 1e-6 < scores["last1"]["rmsle"]
    ranks = mean_ranks([scores, scores])
    assert ranks["M2"] == 1.0
    report = evaluate_holdout(x, y, families=["M2"], fraction=0.5)
    assert report["n_fit"] == 5 and report["scores"]["M2"]["rmsle"] < 1e-6


def test_mean_ranks_put_failures_last():
    per_curve = [{"a": {"rmsle": 0.1}, "b": {"rmsle": float("inf")}, "c": {"rmsle": 0.2}}]
    assert mean_ranks(per_curve) == {"a": 1.0, "b": 3.0, "c": 2.0}


def test_auto_and_multiplier_on_a_three_size_curve():
    # the shortest curve a study produces: 3 sizes x 3 seeds; auto must still give a usable law
    rng = np.random.default_rng(0)
    x = np.repeat([100.0, 200.0, 400.0], 3)
    seeds = np.tile([0, 1, 2], 3)
    ya = power_error(x) * (1 + 0.02 * rng.standard_normal(9))
    yb = power_error(x, 2.0) * (1 + 0.02 * rng.standard_normal(9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = fit(x, ya, seeds=seeds)
        assert law.family_ == "M1"  # the plain power law validates best on the 2-size prefix
        res = data_multiplier(x, ya, x, yb, seeds_a=seeds, seeds_b=seeds, n_boot=50)
    assert 1.5 < res.multiplier < 2.6
    # 3 seeds: a jackknife-t interval around the estimate (it assumes the chosen family, M1)
    assert res.ci[0] < res.multiplier < res.ci[1] and "assumes the M1 family" in res.ci_note
