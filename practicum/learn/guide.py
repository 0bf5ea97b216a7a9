"""The guide of entropy guidance: a classifier whose predictive entropy the sampler raises.

`practicum generate` guides with a saved learner (`--learner`), or else trains a default guide
classifier on the train split of its data, checkpointed as it trains (a kill loses at most
`GUIDE_CHECKPOINT_EVERY` steps) and cached in the run folder (`OUT/guide/`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from practicum.data import RunDir, load_source
from practicum.errors import ModelError
from practicum.learn.learner import Learner, TrainSettings, read_learner_meta
from practicum.learn.models import build_model
from practicum.log import logger

GUIDE_CHECKPOINT_EVERY = 100  # guide training steps between two checkpoints (resume granularity)


def load_guide(learner_dir: str | Path) -> torch.nn.Module:
    """A saved learner's EMA network in eval mode, frozen (the guide of entropy guidance)."""
    return Learner.load(learner_dir).guide_model()


def guide_input_size(classifier: torch.nn.Module) -> tuple[int, int] | None:
    """The (H, W) a practicum-built classifier takes (None: unknown, the images are not resized)."""
    spec = getattr(classifier, "practicum_spec", None)
    return None if spec is None else tuple(spec["image_shape"][1:])


def check_guide_matches_data(learner: str | Path, data, data_spec: str) -> None:
    """Refuse a saved learner whose images or classes are not the data's: it would guide nothing."""
    spec = read_learner_meta(learner).get("model_spec") or {}
    shape = tuple(spec.get("image_shape") or data.image_shape)
    classes = spec.get("num_classes", data.num_classes)
    if shape != tuple(data.image_shape) or classes != data.num_classes:
        raise ModelError(f"the learner {learner} was built for {classes} classes of {'x'.join(map(str, shape))} "
                         f"images but the data {data_spec} has {data.num_classes} of "
                         f"{'x'.join(map(str, data.image_shape))}", "guide with a learner trained on this data")


def default_guide(run: RunDir, data: str, *, steps: int, arch: str, seed: int) -> Path:
    """Train (or reuse) the default guide in `run`/guide on the train split of `data`, checkpointed
    in `run`/guide/partial as it trains, so a kill during guide training (a large share of a small
    run) loses at most GUIDE_CHECKPOINT_EVERY steps."""
    folder = run.path / "guide"
    if (folder / "learner.json").exists():
        Learner.load(folder)  # validates the cache
        return folder
    train = load_source(data, "train")
    partial = folder / "partial"
    if (partial / "learner.json").exists():
        learner = Learner.load(partial)
        logger.info("resuming the guide classifier at step %d of %d", learner.step, steps)
    else:
        logger.info("no --learner given: training the default guide classifier on the %s train split first "
                    "(%d steps, once; cached in %s, or pass --learner to skip it)", data, steps, folder)
        model = build_model(arch, train.num_classes, train.image_shape, seed=seed)
        learner = Learner(model, TrainSettings.build(steps=steps), seed=seed, device="cpu")
    while learner.step < steps:
        learner.fit(train, steps=min(GUIDE_CHECKPOINT_EVERY, steps - learner.step),
                    description=f"guide classifier, steps {learner.step + 1}-"
                                f"{min(learner.step + GUIDE_CHECKPOINT_EVERY, steps)} of {steps}")
        if learner.step < steps:
            learner.save(partial)
    run.log_metric({"event": "guide", "steps": steps, **learner.evaluate(load_source(data, "val"))})
    learner.save(folder)
    shutil.rmtree(partial, ignore_errors=True)
    return folder


__all__ = ["GUIDE_CHECKPOINT_EVERY", "check_guide_matches_data", "default_guide", "guide_input_size", "load_guide"]
