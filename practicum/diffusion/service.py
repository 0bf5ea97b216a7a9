"""The guided-generation service: the one way a command gets a diffusion model onto a worker and samples it.

`practicum generate`, `practicum distill` and Deliberate Practice's generator all go through here:

- `ModelSpec` names a generator and how it runs (device, network dtype, memory switches, the
  prompts a text-conditioned folder encodes); `load_model(spec)` opens it once per process. It is
  the engine's worker setup: `executor.map(sample_shard, jobs, setup=partial(load_model, spec))`
  loads the model once per worker (Ray: once per actor). `register_model` puts a loaded model
  (a Denoiser object, a test's tiny model) in this process's cache under a name, which worker
  processes and Ray actors do not have.
- `GenerationJob` is one shard: labels, seed, sampler options and the guidance terms (which hold
  their guide network or modes), all picklable; `sample_shard(den, job)` samples it.
- `bind_model(spec, class_names, image_shape)` opens a model for a dataset and checks that they
  fit: prompts from the class names, the model's class id per data class (a count mismatch
  without a class map is refused), the image shape (refused unless the caller resizes).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from practicum.diffusion.guidance import GuidanceTerm
from practicum.diffusion.loading import load_denoiser
from practicum.diffusion.model_defaults import model_class_ids, model_family, prompt_names, read_class_map
from practicum.diffusion.precision import prepare_denoiser
from practicum.diffusion.sampler import sample
from practicum.errors import ConfigError, ModelError


@dataclass(frozen=True)
class ModelSpec:
    """A generator and how it runs; the key of `load_model`'s cache (plain values, picklable)."""

    model: str  # anything `load_denoiser` opens, or a name given to `register_model`
    class_names: tuple[str, ...] | None = None  # the prompts of a text-conditioned folder
    device: str = "cpu"
    dtype: str = "fp32"  # the networks' dtype (the sampler's arithmetic stays fp32)
    gradient_checkpointing: bool = False
    vae_slicing: bool = False


_MODELS: dict[ModelSpec | str, Any] = {}  # per process: spec → loaded model; name → registered model


def register_model(name: str, denoiser: Any | None) -> str:
    """Make `denoiser` the model named `name` in this process (None forgets it); returns the name."""
    if denoiser is None:
        _MODELS.pop(name, None)
    else:
        _MODELS[name] = denoiser
    return name


def registered_models() -> set[str]:
    """The names `register_model` gave in this process (worker processes and Ray actors lack them)."""
    return {key for key in _MODELS if isinstance(key, str)}


def forget_loaded_models() -> None:
    """Drop the models `load_model` opened in this process (registered models stay): a driver
    that has finished generating gives their memory back."""
    for key in [k for k in _MODELS if not isinstance(k, str)]:
        del _MODELS[key]


def load_model(spec: ModelSpec) -> Any:
    """The denoiser of `spec`, loaded once per process, frozen, on its device, networks in its dtype."""
    if spec.model in _MODELS:
        return _MODELS[spec.model]
    if spec not in _MODELS:
        options = {} if spec.class_names is None else {"class_names": list(spec.class_names)}
        try:
            den = load_denoiser(spec.model, **options)
        except FileNotFoundError as exc:
            raise ModelError(f"model {spec.model!r} not found ({exc})",
                             "give 'builtin' or a local diffusers folder") from None
        _MODELS[spec] = prepare_denoiser(den, device=spec.device, dtype=spec.dtype,
                                         gradient_checkpointing=spec.gradient_checkpointing,
                                         vae_slicing=spec.vae_slicing)
    return _MODELS[spec]


# ---------------------------------------------------------------- one shard

@dataclass(frozen=True)
class GenerationJob:
    """One shard: everything a (possibly remote) worker samples, picklable."""

    labels: tuple[int, ...]  # the model's class id of each sample
    seed: int  # from practicum.engine.shard_seed
    sampling: tuple[tuple[str, Any], ...] = ()  # `sample`'s options: steps, cfg_scale, scheduler, eta, ...
    guidance: tuple[GuidanceTerm, ...] = ()
    image_shape: tuple[int, int, int] | None = None  # fit the images to this (C, H, W): the data's


def sample_shard(den: Any, job: GenerationJob) -> dict[str, Any]:
    """Sample one shard (top-level, so executors can ship it): images (float32, CPU), latents,
    labels, the terms' per-sample stats, retries, guided steps per term and the seconds taken."""
    start = time.perf_counter()
    out = sample(den, torch.tensor(job.labels, dtype=torch.long), guidance=list(job.guidance), seed=job.seed,
                 **dict(job.sampling))
    images = out.images.float().cpu()
    if job.image_shape is not None and tuple(images.shape[1:]) != tuple(job.image_shape):
        images = fit_images(images, job.image_shape)
    return {"images": images, "latents": out.latents, "labels": out.labels, "stats": out.stats,
            "retries": out.retries, "guided_steps": out.guided_steps, "seconds": time.perf_counter() - start}


def fit_images(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Generated images → the real data's (C, H, W): antialiased resize, RGB↔grey. Differentiable."""
    c, h, w = shape
    if images.shape[1] != c:
        if c == 1:
            images = images.mean(1, keepdim=True)
        elif images.shape[1] == 1:
            images = images.expand(-1, c, -1, -1)
        else:
            images = images[:, :c]
    if tuple(images.shape[-2:]) != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return images.clamp(-1, 1)


class FittedClassifier(nn.Module):
    """A classifier of the data's images seen from the generator: decoded images are fitted first."""

    def __init__(self, classifier: nn.Module, shape: tuple[int, int, int]):
        super().__init__()
        self.classifier, self.shape = classifier, tuple(shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(fit_images(images, self.shape))


# ---------------------------------------------------------------- a model for a dataset

@dataclass(frozen=True)
class BoundModel:
    spec: ModelSpec  # with the prompts the data's class names give
    denoiser: Any
    class_ids: tuple[int, ...] | None  # the model's class id per data class (None: the same ids)


def bind_model(spec: ModelSpec, class_names: Sequence[str] | None, image_shape: Sequence[int] | None = None, *,
               data: str = "the data", class_map: str | None = None, prompt_template: str = "{name}",
               resize: bool = False) -> BoundModel:
    """Open `spec`'s model for data of these classes and images, refusing what cannot fit.

    A text-conditioned folder encodes the class names (mapped by `class_map`, in `prompt_template`)
    as prompts; a class-conditional model needs the data's classes (the same count, or a class map
    that gives each data class its model class); images of another shape are refused unless the
    caller fits them (`resize`, as Deliberate Practice does). `data` names the data in errors."""
    cmap = None if class_map is None else read_class_map(class_map)
    names = None if class_names is None else tuple(class_names)
    spec = dataclasses.replace(spec, class_names=_prompts(spec.model, names, cmap, prompt_template))
    den = load_model(spec)
    if not resize and image_shape is not None and tuple(den.image_shape) != tuple(image_shape):
        raise ModelError(f"the model {spec.model} makes {_size(den.image_shape)} images but {data} has "
                         f"{_size(image_shape)}", "use a model trained on images of this size, or data of the "
                                                  "model's size (distill: --image-size resizes an image folder)")
    ids = None
    if names is not None and model_family(den) == "sd":
        prompt_names(names, cmap, prompt_template)  # refuses WordNet-id prompts
    elif names is not None:
        ids = model_class_ids(names, den.num_classes, cmap)
    return BoundModel(spec, den, None if ids is None else tuple(ids))


def _prompts(model: str, names: tuple[str, ...] | None, cmap, template: str) -> tuple[str, ...] | None:
    """What a text-conditioned folder encodes as prompts (None for the built-in models, which read ids)."""
    if names is None or model.startswith("builtin"):
        return None
    try:
        return tuple(prompt_names(names, cmap, template))
    except ConfigError:
        if cmap is not None:
            raise
        return names  # WordNet ids are refused later, and only if the model reads prompts (SD)


def _size(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


__all__ = ["BoundModel", "FittedClassifier", "GenerationJob", "ModelSpec", "bind_model", "fit_images", "load_model",
           "register_model", "registered_models", "sample_shard"]
