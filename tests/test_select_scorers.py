"""Scorers: each formula on a small case worked out by hand (higher = harder everywhere)."""

import math

import numpy as np
import pytest
import torch

from practicum.errors import DataError
from practicum.select import scorers

LOGP = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))


def test_entropy_uniform_and_peaked():
    out = scorers.entropy(np.array([[0.0, 0.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0]]))
    assert out[0] == pytest.approx(math.log(4))
    assert out[1] == pytest.approx(0.0, abs=1e-12)
    hand = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    assert scorers.entropy(LOGP)[0] == pytest.approx(hand)


def test_margin_is_second_minus_top_probability():
    out = scorers.margin(LOGP)
    assert out == pytest.approx([0.3 - 0.5, 0.1 - 0.8])
    assert out[0] > out[1]  # the first example is closer to the boundary, so harder


def test_loss_is_cross_entropy_of_the_label():
    assert scorers.loss(LOGP, np.array([1, 2])) == pytest.approx([-math.log(0.3), -math.log(0.8)])


def test_el2n_by_hand_and_averaged_over_runs():
    y = np.array([0, 2])
    assert scorers.el2n(LOGP, y) == pytest.approx([math.sqrt(0.25 + 0.09 + 0.04), math.sqrt(0.01 + 0.01 + 0.04)])
    uniform = np.zeros((2, 3))
    stacked = np.stack([LOGP, uniform])
    expected = (scorers.el2n(LOGP, y) + scorers.el2n(uniform, y)) / 2
    assert scorers.el2n(stacked, y) == pytest.approx(expected)


def test_grand_last_layer_matches_autograd():
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 3)
    h = torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 1])
    logits = layer(h)
    norms = []
    for i in range(4):
        layer.zero_grad()
        torch.nn.functional.cross_entropy(layer(h[i:i + 1]), y[i:i + 1]).backward()
        norms.append(math.sqrt(layer.weight.grad.pow(2).sum() + layer.bias.grad.pow(2).sum()))
    out = scorers.grand(logits.detach().numpy(), y.numpy(), features=h.numpy())
    assert out == pytest.approx(norms, rel=1e-5)
    # without features only the bias gradient counts, which is EL2N
    assert scorers.grand(LOGP, np.array([0, 2])) == pytest.approx(scorers.el2n(LOGP, np.array([0, 2])))


def test_forgetting_counts_correct_to_wrong_flips():
    record = np.array([
        [1, 1, 0, 0],
        [0, 1, 0, 1],
        [1, 1, 0, 1],
        [0, 1, 0, 0],
    ], dtype=bool)  # (epochs, examples)
    assert scorers.forgetting(record).tolist() == [2.0, 0.0, 4.0, 1.0]
    assert scorers.forgetting(record, never_learned="zero").tolist() == [2.0, 0.0, 0.0, 1.0]
    with pytest.raises(DataError):
        scorers.forgetting(record[:1])


def test_aum_is_minus_mean_assigned_margin():
    epoch1 = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    epoch2 = np.array([[1.0, 2.0, 0.0], [0.0, 4.0, 1.0]])
    y = np.array([0, 2])
    # example 0: margins 3-1=2, 1-2=-1 → AUM 0.5; example 1 (label 2): 1-2=-1, 1-4=-3 → AUM -2
    assert scorers.aum(np.stack([epoch1, epoch2]), y) == pytest.approx([-0.5, 2.0])


def test_prototypicality_flags_the_outlier():
    rng = np.random.default_rng(0)
    blob_a = rng.normal(0, 0.1, size=(20, 2))
    blob_b = rng.normal(5, 0.1, size=(20, 2))
    x = np.vstack([blob_a, blob_b, [[2.5, 2.5]]])
    out = scorers.prototypicality(x, n_clusters=2)
    assert out.argmax() == 40
    per_class = scorers.prototypicality(x, n_clusters=1, labels=np.array([0] * 20 + [1] * 21))
    assert per_class.argmax() == 40


def test_rho_loss_and_random():
    assert scorers.rho_loss([2.0, 0.5], [0.5, 0.5]).tolist() == [1.5, 0.0]
    assert np.array_equal(scorers.random_scores(5, seed=3), scorers.random_scores(5, seed=3))
    assert not np.array_equal(scorers.random_scores(5, seed=3), scorers.random_scores(5, seed=4))


def test_bad_inputs_raise_data_errors():
    with pytest.raises(DataError, match="logits"):
        scorers.entropy(np.zeros(3))
    with pytest.raises(DataError, match="NaN"):
        scorers.entropy(np.array([[np.nan, 0.0]]))
    with pytest.raises(DataError, match="labels"):
        scorers.loss(LOGP, np.array([0, 3]))
    with pytest.raises(DataError):
        scorers.rho_loss([1.0], [1.0, 2.0])
