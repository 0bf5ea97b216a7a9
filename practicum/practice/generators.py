"""What the DP loop asks a generator for, and the generators that answer.

The loop only needs one call: "give me these labels, guided by this learner with strength ω".

    generator(Request(labels, omega, guide, seed, start)) -> Generation(images, seconds, ...)

- `DiffusionGenerator`: the real thing — a `practicum.diffusion` denoiser (the built-in digits
  model, a local diffusers/SD folder) sampled with entropy guidance from the learner. A
  request is split into shards, each with its own seed from `shard_seed`, and the shards go
  through `executor.map` and practicum.diffusion's generation service (`sample_shard`, the model
  loaded once per worker), so local and Ray give the same bytes.
- `BankGenerator`: vanilla (ω = 0) samples drawn once up front and handed out by position
  (`start`), with their measured per-image cost. The study uses it so that static sets of
  several sizes, DP's initial set, dynamic-vanilla rounds and generate-then-prune candidates
  are all prefixes/slices of one vanilla stream, generated once. It refuses guided requests.

Labels are class-balanced by position: example number i of the stream has class i mod K, so a
request of n examples starting at `start` has labels (start + arange(n)) mod K.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from practicum.diffusion import EntropyGuidance
from practicum.diffusion.builtin import sampling_defaults
from practicum.diffusion.precision import freeze, prepare_denoiser
from practicum.diffusion.service import (FittedClassifier, GenerationJob, ModelSpec, bind_model, load_model,
                                         register_model, registered_models, sample_shard)
from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError, DataError


def balanced_labels(start: int, count: int, num_classes: int) -> torch.Tensor:
    """Class ids for examples start..start+count-1 of a class-balanced stream."""
    return (torch.arange(count, dtype=torch.long) + int(start)) % int(num_classes)


@dataclass
class Request:
    labels: torch.Tensor  # (n,) class ids
    omega: float = 0.0  # entropy guidance strength; 0 = vanilla
    guide: nn.Module | None = None  # frozen learner copy (eval mode) for entropy guidance
    seed: int = 0
    start: int = 0  # how many examples the pool held before this request


@dataclass
class Generation:
    images: torch.Tensor  # (n, C, H, W) in [-1, 1]
    seconds: float  # the cost of producing them (measured, or the bank's per-image cost × n)
    retries: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


Generator = Callable[[Request], Generation]


# ---------------------------------------------------------------- the real generator

class DiffusionGenerator:
    """Sample a request from a diffusion model, entropy-guided by the learner when ω != 0.

    `model` is anything `practicum.diffusion.load_denoiser` opens ("builtin", a local folder)
    or a loaded Denoiser. `sampling` goes to `sample` (steps, cfg_scale, eta, scheduler);
    `guidance` to `EntropyGuidance` (every, form, through, ...). `class_names` build the prompts
    of text-conditioned models; `image_shape` (C, H, W) is the real data's: generated images
    are resized to it, and the learner sees them that way inside the guidance too.
    """

    def __init__(self, model: Any = "builtin", *, sampling: dict[str, Any] | None = None,
                 guidance: dict[str, Any] | None = None, shard_size: int = 100, engine: str = "local",
                 class_names: tuple[str, ...] | None = None, image_shape: tuple[int, int, int] | None = None,
                 device: str = "cpu", dtype: str | None = None, gradient_checkpointing: bool = False,
                 vae_slicing: bool = False, class_map: str | None = None, prompt_template: str = "{name}"):
        if not isinstance(model, str):  # a loaded Denoiser: served to this process's workers only
            if dtype is not None or gradient_checkpointing or vae_slicing:
                prepare_denoiser(model, device=device, dtype=dtype or "fp32",
                                 gradient_checkpointing=gradient_checkpointing, vae_slicing=vae_slicing)
            else:
                freeze(model)  # a generator is never trained here: no parameter gradients
            model = register_model(f"denoiser-{id(model)}", model)
        spec = ModelSpec(model, device=device, dtype=dtype or "fp32",
                         gradient_checkpointing=bool(gradient_checkpointing), vae_slicing=bool(vae_slicing))
        self.model = bind_model(spec, class_names, image_shape, class_map=class_map,
                                prompt_template=prompt_template, resize=True)
        den = self.model.denoiser
        self.sampling = {**sampling_defaults(den), **(sampling or {})}
        self.guidance = dict(guidance or {})
        self.shard_size = int(shard_size)
        self.engine = engine
        self.executor = None  # an executor to use instead of `get_executor(engine)` (e.g. local processes)
        self.image_shape = tuple(image_shape) if image_shape is not None else tuple(den.image_shape)
        self.num_classes = den.num_classes if self.model.class_ids is None else len(class_names)

    def __call__(self, request: Request) -> Generation:
        spec, den = self.model.spec, self.model.denoiser
        if spec.model in registered_models() and self.engine != "local":
            raise ConfigError(f"the model {spec.model} exists in this process only and cannot be shipped to Ray "
                              "workers", "give the model as a path")
        labels = torch.as_tensor(request.labels, dtype=torch.long)
        if self.model.class_ids is not None:  # data class i → the model's class (e.g. an ImageNet-1k id)
            labels = torch.tensor(self.model.class_ids)[labels]
        terms = ()
        if request.omega != 0.0:
            if request.guide is None:
                raise ConfigError("entropy guidance (omega != 0) needs the learner", "pass guide=learner.guide_model()")
            guide = request.guide.to(den.device)
            if tuple(den.image_shape) != self.image_shape:  # the learner sees the images as the data has them
                guide = FittedClassifier(guide, self.image_shape)
            terms = (EntropyGuidance(guide, float(request.omega), **self.guidance),)
        jobs = [GenerationJob(labels=tuple(labels[i:i + self.shard_size].tolist()),
                              seed=shard_seed(request.seed, 0, shard), sampling=tuple(sorted(self.sampling.items())),
                              guidance=terms, image_shape=self.image_shape)
                for shard, i in enumerate(range(0, len(labels), self.shard_size))]
        executor = self.executor or get_executor(self.engine)
        results = executor.map(sample_shard, jobs, setup=partial(load_model, spec), description="generating")
        images = torch.cat([r["images"] for r in results]) if results else torch.empty(0, *self.image_shape)
        # the cost is the shards' own compute seconds, whatever ran them in parallel
        return Generation(images, sum(r["seconds"] for r in results), sum(r["retries"] for r in results),
                          {"omega": float(request.omega), **self.sampling,
                           **({"guidance": self.guidance} if request.omega else {})})


# ---------------------------------------------------------------- the vanilla bank

class BankGenerator:
    """Vanilla samples generated once and served by stream position (ω = 0 only)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, seconds_per_image: float):
        self.images, self.labels = images, torch.as_tensor(labels, dtype=torch.long)
        self.seconds_per_image = float(seconds_per_image)

    def __len__(self) -> int:
        return len(self.labels)

    def __call__(self, request: Request) -> Generation:
        if request.omega != 0.0:
            raise ConfigError("the vanilla bank only serves omega = 0", "use a DiffusionGenerator for guided data")
        n = len(request.labels)
        stop = request.start + n
        if stop > len(self):
            raise DataError(f"the vanilla bank holds {len(self)} samples; the run asked for up to {stop}",
                            "generate a larger bank (raise the study's sizes consistently)")
        if not torch.equal(self.labels[request.start:stop], torch.as_tensor(request.labels)):
            raise DataError("the requested labels do not match the bank's class-balanced order")
        return Generation(self.images[request.start:stop].clone(), n * self.seconds_per_image,
                          settings={"omega": 0.0, "source": "bank"})


class FallbackGenerator:
    """Vanilla requests from the bank while it lasts; guided ones, and vanilla ones past the end of
    the bank (DP's growth is not capped by the static grid), from the diffusion model."""

    def __init__(self, bank: BankGenerator, guided: Generator):
        self.bank, self.guided = bank, guided

    def __call__(self, request: Request) -> Generation:
        fits = request.start + len(request.labels) <= len(self.bank)
        return self.bank(request) if request.omega == 0.0 and fits else self.guided(request)
