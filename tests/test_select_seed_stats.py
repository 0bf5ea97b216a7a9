"""Across-seed summaries for the selection benchmark, checked against hand-computed values."""

import pytest

from practicum.errors import PracticumError
from practicum.select.seed_stats import paired_difference, summarise_arms
from practicum.stats import t_interval

PER_SEED = {
    0: {"full": {"fd": 10.0}, "sel": {"fd": 8.0}},
    1: {"full": {"fd": 12.0}, "sel": {"fd": 9.0}},
    2: {"full": {"fd": 11.0}, "sel": {"fd": 7.0}, "extra": {"fd": 1.0}},
}


def test_summary_mean_and_sample_std():
    out = summarise_arms(PER_SEED, ["fd", "missing"])
    assert out["full"]["fd"]["mean"] == pytest.approx(11.0)
    assert out["full"]["fd"]["std"] == pytest.approx(1.0)  # ddof 1: var = (1 + 1 + 0) / 2
    assert out["extra"]["fd"]["std"] is None and out["extra"]["fd"]["seeds"] == ["2"]
    assert "missing" not in out["full"]


def test_paired_difference_by_hand():
    # diffs 2, 3, 4: mean 3, sd 1, t(0.975, 2) = 4.302653, half = 4.302653 / sqrt(3) = 2.484138
    d = paired_difference(PER_SEED, "full", "sel", "fd")
    assert d["per_seed"] == [2.0, 3.0, 4.0] and d["df"] == 2
    assert d["mean"] == pytest.approx(3.0)
    assert d["ci"] == pytest.approx([3 - 2.484138, 3 + 2.484138], abs=1e-5)


def test_pairs_only_seeds_with_both_arms():
    d = paired_difference(PER_SEED, "extra", "sel", "fd")
    assert d["seeds"] == ["2"] and d["ci"] is None and d["df"] == 0
    assert paired_difference(PER_SEED, "nope", "sel", "fd") is None
    assert t_interval([1.0]) is None


def test_bad_level_is_one_error():
    with pytest.raises(PracticumError, match="level"):
        paired_difference(PER_SEED, "full", "sel", "fd", level=1.5)
