"""practicum.stats: the one t quantile, as the t intervals of theory and scaling use it."""

import math

import numpy as np
import pytest

from practicum.scaling.bootstrap import t_interval as jackknife_t_interval
from practicum.stats import t_interval, t_quantile


def test_t_quantile_takes_fractional_and_infinite_degrees_of_freedom():
    assert t_quantile(0.95, 4) == pytest.approx(2.7764451051977987, rel=1e-12)  # tables: t_{0.975, 4}
    assert t_quantile(0.95, math.inf) == pytest.approx(1.959963984540054, rel=1e-12)  # the normal's
    assert t_quantile(0.95, 5) < t_quantile(0.95, 4.5) < t_quantile(0.95, 4)  # Welch's df lie between
    lo, hi = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert hi - 3 == pytest.approx(2.7764451051977987 * math.sqrt(2.5 / 5), rel=1e-12)
    assert 3 - lo == pytest.approx(hi - 3)


def test_the_scaling_jackknife_interval_uses_the_same_quantile():
    # leave-one-out values 1, 2, 4 around 2 on the log scale: se² = (m−1)/m · Σ(log q_i − mean)²
    samples = np.array([1.0, 2.0, 4.0])
    g = np.log(samples)
    se = math.sqrt(2 / 3 * float(((g - g.mean()) ** 2).sum()))
    lo, hi = jackknife_t_interval(np.array(2.0), samples, 0.95)
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) * se  # t_{p, 2} = (2p − 1) / √(2p(1 − p)) in closed form
    assert (float(lo), float(hi)) == pytest.approx((2 * math.exp(-half), 2 * math.exp(half)), rel=1e-12)
