"""The learner: a classifier, its AdamW optimiser, the WSD schedule, an EMA copy, and the
random state that picks its minibatches, all saved as safetensors + JSON.

>>> learner = Learner(build_model("cnn", 10, (1, 8, 8), seed=0), TrainSettings(steps=600), seed=0)
>>> learner.fit(load_digits("train"))
>>> learner.evaluate(load_digits("val"))["accuracy"]

Everything random in training (minibatch indices, shifts, Mixup/CutMix) comes from one
`torch.Generator` owned by the learner. Its state is saved with the weights and the optimiser,
so `Learner.load(dir)` continues bit-identically to a run that was never stopped (on CPU).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from safetensors.torch import save_file
from torch import nn

from practicum.config import Settings
from practicum.data.runstore import atomic_write_text, atomic_write_with
from practicum.errors import ConfigError, DataError, ModelError
from practicum.files import read_json_object, read_safetensors
from practicum.learn.augment import mix_batch, random_shift
from practicum.learn.averaging import ema_decay, update_ema
from practicum.learn.models import build_model, model_from_spec
from practicum.learn.schedule import cooldown_start, wsd_factor
from practicum.limits import Count, LearningRate
from practicum.log import progress_bar
from practicum.runtime import resolve_device

FORMAT_VERSION = 1


class TrainSettings(Settings):
    """How a learner trains. Paper values (ViT-B on ImageNet) in brackets where they differ."""

    lr: LearningRate = Field(3e-3, description="peak AdamW learning rate")
    weight_decay: float = Field(0.05, ge=0)
    batch_size: Count = 64
    steps: Count = Field(1000, description="the whole iteration budget; the LR schedule spans it")
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    cooldown_fraction: float = Field(0.2, ge=0, le=1)
    ema_decay: float | None = Field(0.99, gt=0, lt=1, description="None turns EMA off [paper: 0.999]")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="[paper: 0.11]")
    mixup_alpha: float = Field(0.0, ge=0, description="0 = off [paper: 0.5]")
    cutmix_alpha: float = Field(0.0, ge=0, description="0 = off [paper: 1.0]")
    augment: bool = Field(True, description="random translations of up to H/8 pixels")
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; None = no clipping")
    memory_format: Literal["channels_last"] | None = Field(
        None, description="layout of 4-D images and conv weights: 'channels_last' trains and scores a small CNN "
        "on a CPU about a third faster (oneDNN's kernels; other rounding, so not the same bits); None = PyTorch's "
        "default (contiguous)")

    @model_validator(mode="after")
    def _fractions_fit(self) -> "TrainSettings":
        if self.warmup_fraction + self.cooldown_fraction > 1:
            raise ValueError("warmup_fraction + cooldown_fraction must be at most 1")
        return self

    @property
    def cooldown_start(self) -> int:
        return cooldown_start(self.steps, self.cooldown_fraction)


class Learner:
    """A classifier in training. `model` is any nn.Module from images to logits."""

    def __init__(self, model: nn.Module, settings: TrainSettings | None = None, seed: int = 0,
                 device: str | torch.device | None = "cpu"):
        if not isinstance(model, nn.Module):
            raise ConfigError(f"a learner model must be a torch nn.Module, not {type(model).__name__}")
        self.settings = settings or TrainSettings()
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        if self.settings.memory_format == "channels_last":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.ema = None
        if self.settings.ema_decay is not None:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.settings.lr,
                                           weight_decay=self.settings.weight_decay)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.step = 0  # optimiser steps taken

    # ------------------------------------------------------------ training
    @property
    def cooldown_start(self) -> int:
        return self.settings.cooldown_start

    def current_lr(self) -> float:
        s = self.settings
        return s.lr * wsd_factor(self.step, s.steps, s.warmup_fraction, s.cooldown_fraction)

    def sample_batch(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A minibatch drawn uniformly (with replacement) from (images, labels)."""
        if len(labels) == 0:
            raise DataError("cannot train on an empty dataset", "give the learner at least one example")
        index = torch.randint(0, len(labels), (self.settings.batch_size,), generator=self.generator)
        return images[index], labels[index]

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One AdamW step on (x, y) with the scheduled LR, augmentation and EMA; returns the loss."""
        s = self.settings
        x = x.detach().float().cpu()
        if s.augment:
            x = random_shift(x, self.generator)
        num_classes = self._num_classes(x)
        target = F.one_hot(y.long().cpu(), num_classes).float()
        x, target = mix_batch(x, target, self.generator, s.mixup_alpha, s.cutmix_alpha)
        x, target = self._layout(x.to(self.device)), target.to(self.device)

        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr()
        self.model.train()
        logits = self.model(x)
        loss = F.cross_entropy(logits, target, label_smoothing=s.label_smoothing)
        if not torch.isfinite(loss):
            raise ModelError(f"the training loss became {loss.item()} at step {self.step}",
                             "lower the learning rate (lr) or turn on grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        self.step += 1
        self._update_ema()
        return float(loss.detach())

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """x in the learner's memory format (a batch of images is copied once, where it is used)."""
        if self.settings.memory_format == "channels_last" and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def train_on(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Draw one uniform minibatch from (images, labels) and take one step on it."""
        return self.train_step(*self.sample_batch(images, labels))

    def fit(self, dataset, steps: int | None = None, description: str = "training") -> "Learner":
        """Train `steps` more steps (default: the rest of the budget) on uniform minibatches."""
        remaining = self.settings.steps - self.step
        steps = remaining if steps is None else int(steps)
        if steps > remaining:
            raise ConfigError(f"{steps} more steps would pass the budget of {self.settings.steps} "
                              f"(step {self.step} now)", "raise the steps setting before training")
        images, labels = dataset.images, dataset.labels
        with progress_bar(description, steps) as advance:
            for _ in range(steps):
                self.train_on(images, labels)
                advance()
        return self

    def _num_classes(self, x: torch.Tensor) -> int:
        if not hasattr(self, "_k"):
            spec = getattr(self.model, "practicum_spec", None)
            if spec is not None:
                self._k = int(spec["num_classes"])
            else:
                with torch.no_grad():
                    self.model.eval()
                    self._k = int(self.model(x[:1].to(self.device)).shape[-1])
                    self.model.train()
        return self._k

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        decay = ema_decay(self.step, self.settings.ema_decay)
        update_ema(zip(self.ema.parameters(), self.model.parameters()), decay)
        update_ema(zip(self.ema.buffers(), self.model.buffers()), decay)

    # ------------------------------------------------------------ inference
    def _net(self, ema: bool) -> nn.Module:
        return self.ema if (ema and self.ema is not None) else self.model

    @torch.no_grad()
    def logits(self, x: torch.Tensor, ema: bool = True, batch_size: int | None = None) -> torch.Tensor:
        """Logits of x in eval mode. `batch_size` None: 128 rows at a time on a CPU (a 28×28 CNN's
        activations stay in cache: 2.5× faster than 1,024 rows and 250 MB less memory, the same
        bits) and 1,024 on an accelerator."""
        if batch_size is None:
            batch_size = 128 if self.device.type == "cpu" else 1024
        net = self._net(ema)
        was_training = net.training
        net.eval()
        out = [net(self._layout(x[i:i + batch_size].float().to(self.device))).float().cpu()
               for i in range(0, len(x), batch_size)]
        net.train(was_training)
        return torch.cat(out) if out else torch.empty(0)

    def guide_model(self, ema: bool = True) -> nn.Module:
        """A frozen copy of the (EMA) network in eval mode, for entropy guidance.

        Its parameters need no gradient, but it stays differentiable with respect to its input;
        being a copy, guidance never disturbs training (BatchNorm statistics, train mode).
        """
        return copy.deepcopy(self._net(ema)).eval().requires_grad_(False)

    def evaluate(self, dataset, ema: bool = True) -> dict[str, float]:
        """Top-1 accuracy and mean cross-entropy (no smoothing) on a dataset of real images."""
        if len(dataset) == 0:
            raise DataError("cannot evaluate on an empty dataset")
        logits = self.logits(dataset.images, ema=ema)
        labels = dataset.labels.long()
        return {"accuracy": float((logits.argmax(1) == labels).float().mean()),
                "loss": float(F.cross_entropy(logits, labels)), "n": int(len(labels))}

    def entropy(self, x: torch.Tensor, ema: bool = True) -> torch.Tensor:
        """Predictive entropy H(softmax(f(x))) per image, in nats."""
        logp = torch.log_softmax(self.logits(x, ema=ema), dim=1)
        return -(logp.exp() * logp).sum(1)

    # ------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, metadata): everything needed to continue training exactly."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        opt = self.optimizer.state_dict()
        for index, slots in opt["state"].items():
            for name, value in slots.items():
                tensors[f"optim.{index}.{name}"] = torch.as_tensor(value)
        tensors["rng"] = self.generator.get_state()
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        meta = {
            "format": FORMAT_VERSION,
            "settings": self.settings.model_dump(mode="json"),
            "seed": self.seed,
            "step": self.step,
            "model_spec": getattr(self.model, "practicum_spec", None),
            "optim_groups": opt["param_groups"],
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> "Learner":
        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        try:
            self.model.load_state_dict(part("model."))
            if self.ema is not None:
                self.ema.load_state_dict(part("ema."))
        except RuntimeError as exc:
            raise ModelError(f"saved weights do not fit this model: {str(exc).splitlines()[0]}",
                             "load with the same architecture it was saved with") from None
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in part("optim.").items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["optim_groups"]})
        self.generator.set_state(tensors["rng"])
        self.step = int(meta["step"])
        return self

    def copy(self) -> "Learner":
        """An independent learner in exactly the same state (for branch-outs)."""
        twin = Learner(copy.deepcopy(self.model), self.settings.model_copy(), self.seed, self.device)
        return twin.load_state(*self.state())

    def save(self, directory: str | Path) -> Path:
        """`learner.safetensors` (weights, EMA, optimiser, RNG) + `learner.json`, each written atomically."""
        directory = Path(directory)
        tensors, meta = self.state()
        atomic_write_with(directory / "learner.safetensors", lambda tmp: save_file(tensors, tmp))
        atomic_write_text(directory / "learner.json", json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path, model: nn.Module | None = None,
             device: str | torch.device | None = "cpu") -> "Learner":
        """Rebuild a saved learner. A built-in architecture is rebuilt from its spec; a user
        model must be passed (freshly constructed, same architecture)."""
        directory = Path(directory)
        meta = read_learner_meta(directory)
        if model is None:
            spec = meta.get("model_spec")
            if not isinstance(spec, dict) or spec.get("arch") is None:
                raise ModelError(f"{directory} holds a user model", "pass model=<a fresh instance> to Learner.load")
            model = model_from_spec(spec, where=str(directory / "learner.json"))
        try:
            settings = TrainSettings.build(meta["settings"])
        except ConfigError as exc:
            raise ModelError(f"{directory / 'learner.json'}: {exc.problem}", LEARNER_FIX) from None
        learner = cls(model, settings, seed=meta["seed"], device=device)
        tensors = read_safetensors(directory / "learner.safetensors", ModelError, LEARNER_FIX)
        floating = {name: t.is_floating_point() for name, t in model.state_dict().items()}
        for key, tensor in tensors.items():  # load_state_dict would cast integers into float weights
            part, _, name = key.partition(".")
            if part in ("model", "ema") and name in floating and tensor.is_floating_point() != floating[name]:
                raise ModelError(f"{directory / 'learner.safetensors'}: tensor {key!r} has dtype {tensor.dtype}",
                                 LEARNER_FIX)
        try:
            return learner.load_state(tensors, meta)
        except ModelError as exc:
            raise ModelError(f"{directory / 'learner.safetensors'}: {exc.problem}", exc.fix) from None
        except (KeyError, ValueError, IndexError, TypeError, RuntimeError) as exc:
            raise ModelError(f"{directory / 'learner.safetensors'} does not hold this learner's state "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})",
                             LEARNER_FIX) from None


LEARNER_FIX = "give a folder written by Learner.save (learner.json + learner.safetensors), or save it again"


def read_learner_meta(directory: str | Path) -> dict[str, Any]:
    """`learner.json` of a saved learner, its fields and the model spec checked (no weights are read)."""
    directory = Path(directory)
    if not (directory / "learner.json").is_file() or not (directory / "learner.safetensors").is_file():
        hint = " (give the folder, not the file)" if directory.is_file() else ""
        raise ModelError(f"{directory} holds no saved learner{hint}", LEARNER_FIX)
    path = directory / "learner.json"
    meta = read_json_object(path, ModelError, LEARNER_FIX, {"format": int, "settings": dict, "seed": int,
                                                            "step": int, "optim_groups": list})
    if meta["format"] != FORMAT_VERSION:
        raise ModelError(f"{path} has learner format {meta['format']}, expected {FORMAT_VERSION}", LEARNER_FIX)
    if meta["step"] < 0:
        raise ModelError(f"{path}: step {meta['step']} is negative", LEARNER_FIX)
    spec = meta.get("model_spec")
    if spec is not None:
        # arch None: a user model (a factory named only on the command line, never in this file)
        ok = (isinstance(spec, dict) and (spec.get("arch") is None or isinstance(spec.get("arch"), str))
              and isinstance(spec.get("num_classes"), int) and not isinstance(spec.get("num_classes"), bool)
              and 1 <= spec["num_classes"] <= 100_000 and isinstance(spec.get("image_shape"), list)
              and len(spec["image_shape"]) == 3
              and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 4096
                      for d in spec["image_shape"])
              and (spec.get("width") is None or (isinstance(spec["width"], int) and 1 <= spec["width"] <= 65536)))
        if not ok:
            raise ModelError(f"{path}: model_spec must give arch (or null), num_classes (1..100000), image_shape "
                             "[channels, height, width] and an optional width", LEARNER_FIX)
    return meta


def train_classifier(train, *, steps: int = 1000, arch: str = "cnn", seed: int = 0, width: int | None = None,
                     model: nn.Module | None = None, device: str | torch.device | None = "cpu",
                     **settings: Any) -> Learner:
    """Build a learner for `train` (a Dataset) and train it for `steps` steps."""
    if model is None:
        model = build_model(arch, train.num_classes, train.image_shape, width=width, seed=seed)
    learner = Learner(model, TrainSettings.build(settings, steps=steps), seed=seed, device=device)
    return learner.fit(train)
