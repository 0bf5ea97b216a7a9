"""Scorers that need a trained learner: every heuristic runs on a small digits subset."""

import numpy as np
import pytest
import torch

from practicum.data import load_digits
from practicum.select import dynamics


@pytest.fixture(scope="module")
def small():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: a second thread only adds synchronisation
    train = load_digits("train").subset(np.arange(120))
    record, learner = dynamics.record_dynamics(train, steps=24, observations=4, seed=0, batch_size=16)
    yield train, record, learner
    torch.set_num_threads(before)


def test_record_has_one_observation_per_mark(small):
    train, record, _ = small
    assert record.steps.tolist() == [6, 12, 18, 24]
    assert record.logits.shape == (4, 120, 10)
    assert record.correct().shape == (4, 120)


@pytest.mark.parametrize("name", ["entropy", "margin", "loss", "el2n", "forgetting", "aum", "prototypicality"])
def test_heuristics_from_a_record(small, name):
    train, record, learner = small
    scores = dynamics.heuristic_scores(name, train, record=record, learner=learner, observations=4, clusters=3)
    assert scores.shape == (120,) and np.isfinite(scores).all()


def test_grand_full_matches_per_example_autograd(small):
    train, _, learner = small
    model = learner.model
    x, y = train.images[:3], train.labels[:3]
    norms = dynamics.grand_full(model, x, y)
    model.eval()
    for i in range(3):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        expected = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None))
        assert norms[i] == pytest.approx(float(expected), rel=1e-4)
    model.train()


def test_rho_loss_trains_a_holdout_model(small):
    train, record, learner = small
    holdout = load_digits("val").subset(np.arange(60))
    scores = dynamics.heuristic_scores("rho_loss", train, holdout=holdout, record=record, learner=learner,
                                       steps=12, observations=4)
    assert scores.shape == (120,) and np.isfinite(scores).all()
