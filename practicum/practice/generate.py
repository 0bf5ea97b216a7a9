"""What the DP loop asks a generator for, and the generators that answer.

The loop only needs one call: "give me these labels, guided by this learner with strength ω".

    generator(Request(labels, omega, guide, seed, start)) -> Generation(images, seconds, ...)

- `DiffusionGenerator`: the real thing — a `practicum.diffusion` denoiser (the built-in digits
  model, a local diffusers/SD folder) sampled with entropy guidance from the learner. A
  request is split into shards, each with its own seed from `shard_seed`, and the shards go
  through `executor.map`, so local and Ray give the same bytes.
- `BankGenerator`: vanilla (ω = 0) samples drawn once up front and handed out by position
  (`start`), with their measured per-image cost. The study uses it so that static sets of
  several sizes, DP's initial set, dynamic-vanilla rounds and generate-then-prune candidates
  are all prefixes/slices of one vanilla stream, generated once. It refuses guided requests.

Labels are class-balanced by position: example number i of the stream has class i mod K, so a
request of n examples starting at `start` has labels (start + arange(n)) mod K.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from practicum.diffusion import EntropyGuidance, load_denoiser, sample
from practicum.diffusion.builtin import sampling_defaults
from practicum.diffusion.model_defaults import model_class_ids, model_family, prompt_names, read_class_map
from practicum.diffusion.precision import freeze, prepare_denoiser
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

_DENOISERS: dict[Any, Any] = {}  # one loaded model per process (Ray workers load their own)


def _denoiser(spec: str, class_names: tuple[str, ...] | None = None, device: str = "cpu",
              runtime: tuple[tuple[str, Any], ...] = ()):
    """`runtime`: sorted (name, value) pairs for `prepare_denoiser` (dtype, checkpointing, slicing)."""
    key = (spec, class_names, device, runtime)
    if spec in _DENOISERS:  # registered in-process (tests, notebooks)
        return _DENOISERS[spec]
    if key not in _DENOISERS:
        options = {} if (spec.startswith("builtin") or class_names is None) else {"class_names": list(class_names)}
        _DENOISERS[key] = prepare_denoiser(load_denoiser(spec, **options), device=device, **dict(runtime))
    return _DENOISERS[key]


def registered_denoisers() -> set[str]:
    """Names of denoisers registered in this process (tests, notebooks): worker processes lack them."""
    return {key for key in _DENOISERS if isinstance(key, str)}


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


class _Fitted(nn.Module):
    """The learner seen from the generator: decoded images are fitted to the learner's input."""

    def __init__(self, learner: nn.Module, shape: tuple[int, int, int]):
        super().__init__()
        self.learner, self.shape = learner, tuple(shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.learner(fit_images(images, self.shape))


def _sample_shard(item: dict[str, Any]) -> tuple[torch.Tensor, int, float]:
    """One shard of a request (a top-level function, so it pickles for Ray): images, retries, seconds."""
    started = time.perf_counter()
    den = item["denoiser"] if item["denoiser"] is not None else _denoiser(item["spec"], item["class_names"],
                                                                          item["device"], item.get("runtime", ()))
    guidance = []
    target = item["image_shape"]
    if item["omega"] != 0.0:
        if item["guide"] is None:
            raise ConfigError("entropy guidance (omega != 0) needs the learner", "pass guide=learner.guide_model()")
        guide = item["guide"].to(den.device)
        if target is not None and tuple(den.image_shape) != tuple(target):
            guide = _Fitted(guide, target)
        guidance.append(EntropyGuidance(guide, item["omega"], **item["guidance"]))
    out = sample(den, item["labels"], seed=item["seed"], guidance=guidance, **item["sampling"])
    images = out.images.float().cpu()
    if target is not None and tuple(images.shape[1:]) != tuple(target):
        images = fit_images(images, target)
    return images, out.retries, time.perf_counter() - started


def _prompts(model: Any, names: tuple[str, ...] | None, class_map: str | None,
             template: str) -> tuple[str, ...] | None:
    """What a text-conditioned folder encodes as prompts: mapped class names in the template."""
    if names is None or not isinstance(model, str) or model == "builtin":
        return names
    cmap = None if class_map is None else read_class_map(class_map)
    try:
        return tuple(prompt_names(names, cmap, template))
    except ConfigError:
        if cmap is not None:
            raise
        return names  # WordNet ids are refused later only if the model reads prompts (SD)


def _label_map(den, names: tuple[str, ...] | None, class_map: str | None, template: str) -> torch.Tensor | None:
    """The model's class id per data class, checked (no silent i → i labelling); None = same ids."""
    if names is None:
        return None
    cmap = None if class_map is None else read_class_map(class_map)
    if model_family(den) == "sd":
        prompt_names(names, cmap, template)  # refuses WordNet-id prompts
        return None
    ids = model_class_ids(names, den.num_classes, cmap)
    return None if ids is None else torch.tensor(ids, dtype=torch.long)


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
        self.spec = model if isinstance(model, str) else None
        self.denoiser = None if isinstance(model, str) else model
        data_names = None if class_names is None else tuple(class_names)
        self.class_names = _prompts(model, data_names, class_map, prompt_template)
        self.device = device
        self.runtime = tuple(sorted({"dtype": dtype or "fp32", "gradient_checkpointing": bool(gradient_checkpointing),
                                     "vae_slicing": bool(vae_slicing)}.items()))
        if self.denoiser is not None and (dtype is not None or gradient_checkpointing or vae_slicing):
            prepare_denoiser(self.denoiser, device=device, **dict(self.runtime))
        elif self.denoiser is not None:
            freeze(self.denoiser)  # a generator is never trained here: no parameter gradients
        den = self.denoiser if self.denoiser is not None else _denoiser(model, self.class_names, device,
                                                                        self.runtime)
        self.sampling = {**sampling_defaults(den), **(sampling or {})}
        self.guidance = dict(guidance or {})
        self.shard_size = int(shard_size)
        self.engine = engine
        self.executor = None  # an executor to use instead of `get_executor(engine)` (e.g. local processes)
        self.image_shape = tuple(image_shape) if image_shape is not None else tuple(den.image_shape)
        self.num_classes = den.num_classes
        self.label_map = _label_map(den, data_names, class_map, prompt_template)
        if self.label_map is not None:
            self.num_classes = len(data_names)

    def __call__(self, request: Request) -> Generation:
        if self.denoiser is not None and self.engine != "local":
            raise ConfigError("a Denoiser object cannot be shipped to Ray workers", "give the model as a path")
        labels = torch.as_tensor(request.labels, dtype=torch.long)
        if self.label_map is not None:  # data class i → the model's class (e.g. an ImageNet-1k id)
            labels = self.label_map[labels]
        local = self.engine == "local"
        items = [{"spec": self.spec, "denoiser": self.denoiser if local else None,
                  "class_names": self.class_names, "device": self.device, "runtime": self.runtime,
                  "image_shape": self.image_shape,
                  "labels": labels[i:i + self.shard_size], "omega": float(request.omega),
                  "guide": request.guide if request.omega != 0.0 else None, "guidance": self.guidance,
                  "sampling": self.sampling, "seed": shard_seed(request.seed, 0, shard)}
                 for shard, i in enumerate(range(0, len(labels), self.shard_size))]
        executor = self.executor or get_executor(self.engine)
        results = executor.map(_sample_shard, items, description="generating")
        images = torch.cat([r[0] for r in results]) if results else torch.empty(0, *self.image_shape)
        # the cost is the shards' own compute seconds, whatever ran them in parallel
        return Generation(images, sum(r[2] for r in results), sum(r[1] for r in results),
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
