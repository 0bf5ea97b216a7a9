"""The six ways of making a distilled set, one class at a time.

- `random-real`: IPC real training images of the class, drawn at random (new draw per seed);
- `kmeans-nearest-real`: the real image nearest each k-means mode (the same for every seed; the
  image exactly as it was clustered, flipped if mode discovery flipped it);
- `herding`: herding selection (Welling 2009) in the generator's encode() space (deterministic);
- `unguided`: the diffusion model sampled from the per-class noise, no mode guidance;
- `mode-no-stop`: mode guidance at every step (t_stop = −1);
- `mgd3`: mode guidance while i > t_stop, then free sampling (stop guidance).

The three generated methods of one (seed, class) use the same seed, hence the same initial and
per-step noise, so they differ only by the guidance. Generation runs as one shard per class
through `practicum.engine` (`generate_class_shard(denoiser, job)` is the top-level, picklable shard
function; the executor's `setup` loads the denoiser once per worker).

Generation uses practicum.diffusion's one guided sampler with its `ModeGuidance` term (the
spec-written reference loop now lives in tests/test_distill_reference.py as the test oracle).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from practicum.errors import ConfigError

METHODS = ("random-real", "kmeans-nearest-real", "herding", "unguided", "mode-no-stop", "mgd3")
REAL_METHODS = ("random-real", "kmeans-nearest-real", "herding")
GENERATED_METHODS = ("unguided", "mode-no-stop", "mgd3")

_DENOISERS: dict[str, Any] = {}  # per-process cache: a worker loads a model once


def cached_denoiser(model: str, class_names: tuple[str, ...] | None = None, device: str = "cpu",
                    dtype: str = "fp32"):
    """The denoiser `model` ("builtin…" or a local folder), loaded once per process, frozen, on
    `device` with its networks in `dtype` (the sampler's arithmetic stays fp32).

    `class_names` (the data's, or prompts built from them) let a text-conditioned folder build
    its class prompts.
    """
    from practicum.diffusion import load_denoiser
    from practicum.diffusion.precision import prepare_denoiser

    key = (model, None if model.startswith("builtin") else class_names, device, dtype)
    if key not in _DENOISERS:
        if key[1] is None:
            den = load_denoiser(model)
        else:
            den = load_denoiser(model, class_names=list(class_names))
        _DENOISERS[key] = prepare_denoiser(den, device=device, dtype=dtype)
    return _DENOISERS[key]


@dataclass(frozen=True)
class ShardJob:
    """Everything one class shard needs (plain values, picklable for Ray)."""

    model: str
    method: str
    label: int
    seed: int  # from practicum.engine.shard_seed(run seed, method-free round, class)
    modes: np.ndarray | None  # (ipc, *sample_shape) for the guided methods
    ipc: int
    lam: float
    t_stop: int
    steps: int
    scheduler: str  # "ddpm" | "ddim"
    form: str  # ModeGuidance form: "auto" | "mean" | "eps"
    cfg_scale: float
    timestep_spacing: str | None
    model_label: int | None = None  # the model's class id for `label` (None: the same id)


def method_guidance(method: str, lam: float, t_stop: int) -> tuple[float, int]:
    """(λ, t_stop) a generated method samples with."""
    if method == "unguided":
        return 0.0, t_stop
    if method == "mode-no-stop":
        return lam, -1
    if method == "mgd3":
        return lam, t_stop
    raise ConfigError(f"{method!r} is not a generated method", f"use one of {', '.join(GENERATED_METHODS)}")


def generate_class_shard(den, job: ShardJob) -> dict[str, Any]:
    """Sample `job.ipc` images of class `job.label` with the denoiser `den`.

    Used as `executor.map(generate_class_shard, jobs, setup=partial(cached_denoiser, model))`, so a
    worker loads the model once. Returns images (ipc, C, H, W) float32, latents and timing.
    """
    lam, t_stop = method_guidance(job.method, job.lam, job.t_stop)
    labels = torch.full((job.ipc,), job.label if job.model_label is None else job.model_label, dtype=torch.long)
    start = time.perf_counter()
    from practicum.diffusion import ModeGuidance, sample

    terms = []
    if lam != 0.0:
        terms.append(ModeGuidance(torch.as_tensor(job.modes, dtype=torch.float32), lam=lam, t_stop=t_stop,
                                  form=job.form))
    out = sample(den, labels, steps=job.steps, scheduler=job.scheduler, cfg_scale=job.cfg_scale,
                 guidance=terms, seed=job.seed, timestep_spacing=job.timestep_spacing)
    images, latents, guided, retries = out.images, out.latents, out.guided_steps.get("mode", 0), out.retries
    seconds = time.perf_counter() - start
    return {"label": job.label, "images": images.numpy().astype(np.float32),
            "latents": latents.numpy().astype(np.float32), "seconds": seconds,
            "guided_steps": int(guided), "retries": int(retries)}


def real_selection(method: str, class_rows: np.ndarray, ipc: int, nearest: np.ndarray | None,
                   seed: int, features: np.ndarray | None = None) -> np.ndarray:
    """Dataset rows of the real-image baselines for one class (`features`: that class's rows, for herding)."""
    if method == "random-real":
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(class_rows, size=ipc, replace=False))
    if method == "kmeans-nearest-real":
        if nearest is None:
            raise ConfigError("kmeans-nearest-real needs the k-means modes")
        return np.asarray(nearest)
    if method == "herding":
        if features is None:
            raise ConfigError("herding needs the class's features")
        from practicum.select.coverage import herding_order

        return class_rows[herding_order(np.asarray(features).reshape(len(features), -1), ipc)]
    raise ConfigError(f"{method!r} is not a real-image method", f"use one of {', '.join(REAL_METHODS)}")


__all__ = ["GENERATED_METHODS", "METHODS", "REAL_METHODS", "ShardJob", "cached_denoiser",
           "generate_class_shard", "method_guidance", "real_selection"]
