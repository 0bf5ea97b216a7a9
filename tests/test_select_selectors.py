"""Selectors: budgets, rankings, Shift-Gsample presets and sampling, CCS allocation, class balance."""

import warnings

import numpy as np
import pytest

from practicum.errors import ConfigError, DataError
from practicum.select import selectors as sel


def test_budget_fraction_and_count():
    assert sel.budget(10, 0.5) == 5
    assert sel.budget(10, 3) == 3
    for bad in (0.0, 1.5, 11, -2, True):
        with pytest.raises(ConfigError):
            sel.budget(10, bad)


def test_top_bottom_with_ties_broken_by_index():
    scores = np.array([1.0, 3.0, 3.0, 0.0, 2.0])
    assert sel.rank_descending(scores).tolist() == [1, 2, 4, 0, 3]
    assert sel.top_k(scores, 2).tolist() == [1, 2]
    assert sel.top_k(scores, 3).tolist() == [1, 2, 4]
    assert sel.bottom_k(scores, 2).tolist() == [0, 3]


def test_block_is_a_slice_of_the_ranking():
    scores = np.arange(10, dtype=float)  # ranking: 9, 8, ..., 0
    assert sel.block(scores, 0.2, start=0.3).tolist() == [5, 6]  # ranks 3, 4
    assert sel.block(scores, 0.4, start=0.9).tolist() == [0, 1, 2, 3]  # moved back from the end


def test_band_keeps_small_absolute_values():
    t = np.array([-0.4, 0.1, 2.0, -1.0, 0.0])
    assert sel.band(t, xi=0.5).tolist() == [0, 1, 4]
    assert sel.band(t, keep=2).tolist() == [1, 4]
    with pytest.raises(ConfigError):
        sel.band(t)


def test_gumbel_top_k_matches_the_weights():
    rng = np.random.default_rng(0)
    weights = np.array([0.1, 0.2, 0.7])
    firsts = np.bincount([sel.gumbel_top_k(np.log(weights), 1, rng)[0] for _ in range(4000)], minlength=3)
    assert firsts / 4000 == pytest.approx(weights, abs=0.03)
    # second draw without replacement: P(second = 0 | first = 2) = 0.1 / 0.3
    pairs = [tuple(sel.gumbel_top_k(np.log(weights), 2, rng)) for _ in range(4000)]
    first_two = [p for p in pairs if p[0] == 2]
    assert np.mean([p[1] == 0 for p in first_two]) == pytest.approx(1 / 3, abs=0.04)


def test_shift_presets():
    assert sel.default_prune_top(0.2) == 0.25
    assert sel.default_prune_top(0.5) == 0.25
    assert sel.default_prune_top(0.8) == pytest.approx(0.15)  # the preset table, as documented
    assert sel.default_prune_top(0.9) == pytest.approx(0.05)
    assert sel.shape_params(300, 400, 0.25, "m2_std3") == pytest.approx((150, 100))
    assert sel.shape_params(300, 400, 0.25, "m3_std6") == pytest.approx((100, 50))
    assert sel.shape_params(300, 400, 0.25, "figure") == pytest.approx((0.55 * 400 - 100, 44))
    assert sel.shape_params(300, 400, 0.25, "m2_std3", mu=0.1) == pytest.approx((30, 100))


def test_shift_gsample_drops_the_top_and_centres_on_mu():
    n = 1000
    scores = np.arange(n, dtype=float)[::-1]  # index i has rank i
    with pytest.warns(sel.SelectionWarning):  # σ = 10 ranks is narrower than the budget: expected here
        chosen = sel.shift_gsample(scores, 100, prune_top=0.25, mu=0.5, sigma=0.01, seed=0)
    assert len(chosen) == 100 and len(set(chosen.tolist())) == 100
    assert chosen.min() >= 250  # the top quarter is never chosen
    # a narrow Gaussian centred at position 375 of the rest = rank 625 takes the ranks around it
    assert abs(np.median(chosen) - 625) <= 2
    assert chosen.max() - chosen.min() == 99
    with pytest.warns(sel.SelectionWarning):
        again = sel.shift_gsample(scores, 100, prune_top=0.25, mu=0.5, sigma=0.01, seed=0)
    assert np.array_equal(chosen, again)
    gs = sel.gsample(scores, 0.2, shape="m2_std3", seed=1)
    assert gs.min() < 250  # Gsample is the same with δ = 0


def test_shift_gsample_warns_when_the_budget_outgrows_the_gaussian():
    scores = np.arange(1000, dtype=float)
    with pytest.warns(sel.SelectionWarning):
        sel.shift_gsample(scores, 0.5, sigma=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel.shift_gsample(scores, 0.5)  # the default (figure) shape has room for half the pool


def test_ccs_allocates_to_small_strata_first():
    # stratum 0 (scores near 0) has 10 examples, stratum 1 (near 1) has 2
    scores = np.array([0.0] * 10 + [1.0, 0.99])
    chosen = sel.ccs(scores, 6, prune_hard=0.0, strata=2, seed=0)
    assert len(chosen) == 6
    assert {10, 11} <= set(chosen.tolist())  # the small stratum is kept whole
    # with pruning the hardest 1/6 (two highest scores) goes first
    assert not {10, 11} & set(sel.ccs(scores, 6, prune_hard=2 / 12, strata=2).tolist())


def test_class_balanced_budgets_sum_and_follow_class_sizes():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    scores = np.arange(10, dtype=float)
    chosen = sel.class_balanced(sel.top_k, scores, labels, 5)
    assert len(chosen) == 5
    counts = np.bincount(labels[chosen], minlength=3)
    assert counts.tolist() == [3, 2, 0] or counts.tolist() == [3, 1, 1]
    assert set(chosen[labels[chosen] == 0].tolist()) == {3, 4, 5}  # top-k within the class


def test_select_dispatch_and_errors():
    scores = np.linspace(0, 1, 50)
    for strategy in sel.STRATEGIES:
        chosen = sel.select(strategy, scores, 0.4, labels=np.arange(50) % 2, seed=0)
        assert len(chosen) == 20 and np.all(np.diff(chosen) > 0)
    balanced = sel.select("shift-gsample", scores, 0.4, labels=np.arange(50) % 2, balance=True)
    assert np.bincount(np.arange(50)[balanced] % 2).tolist() == [10, 10]
    with pytest.raises(ConfigError, match="strategy"):
        sel.select("best", scores, 0.5)
    with pytest.raises(ConfigError, match="labels"):
        sel.select("top-k", scores, 0.5, balance=True)
    with pytest.raises(DataError, match="NaN"):
        sel.select("top-k", np.array([0.1, np.nan]), 1)
    with pytest.raises(ConfigError):
        sel.shift_gsample(scores, 0.9, prune_top=0.5)


def test_adaptive_selection_grows_the_pool_with_the_budget(tmp_path):
    from practicum.select.adaptive import BucketLaw, adaptive_select, bucket_indices, read_laws

    # Goyal et al.'s shipped T-MARS bucket laws: the top bucket alone wins at small budgets,
    # the union of the top two once the top bucket would be repeated too often.
    laws = [BucketLaw(-0.16, 6.73), BucketLaw(-0.125, 8.55), BucketLaw(-0.10, 5.27), BucketLaw(-0.085, 2.27)]
    scores = np.linspace(1, 0, 400)  # index order = ranking
    assert [len(b) for b in bucket_indices(scores, 4)] == [100] * 4
    # 100 examples stand for the 12.8M-sample buckets: budgets and the sample scale a shrink alike
    shrink = 12.8e6 / 100
    small, info_small = adaptive_select(scores, 32e6 / shrink, laws, a=0.025 * shrink)
    large, info_large = adaptive_select(scores, 640e6 / shrink, laws, a=0.025 * shrink)
    assert info_small["best_k"] == 1 and small.tolist() == list(range(100))
    assert info_large["best_k"] == 2 and large.tolist() == list(range(200))
    path = tmp_path / "laws.json"
    path.write_text('{"a": 0.025, "buckets": [{"b": -0.16, "tau": 6.73}, {"b": -0.1, "tau": 5}]}')
    parsed, extra = read_laws(path)
    assert parsed[1] == BucketLaw(-0.1, 5.0) and extra == {"a": 0.025}
    path.write_text('{"buckets": [{"b": 0.2, "tau": 1}]}')
    with pytest.raises(DataError):
        read_laws(path)
