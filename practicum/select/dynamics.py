"""Training records and the heuristic scorers that need a trained model.

`record_dynamics` trains a learner (`practicum.learn`) on the pool and observes the whole pool
`observations` times, evenly spaced over training, keeping the logits. From that record come
forgetting events and AUM (every observation), EL2N (an early observation, as Paul et al.
score early in training), loss / entropy / margin (the last observation), GraNd (all parameters,
per example, via `torch.func`) and prototypicality (k-means in the learner's penultimate space).
Forgetting counts flips between consecutive full-pool observations rather than between the
minibatch visits of Toneva et al.; with uniform minibatches that is the practical equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from practicum.errors import ConfigError
from practicum.learn.learner import Learner, TrainSettings
from practicum.learn.models import build_model
from practicum.select import scorers

HEURISTICS = ("entropy", "margin", "loss", "el2n", "grand", "forgetting", "aum", "prototypicality", "rho_loss",
              "random")


@dataclass
class TrainingRecord:
    steps: np.ndarray  # (E,) optimiser step of each observation
    logits: np.ndarray  # (E, N, C) float32
    labels: np.ndarray  # (N,)

    def correct(self) -> np.ndarray:
        return self.logits.argmax(axis=2) == self.labels[None]


def record_dynamics(dataset, *, steps: int = 600, observations: int = 10, arch: str = "cnn", seed: int = 0,
                    width: int | None = None, **train_settings):
    """Train a fresh learner on `dataset` for `steps` steps, observing the pool `observations` times.

    Returns (TrainingRecord, Learner). The observations are at steps/observations, 2·steps/observations, ..., steps.
    """
    if observations < 2 or steps < observations:
        raise ConfigError(f"need observations >= 2 and steps >= observations (got {observations}, {steps})")
    model = build_model(arch, dataset.num_classes, dataset.image_shape, width=width, seed=seed)
    learner = Learner(model, TrainSettings.build(train_settings, steps=steps), seed=seed)
    marks = np.linspace(steps / observations, steps, observations).round().astype(int)
    logits = []
    for mark in marks:
        learner.fit(dataset, steps=int(mark) - learner.step, description="recording training dynamics")
        logits.append(learner.logits(dataset.images, ema=False).numpy().astype(np.float32))
    return TrainingRecord(marks, np.stack(logits), dataset.labels.numpy()), learner


def penultimate(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """The input of the model's last linear layer (a forward hook), in eval mode."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    handle = last.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size])
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(captured).reshape(len(x), -1).numpy()


def grand_full(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> np.ndarray:
    """‖∇_θ CE(f(x_i), y_i)‖₂ over all parameters, per example (vmap of grad; eval-mode BatchNorm)."""
    was_training = model.training
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def example_loss(p, xi, yi):
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return nn.functional.cross_entropy(logits, yi.unsqueeze(0))

    per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))
    norms = []
    try:
        for start in range(0, len(x), batch_size):
            grads = per_example(params, x[start:start + batch_size], y[start:start + batch_size])
            squared = sum(g.reshape(len(g), -1).pow(2).sum(dim=1) for g in grads.values())
            norms.append(squared.sqrt())
    finally:
        model.train(was_training)
    return torch.cat(norms).numpy().astype(np.float64)


def heuristic_scores(name: str, dataset, *, holdout=None, steps: int = 600, observations: int = 10,
                     runs: int = 1, early: float = 0.2, clusters: int = 10, arch: str = "cnn", seed: int = 0,
                     record: TrainingRecord | None = None, learner=None) -> np.ndarray:
    """One heuristic score per example of `dataset` (higher = harder), training what it needs.

    `runs` > 1 averages EL2N / GraNd over independently seeded learners (Paul et al. use 10).
    `early` is the fraction of training at which EL2N is read. RHO-loss trains a second learner
    on `holdout` (the clean validation split). Pass `record`/`learner` to reuse a recording.
    """
    if name not in HEURISTICS:
        raise ConfigError(f"unknown scorer {name!r}", f"use one of {', '.join(HEURISTICS)} (or the rater)")
    labels = dataset.labels.numpy()
    if name == "random":
        return scorers.random_scores(len(dataset), seed)
    if name == "rho_loss" and holdout is None:
        raise ConfigError("rho_loss needs a holdout split to train the irreducible-loss model")
    recordings = [(record, learner)] if record is not None else []
    wanted = runs if name in ("el2n", "grand") else 1
    while len(recordings) < wanted:
        recordings.append(record_dynamics(dataset, steps=steps, observations=observations, arch=arch,
                                          seed=seed + len(recordings)))
    first, model = recordings[0][0], recordings[0][1].model
    last = first.logits[-1]
    if name == "entropy":
        return scorers.entropy(last)
    if name == "margin":
        return scorers.margin(last)
    if name == "loss":
        return scorers.loss(last, labels)
    if name == "forgetting":
        return scorers.forgetting(first.correct())
    if name == "aum":
        return scorers.aum(first.logits, labels)
    if name == "el2n":
        at = max(0, int(round(early * observations)) - 1)
        return scorers.el2n(np.stack([r.logits[at] for r, _ in recordings]), labels)
    if name == "grand":
        return np.mean([grand_full(lrn.model, dataset.images, dataset.labels) for _, lrn in recordings], axis=0)
    if name == "prototypicality":
        return scorers.prototypicality(penultimate(model, dataset.images), clusters, labels=labels, seed=seed)
    # rho_loss: the current model's loss minus that of a model trained only on the holdout split
    _, holdout_learner = record_dynamics(holdout, steps=steps, observations=2, arch=arch, seed=seed + 1000)
    holdout_logits = holdout_learner.logits(dataset.images, ema=False).numpy()
    return scorers.rho_loss(scorers.loss(last, labels), scorers.loss(holdout_logits, labels))


__all__ = ["HEURISTICS", "TrainingRecord", "grand_full", "heuristic_scores", "penultimate", "record_dynamics"]
