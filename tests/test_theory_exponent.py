"""What sets the exponent: intrinsic dimension, the binning rate, bounds, composition fits."""

import math

import numpy as np
import pytest

from practicum.errors import ConfigError, DataError
from practicum.scaling.theory import bounds, composition, intrinsic_dim, nonparametric
from practicum.scaling.theory.learning_curve import fit_constant, power_law_exponent, ExponentCheck

# ---------------------------------------------------------------- intrinsic dimension


@pytest.fixture(scope="module")
def manifold():
    return intrinsic_dim.curved_manifold(2000, intrinsic=5, ambient=64, seed=0)


def test_manifold_is_curved_and_64_dimensional(manifold):
    assert manifold.shape == (2000, 64)
    sv = np.linalg.svd(manifold - manifold.mean(0), compute_uv=False)
    assert np.sum(sv > 1e-6 * sv[0]) > 5  # not a 5-D linear subspace


@pytest.mark.parametrize("estimate", [
    lambda x: intrinsic_dim.twonn(x),
    lambda x: intrinsic_dim.twonn(x, method="mle"),
    lambda x: intrinsic_dim.levina_bickel(x),
])
def test_estimators_recover_5d_manifold_within_10_percent(manifold, estimate):
    assert estimate(manifold) == pytest.approx(5.0, rel=0.10)


def test_estimators_see_dimension_not_ambient_size():
    rng = np.random.default_rng(1)
    flat = rng.standard_normal((1500, 2)) @ rng.standard_normal((2, 30))
    assert intrinsic_dim.intrinsic_dimension(flat, "twonn") == pytest.approx(2.0, rel=0.1)
    assert intrinsic_dim.intrinsic_dimension(flat, "mle") == pytest.approx(2.0, rel=0.1)


def test_estimator_input_errors():
    with pytest.raises(DataError, match="NaN"):
        intrinsic_dim.twonn(np.array([[0.0, np.nan]] * 10))
    with pytest.raises(DataError, match="too few"):
        intrinsic_dim.levina_bickel(np.random.default_rng(0).random((10, 3)), k1=10, k2=20)
    with pytest.raises(DataError):
        intrinsic_dim.intrinsic_dimension(np.zeros((5, 2)), "pca")


# ---------------------------------------------------------------- exponent measurement


def test_power_law_exponent_comes_from_the_scaling_toolkit():
    n = np.geomspace(50, 5000, 8)
    out = power_law_exponent(n, 3.0 * n ** -0.4)
    assert out["alpha"] == pytest.approx(0.4, abs=1e-3) and out["family"] == "M1"
    with pytest.raises(DataError):
        power_law_exponent([1, 2], [0.5, 0.4])


def test_fit_constant_recovers_c():
    checks = [ExponentCheck(f"v{d}", 64, d, d, [1], [0.1], 4.0 / d) for d in (2.0, 4.0, 8.0)]
    fit = fit_constant(checks)
    assert fit["c"] == pytest.approx(4.0) and fit["r2_through_origin_model"] == pytest.approx(1.0)


# ---------------------------------------------------------------- binning estimator


@pytest.mark.parametrize("d,ks,repeats", [(1, range(6, 41, 4), 6), (2, range(5, 17, 2), 4), (4, range(3, 8), 2)])
def test_binning_slope_matches_documented_rate(d, ks, repeats):
    # the documented (and measured) rate: integrated squared error ∝ n^(−2/(2+d)) at the
    # bias–variance-optimal bin width; see practicum.scaling.theory.nonparametric
    m = nonparametric.measure_rate(d, ks, repeats=repeats, seed=0)
    assert m.slope == pytest.approx(-2.0 / (2 + d), abs=0.05)


def test_rates_and_lecture_simplification():
    assert nonparametric.rate(2, "mse") == nonparametric.rate(2, "lecture") == 0.5
    assert nonparametric.rate(1, "mse") == pytest.approx(2 / 3)
    assert nonparametric.rate(4, "rmse") == pytest.approx(1 / 6)
    assert nonparametric.rate(4, "lecture") != nonparametric.rate(4, "mse")
    with pytest.raises(ConfigError):
        nonparametric.rate(0)


def test_binning_regressor_by_hand():
    x = np.array([[0.1], [0.2], [0.6], [0.9]])
    y = np.array([1.0, 3.0, 10.0, 20.0])
    model = nonparametric.BinningRegressor(bins_per_axis=2).fit(x, y)
    np.testing.assert_allclose(model.predict(np.array([[0.05], [0.5], [1.0]])), [2.0, 15.0, 15.0])
    model = nonparametric.BinningRegressor(bins_per_axis=4).fit(x, y)
    assert model.predict(np.array([[0.3]]))[0] == pytest.approx(8.5)  # empty bin → global mean
    with pytest.raises(DataError):
        nonparametric.BinningRegressor().fit(x * 2, y)


# ---------------------------------------------------------------- bounds


def test_finite_class_bound_by_hand_and_inverse():
    assert bounds.finite_class_bound(1000, 1e6, 0.05) == pytest.approx(2 * math.sqrt(math.log(4e7) / 1000))
    m = bounds.finite_class_samples(0.05, 1e6, 0.05)
    assert bounds.finite_class_bound(m, 1e6, 0.05) <= 0.05 < bounds.finite_class_bound(m - 1, 1e6, 0.05)
    # log k dependence: squaring the class size only doubles log k
    assert bounds.finite_class_samples(0.05, 1e12) < 2.1 * bounds.finite_class_samples(0.05, 1e6)
    with pytest.raises(ConfigError):
        bounds.finite_class_bound(100, 10, delta=1.5)


def test_density_bound_rate_and_inverse():
    assert bounds.density_rate(2.0) == pytest.approx(0.4)  # β/(2β+1)
    assert bounds.density_mse_bound(1e4, 2.0) == pytest.approx(1e4 ** -0.8)
    n = bounds.density_samples(1e-3, 2.0)
    assert bounds.density_mse_bound(n, 2.0) <= 1e-3 < bounds.density_mse_bound(n - 1, 2.0)
    assert bounds.density_rate(50.0) > 0.49  # very smooth: close to the parametric 1/n
    with pytest.raises(ConfigError):
        bounds.density_samples(-1, 2.0)


# ---------------------------------------------------------------- composition


def test_composition_shared_slope_moves_intercept_only():
    rows = composition.synthetic_curves({"a": 0.0, "b": 0.7, "c": -0.3}, 0.5, [100, 200, 400, 800, 1600],
                                        noise=0.05, repeats=3, seed=1)
    fit = composition.fit_composition(*rows)
    assert fit.alpha == pytest.approx(0.5, abs=0.03)
    assert fit.intercepts["b"] - fit.intercepts["a"] == pytest.approx(0.7, abs=0.05)
    assert fit.intercept_p < 1e-6
    assert fit.verdict == "composition moves the intercept, not the slope"
    np.testing.assert_allclose(fit.predict("a", [100]), math.exp(fit.intercepts["a"]) * 100 ** -fit.alpha)


def test_composition_detects_a_slope_change_and_is_calibrated():
    rows = composition.synthetic_curves({"a": 0.0, "b": 0.7}, {"a": 0.5, "b": 0.65}, [100, 200, 400, 800, 1600],
                                        noise=0.05, repeats=3, seed=0)
    assert composition.fit_composition(*rows).verdict == "composition changes the slope"
    false_alarms = np.mean([
        composition.fit_composition(*composition.synthetic_curves(
            {"a": 0.0, "b": 0.7}, 0.5, [100, 200, 400, 800], noise=0.05, repeats=2, seed=s)).slope_p < 0.05
        for s in range(200)])
    assert false_alarms < 0.10  # the F-test holds its 5 % level


def test_composition_input_errors():
    with pytest.raises(DataError, match="two mixtures"):
        composition.fit_composition(["a", "a"], [10, 20], [0.5, 0.4])
    with pytest.raises(DataError, match="floor"):
        composition.fit_composition(["a", "a", "b", "b"], [10, 20, 10, 20], [0.5, 0.4, 0.3, 0.2], floor=0.3)
