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
(`class_job`) through practicum.diffusion's generation service (`sample_shard`, the model loaded
once per worker) and its one guided sampler with the `ModeGuidance` term (the spec-written
reference loop now lives in tests/test_distill_reference.py as the test oracle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from practicum.diffusion.guidance import ModeGuidance
from practicum.diffusion.service import GenerationJob
from practicum.errors import ConfigError
from practicum.select.coverage import herding_order

METHODS = ("random-real", "kmeans-nearest-real", "herding", "unguided", "mode-no-stop", "mgd3")
REAL_METHODS = ("random-real", "kmeans-nearest-real", "herding")
GENERATED_METHODS = ("unguided", "mode-no-stop", "mgd3")


def method_guidance(method: str, lam: float, t_stop: int) -> tuple[float, int]:
    """(λ, t_stop) a generated method samples with."""
    if method == "unguided":
        return 0.0, t_stop
    if method == "mode-no-stop":
        return lam, -1
    if method == "mgd3":
        return lam, t_stop
    raise ConfigError(f"{method!r} is not a generated method", f"use one of {', '.join(GENERATED_METHODS)}")


def class_job(method: str, label: int, seed: int, modes: np.ndarray | None, *, ipc: int, lam: float, t_stop: int,
              form: str, sampling: dict[str, Any]) -> GenerationJob:
    """The shard that samples `ipc` images of the model's class `label` for a generated method:
    mode guidance toward `modes` (ipc, *sample_shape) with the method's (λ, t_stop)."""
    lam, t_stop = method_guidance(method, lam, t_stop)
    terms = () if lam == 0.0 else (ModeGuidance(torch.as_tensor(modes, dtype=torch.float32), lam=lam, t_stop=t_stop,
                                                form=form),)
    return GenerationJob(labels=(int(label),) * ipc, seed=seed, sampling=tuple(sorted(sampling.items())),
                         guidance=terms)


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

        return class_rows[herding_order(np.asarray(features).reshape(len(features), -1), ipc)]
    raise ConfigError(f"{method!r} is not a real-image method", f"use one of {', '.join(REAL_METHODS)}")


__all__ = ["GENERATED_METHODS", "METHODS", "REAL_METHODS", "class_job", "method_guidance", "real_selection"]
