"""Issue 15: each defect found by the synthetic-truth review has a test that failed before the fix."""

import json
import warnings

import numpy as np
import pytest

from practicum.scaling import MuennighoffLaw, ScalingLaw, data_multiplier, fit
from practicum.scaling.bootstrap import choose_unit, is_wide
from practicum.scaling.compare import ratio_interval

SIZES = np.array([100.0, 200, 400, 800, 1600, 3200])


def m2_error(x, eps=0.04, beta=2.5, c=-0.5):
    return eps + beta * np.asarray(x, dtype=float) ** c


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_muennighoff_uses_the_unique_data_actually_seen():
    # N = D = 1e9 from a pool of 1e11: U_D = min(U, D) = 1e9 (hand-checked: 3.391; with U = 1e11, 3.215)
    law = MuennighoffLaw()
    assert law.predict(1e9, 1e9, 1e11) == pytest.approx(3.3911, abs=5e-4)
    assert law.predict(1e9, 1e9, 1e11) == pytest.approx(law.predict(1e9, 1e9, 1e9), rel=1e-12)


def test_out_of_range_predictions_are_flagged_and_a_non_fit_is_detected():
    err = np.array([0.5, 0.4, 0.3, 0.22, 0.15, 0.1])
    law = fit(SIZES, err, "pow3", metric="error")  # a rising score fitted to error runs below 0 further out
    assert law.out_of_range_ and any("outside its valid range" in w for w in law.warnings_)
    assert not law.in_range(law.predict([SIZES[-1] * 100]))[0]
    assert not fit(SIZES, err, "M2", metric="error").out_of_range_
    # vap3 = exp(...) > 0 cannot fit −loss (< 0): detected, not returned silently
    loss = 2 + 5 * SIZES ** -0.3
    bad = fit(SIZES, loss, "vap3", metric="loss")
    assert not bad.fits_data_ and bad.out_of_range_
    assert any("does not fit" in w for w in bad.warnings_)


def test_auto_survives_a_held_out_error_of_exactly_zero():
    x = np.array([100.0, 200, 400, 800, 1600, 3200, 6400, 12800])
    y = np.maximum(0.3 * (x / 100) ** -0.6 - 0.02, 0.0)
    y[-1] = 0.0
    law = fit(x, y, "auto", metric="error")
    assert law.auto_scores_ is not None
    finite = [k for k, v in law.auto_scores_.items() if np.isfinite(v)]
    assert len(finite) > 3  # before: every candidate's RMSLE was infinite
    assert law.family_ != "last1"


def test_answers_do_not_depend_on_the_units_of_x():
    x = np.array([1.0, 2, 4, 8, 16, 32, 64, 128])
    y = 0.05 + 0.5 * x ** -0.4
    few = ("last1", "pow3", "exp4", "M2")
    for family in ("ilog2", "mmf4", "exp4", "auto"):
        small = fit(x, y, family, candidates=few)
        big = fit(x * 1e6, y, family, candidates=few)
        assert small.family_ == big.family_
        assert big.predict([256e6])[0] == pytest.approx(small.predict([256])[0], rel=1e-6)
        assert big.invert(0.1) == pytest.approx(1e6 * small.invert(0.1), rel=1e-5)


def test_fits_and_auto_do_not_depend_on_the_seed():
    rng = np.random.default_rng(4)
    x = np.array([16.0, 23, 32, 45, 64, 91, 128, 181, 256, 362])
    y = 0.9 - 0.6 * x ** -0.35 + 0.004 * rng.standard_normal(x.size)
    few = ("last1", "pow3", "mmf4", "exp4", "M2")  # a short candidate list keeps the test fast
    chosen = {fit(x, y, "auto", metric="accuracy", seed=s, candidates=few).family_ for s in range(3)}
    assert len(chosen) == 1
    preds = {round(float(fit(x, y, "exp4", metric="accuracy", seed=s).predict([2000])[0]), 10) for s in range(4)}
    assert len(preds) == 1


def test_compare_uses_one_family_for_both_curves():
    x = np.array([100.0, 200, 400, 800, 1600, 3200, 6400])
    rng = np.random.default_rng(0)
    ya = m2_error(x) * (1 + 0.01 * rng.standard_normal(x.size))
    yb = m2_error(2 * x) * (1 + 0.01 * rng.standard_normal(x.size))
    res = data_multiplier(x, ya, x, yb, n_boot=0, candidates=("last1", "pow3", "M2", "exp4"))
    assert res.family_a == res.family_b
    assert res.ci is None and "n_boot = 0" in res.summary() and "nan" not in res.summary()


def test_wording_when_b_is_worse():
    res = data_multiplier(SIZES, m2_error(SIZES), SIZES, m2_error(SIZES / 2.5), family="M2", n_boot=0)
    assert res.multiplier == pytest.approx(0.4, rel=1e-3)
    assert "B needs 2.5x more data than A" in res.summary() and "less" not in res.summary()


def test_unreached_resamples_are_unbounded_not_zero():
    need_a = np.array([10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    need_b = np.array([5.0, 5, 5, 5, 5, 5, 5, 5, np.nan, np.nan])  # B never gets there in 20 %
    ci, info = ratio_interval(need_a, need_b, 0.95)
    assert ci[0] is None and info["unreached_b"] == pytest.approx(0.2)  # unbounded below (not 0), reported
    ci, _ = ratio_interval(need_a[:8], need_b[:8], 0.95)
    assert ci[0] >= 2.0  # all reached: an ordinary interval


def test_wide_params_include_intervals_through_zero():
    assert is_wide(-0.3, 0.2) and is_wide(0.01, 1.0) and not is_wide(0.5, 0.9)
    assert not is_wide(0.0, 0.0) and is_wide(-5.0, -0.1) and not is_wide(-0.9, -0.5)


def test_m4_random_guess_error_stays_at_most_one():
    x = np.array([100.0, 200, 400, 800, 1600, 3200, 6400])
    y = np.array([0.9, 0.8, 0.6, 0.42, 0.3, 0.22, 0.18])
    law = fit(x, y, "M4", metric="error")
    assert law.params_["eps_0"] <= 1.0
    assert np.all(law.in_range(law.predict(np.geomspace(10, 1e7, 50))))


def test_a_saved_law_reloads_and_predicts_the_same():
    law = fit(SIZES, m2_error(SIZES), "pow3")
    again = ScalingLaw.from_dict(json.loads(json.dumps(law.to_dict())))
    assert again.predict([1e5])[0] == pytest.approx(law.predict([1e5])[0], rel=1e-12)
    assert again.invert(0.06) == pytest.approx(law.invert(0.06), rel=1e-9)
    # parameters in the user's units of x: the formula with them reproduces the predictions
    nat = law.to_dict()["natural_params"]
    assert 1 - (nat["a"] - nat["b"] * 1e5 ** -nat["c"]) == pytest.approx(law.predict([1e5])[0], rel=1e-9)


def test_bootstrap_unit_follows_the_seed_count():
    assert choose_unit(None) == "points"
    # issue 23: two or more seeds use the leave-one-seed-out jackknife-t
    assert choose_unit(np.repeat([0, 1], 4)) == "seeds"
    assert choose_unit(np.repeat(np.arange(5), 4)) == "seeds"
    assert choose_unit(np.repeat([0, 1, 2], 4), by="points") == "points"
