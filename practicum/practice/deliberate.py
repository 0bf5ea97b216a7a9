"""Deliberate Practice inside a training loop you own.

    pool = ...                                            # a GrowingPool (DeliberatePractice makes one)
    dp = DeliberatePractice(model, "builtin:fashion", image_shape=(1, 28, 28), num_classes=10,
                            initial_size=400)            # round 0: N vanilla samples
    loader = DataLoader(dp.pool, batch_size=64, sampler=GrowingSampler(dp.pool, 64 * 100))
    for epoch ...:
        train on loader ...
        dp.step(val_accuracy, step=global_step)           # patience; maybe a guided round

This object holds the DP rules the built-in loop (`practicum.practice.loop`) uses — `Patience`
with its growing T_max, `round_due` (patience ran out, rounds remain, not in the LR warm-up or
cool-down), class-balanced rounds of P samples entropy-guided by a frozen copy of the current
model — while the user's loop owns the optimiser, the schedule and when to evaluate. The
Lightning and Hugging Face adapters (`practicum.practice.lightning`, `practicum.practice.hf`)
only call `step` from their validation hooks.

Each evaluation and each round is logged (the `practicum` logger, `events`, and with `out=`
the run folder's metrics.jsonl and pool/, which `track=` mirrors to MLflow or TensorBoard).
"""

from __future__ import annotations

import copy
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from practicum.data.pool import Pool
from practicum.data.runstore import RunDir
from practicum.engine import shard_seed
from practicum.errors import ConfigError, RunError
from practicum.learn.patience import Patience, round_due
from practicum.log import logger
from practicum.practice.generators import DiffusionGenerator, Generator, Request, balanced_labels
from practicum.practice.growing import GrowingPool
from practicum.practice.loop import entropy_stats
from practicum.practice.settings import BUILTIN_PRACTICE_STEPS, GeneratorSettings, PracticeSettings
from practicum.tracking import tracking

_DEFAULTS = {name: PracticeSettings.model_fields[name].default
             for name in ("add_size", "omega", "t_init", "patience_rule", "reset_best")}


class Logits(nn.Module):
    """A classifier seen as images -> logits: Hugging Face models return an output object or dict."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        if isinstance(out, torch.Tensor):
            return out
        logits = out["logits"] if isinstance(out, dict) else getattr(out, "logits", None)
        if logits is None:
            raise ConfigError(f"the model returned a {type(out).__name__}, not logits",
                              "return a logits tensor, or an output with a `logits` field")
        return logits


class DeliberatePractice:
    """Patience on your validation metric; when it runs out, P entropy-guided samples join the pool.

    `model` is your classifier (images in [-1, 1] -> logits; its current weights guide each
    round). `generator` is a practicum generator or a model `DiffusionGenerator` opens
    ("builtin:fashion", a diffusers folder). `higher_is_better=False` for a loss. `first_step`
    and `stop_step` bound the steps at which rounds may be added (the LR warm-up and cool-down).
    """

    def __init__(self, model: nn.Module, generator: Generator | str = "builtin:fashion", *,
                 num_classes: int, image_shape: tuple[int, int, int] | None = None,
                 pool: GrowingPool | None = None, initial_size: int = 0,
                 add_size: int = _DEFAULTS["add_size"], omega: float = _DEFAULTS["omega"],
                 t_init: int = _DEFAULTS["t_init"], patience_rule: str = _DEFAULTS["patience_rule"],
                 reset_best: bool = _DEFAULTS["reset_best"], max_rounds: int | None = None,
                 first_step: int = 0, stop_step: int | None = None, higher_is_better: bool = True,
                 seed: int = 0, out: str | Path | None = None, track: str | None = None):
        if add_size < 1 or num_classes < 1:
            raise ConfigError(f"add_size and num_classes must be at least 1 (got {add_size}, {num_classes})")
        if track is not None and out is None:
            raise ConfigError("track= needs out=, the folder whose metrics.jsonl is tracked",
                              "pass out='runs/my-dp'")
        self.model, self.num_classes = model, int(num_classes)
        self.add_size, self.omega, self.max_rounds = int(add_size), float(omega), max_rounds
        self.first_step, self.stop_step, self.sign = first_step, stop_step, 1.0 if higher_is_better else -1.0
        self.seed, self.rounds, self.events = seed, 0, []
        if pool is None:
            if image_shape is None:
                raise ConfigError("DeliberatePractice needs the images' shape", "pass image_shape=(C, H, W) or pool=")
            pool = GrowingPool(image_shape=image_shape)
        self.pool = pool
        self.generator = _open_generator(generator, self.pool.image_shape)
        self._run, self._pool_dir, self._closing = self._open_out(out, track)
        if initial_size > 0:
            self._add_round(0, initial_size, omega=0.0, guide=None)  # the paper's N vanilla samples
        if len(self.pool) == 0:
            raise ConfigError("the pool is empty", "pass initial_size > 0 or a pool that holds data")
        self.patience = Patience(t_init, len(self.pool), patience_rule, reset_best)

    # ---------------------------------------------------------------- the one call
    def step(self, metric: float, step: int | None = None) -> dict[str, Any] | None:
        """Record one validation result; returns the round's record if one was added."""
        improved = self.patience.update(self.sign * float(metric))
        self._log({"event": "eval", **({} if step is None else {"step": int(step)}), "metric": float(metric),
                   "improved": improved, "patience": self.patience.count, "t_max": self.patience.t_max,
                   "pool_size": len(self.pool)})
        if not round_due(self.patience, self.rounds, self.max_rounds, step, self.first_step, self.stop_step):
            return None
        guide = Logits(copy.deepcopy(self.model)).eval().requires_grad_(False)
        k = self.rounds + 1
        pool_entropy = _entropy(guide, self.pool.images)
        seconds, new_entropy = self._add_round(k, self.add_size, self.omega, guide)
        self.rounds = k
        self.patience.new_round(len(self.pool))
        record = {"event": "injection", "round": k, **({} if step is None else {"step": int(step)}),
                  "pool_size": len(self.pool), "added": self.add_size, "omega": self.omega, "gen_seconds": seconds,
                  "t_max": self.patience.t_max, **entropy_stats("new_entropy", new_entropy),
                  **entropy_stats("pool_entropy", pool_entropy)}
        self._log(record)
        logger.info("DP round %d: +%d samples guided by the current model (pool %d, new entropy %.3f vs pool %.3f)",
                    k, self.add_size, len(self.pool), record["new_entropy_mean"], record["pool_entropy_mean"])
        return record

    def close(self) -> None:
        """Flush the tracker (figures and settings go as artifacts); the adapters call this at the end."""
        self._closing.close()

    # ---------------------------------------------------------------- rounds
    def _add_round(self, k: int, count: int, omega: float, guide: nn.Module | None) -> tuple[float, np.ndarray]:
        labels = balanced_labels(len(self.pool), count, self.num_classes)
        started = time.perf_counter()
        out = self.generator(Request(labels=labels, omega=omega, guide=guide, seed=shard_seed(self.seed, k),
                                     start=len(self.pool)))
        if len(out.images) != count or tuple(out.images.shape[1:]) != self.pool.image_shape:
            raise RunError(f"the generator returned images of shape {tuple(out.images.shape)} for {count} labels "
                           f"of {self.pool.image_shape}", "give a generator for the pool's image shape")
        seconds = time.perf_counter() - started
        entropy = np.empty(0) if guide is None else _entropy(guide, out.images)
        self.pool.add(out.images, labels, round_index=k)
        if self._pool_dir is not None:
            values = {"entropy": entropy} if guide is not None else {}
            Pool(self._pool_dir).append(f"round-{k:03d}", out.images, labels, round_index=k, values=values,
                                        settings={"omega": omega, "gen_seconds": seconds})
        return seconds, entropy

    # ---------------------------------------------------------------- logging
    def _open_out(self, out, track):
        closing = ExitStack()
        if out is None:
            return None, None, closing
        run = RunDir(out)
        run.path.mkdir(parents=True, exist_ok=True)
        closing.enter_context(tracking(track, run.path))
        return run, run.path / "pool", closing

    def _log(self, record: dict[str, Any]) -> None:
        self.events.append(record)
        if self._run is not None:
            self._run.log_metric(record)


def _entropy(guide: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Predictive entropy per image under `guide` (nats)."""
    device = next(guide.parameters()).device
    parts = []
    with torch.no_grad():
        for chunk in images.split(batch_size):
            logp = torch.log_softmax(guide(chunk.to(device)).float(), dim=1)
            parts.append(-(logp.exp() * logp).sum(1).cpu())
    return torch.cat(parts).numpy() if parts else np.empty(0)


def _open_generator(generator: Generator | str, image_shape: tuple[int, int, int]) -> Generator:
    if not isinstance(generator, str):
        return generator
    g = GeneratorSettings(model=generator)
    sampling = g.sampling()
    if generator.startswith("builtin"):  # the sampler steps `practicum practice` uses with its built-in models
        sampling.setdefault("steps", BUILTIN_PRACTICE_STEPS)
    return DiffusionGenerator(generator, sampling=sampling, guidance=g.guidance(), shard_size=g.shard_size,
                              image_shape=image_shape)
