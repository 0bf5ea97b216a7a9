"""Training a small class-conditional pixel diffusion model (the built-in generators, or your own).

The loop, top to bottom: draw a batch from the **train split** (never val/test), drop labels
to the null class with probability `label_dropout` (for classifier-free guidance), draw t and
noise, regress ε with MSE, AdamW with linear warm-up then cosine decay, keep an EMA copy.
All randomness comes from one generator seeded by `seed`; a checkpoint (weights, EMA, optimiser
moments, generator state) is written every `checkpoint_every` steps as safetensors, so
`--resume` continues where it stopped and ends in the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel
from pydantic import Field, field_validator, model_validator
from safetensors.torch import load_file, save_file

from practicum.config import Settings
from practicum.data import RunDir, atomic_write_json, atomic_write_with, load_source
from practicum.diffusion.builtin import (BUILTIN_SAMPLING, BUILTIN_SCHEDULER_CONFIG, BUILTIN_UNET_CONFIG, TRAIN_PRESETS,
                                         TRAINED_SIDECAR, TRAINED_WEIGHTS, builtin_denoiser, builtin_name)
from practicum.errors import ConfigError, DataError, RunError, TrainingError
from practicum.learn.averaging import ema_decay, update_ema
from practicum.learn.noising import add_noise
from practicum.limits import Count, LearningRate, SeedValue, check_memory
from practicum.log import logger, progress_bar
from practicum.validate import data_input

WEIGHTS_NAME = TRAINED_WEIGHTS
SIDECAR_NAME = TRAINED_SIDECAR


class DiffusionTrainSettings(Settings):
    data: str = "fashion"
    steps: Count = 3000
    batch_size: Count = 64
    lr: LearningRate = 1e-3
    warmup: int = Field(100, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    label_dropout: float = Field(0.1, ge=0, lt=1)
    ema_decay: float = Field(0.995, ge=0, lt=1)
    seed: SeedValue = 0
    checkpoint_every: int = Field(500, ge=1)
    unet: dict[str, Any] = Field(default_factory=lambda: dict(BUILTIN_UNET_CONFIG))
    fold: int = Field(1, ge=1, description="pixel_unshuffle factor: the UNet sees C·f² × H/f × W/f")
    scheduler: dict[str, Any] = Field(default_factory=lambda: dict(BUILTIN_SCHEDULER_CONFIG))
    sampling: dict[str, Any] = Field(default_factory=lambda: dict(BUILTIN_SAMPLING))

    @field_validator("unet")
    @classmethod
    def _known_unet_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A misspelt UNet key would otherwise be a diffusers TypeError deep inside the build."""
        known = set(inspect.signature(UNet2DModel.__init__).parameters) - {"self"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown UNet2DModel key {unknown[0]!r} (known: {', '.join(sorted(known)[:8])}, ...)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _recipe_of_the_data(cls, values: Any) -> Any:
        """A built-in data set brings its own recipe (architecture, fold, steps...) for unset keys."""
        if not isinstance(values, dict):
            return values
        preset = TRAIN_PRESETS.get(builtin_name(str(values.get("data", "fashion"))) or "digits", {})
        merged = {**{k: (dict(v) if isinstance(v, dict) else v) for k, v in preset.items()}, **values}
        for key, value in preset.items():
            given = values.get(key)
            # `unet: {dropout: 0.1}` adjusts the preset; a UNet with its own block_out_channels is a new one
            if isinstance(value, dict) and isinstance(given, dict) and not (key == "unet"
                                                                            and "block_out_channels" in given):
                merged[key] = {**value, **given}
        return merged


def learning_rate(step: int, settings: DiffusionTrainSettings) -> float:
    """Linear warm-up to `lr`, then cosine decay to 0 at `steps`."""
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _unet_config_for(settings: DiffusionTrainSettings, image_shape, num_classes: int) -> dict[str, Any]:
    config = dict(settings.unet)
    c, h, w = image_shape
    f = settings.fold
    if h != w:
        raise DataError(f"the built-in trainer needs square images, got {h}x{w}", "resize the data")
    if h % f:
        raise DataError(f"{h}x{w} images cannot be folded by {f}", "set fold to a divisor of the image size")
    down = 2 ** (len(config.get("block_out_channels", [0, 0])) - 1)
    if (h // f) % down:
        raise DataError(f"the UNet halves its input {len(config.get('block_out_channels', [0, 0])) - 1} times, "
                        f"which {h // f}x{h // f} (after folding by {f}) does not allow",
                        "use fewer UNet blocks, another fold, or resize the data")
    config.update(sample_size=h // f, in_channels=c * f * f, out_channels=c * f * f, num_class_embeds=num_classes + 1)
    return config


def _training_bytes_per_example(unet_config: dict[str, Any], image_shape) -> float:
    """A rough lower bound on one example's activations in a UNet training step: each level keeps
    about a dozen float32 maps of its width (forward and backward), at half the previous resolution."""
    _, h, w = image_shape
    widths = unet_config.get("block_out_channels") or [64]
    return sum(12 * 4 * c * h * w / 4 ** level for level, c in enumerate(widths))


def train_diffusion(settings: DiffusionTrainSettings, out: str | Path, *, resume: bool = False,
                    overwrite: bool = False, command: str | None = None) -> Path:
    """Train, write `out/denoiser.safetensors` (EMA weights) + `out/denoiser.json`; return the weights path.

    `practicum generate --model OUT` (and every other `--model`) opens that folder."""
    data = load_source(settings.data, "train")
    if len(data) == 0:
        raise DataError(f"{settings.data} has no training examples")
    if data.num_classes < 2:
        raise DataError(f"{settings.data} has {data.num_classes} class; a class-conditional model needs 2 or more",
                        "give data with at least two classes")
    unet_config = _unet_config_for(settings, data.image_shape, data.num_classes)
    check_memory(settings.batch_size * _training_bytes_per_example(unet_config, data.image_shape),
                 f"a training batch of {settings.batch_size}", "lower --batch-size")
    torch.manual_seed(settings.seed)  # the initial weights
    try:
        den = builtin_denoiser(unet_config, settings.scheduler, num_classes=data.num_classes,
                               class_names=list(data.class_names), image_shape=data.image_shape, fold=settings.fold)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot build the UNet from the `unet:` settings: {str(exc).splitlines()[0][:300]}",
                          "fix the unet settings (they are UNet2DModel arguments)") from None
    unet = den.unet.train()
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    alphas = den.alphas_cumprod.float()
    images, labels = data.images, data.labels
    null = data.num_classes

    with RunDir.create(out, settings.to_yaml(), seed=settings.seed, command=command,
                       resume=resume, overwrite=overwrite, inputs={"--data": data_input(settings.data)}) as run:
        latest = run.latest_checkpoint() if resume else None
        start = 0
        losses: list[float] = []
        if latest is not None:
            state = load_file(latest / "train_state.safetensors")
            start = _restore(state, unet, ema, opt, params, gen)
            losses = [float(v) for v in state.get("pending_losses", torch.zeros(0)).tolist()]
            logger.info("resumed diffusion training at step %d", start)
        elif resume:
            logger.info("no checkpoint in %s; training from the start", run.path)
        # rows logged after the checkpoint are logged again by the resumed steps: drop them
        run.trim_metrics(lambda row: row.get("event") != "train" or row.get("step", 0) <= start)
        with progress_bar("training the diffusion model", settings.steps) as advance:
            advance(start)
            for step in range(start, settings.steps):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(step, settings)
                idx = torch.randint(0, len(images), (settings.batch_size,), generator=gen)
                x0, y = images[idx], labels[idx].clone()
                drop = torch.rand(settings.batch_size, generator=gen) < settings.label_dropout
                y[drop] = null
                t = torch.randint(0, den.num_train_timesteps, (settings.batch_size,), generator=gen)
                noise = torch.randn(x0.shape, generator=gen)
                ab = alphas[t].view(-1, 1, 1, 1)
                x_t = add_noise(x0, noise, ab)
                loss = torch.nn.functional.mse_loss(den.predict(x_t, t, y)[0], noise)
                if not torch.isfinite(loss):  # stop before a nan reaches the weights or a checkpoint
                    _diverged(f"the loss became {loss.item()} at step {step + 1}", settings, step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                update_ema(((ema[k], v) for k, v in unet.state_dict().items()), ema_decay(step, settings.ema_decay),
                           blend="mul_add")
                losses.append(loss.item())
                advance()
                done = step + 1
                if done % 100 == 0 or done == settings.steps:
                    run.log_metric({"event": "train", "step": done, "loss": sum(losses) / len(losses),
                                    "lr": learning_rate(step, settings)})
                    losses = []
                if done % settings.checkpoint_every == 0 or done == settings.steps:
                    if not all(torch.isfinite(v).all() for v in ema.values() if v.dtype.is_floating_point):
                        _diverged(f"the weights became non-finite by step {done}", settings, step)
                    state = _snapshot(unet, ema, opt, params, gen, done)
                    state["pending_losses"] = torch.tensor(losses, dtype=torch.float64)
                    run.save_checkpoint(f"step-{done:08d}", lambda folder: atomic_write_with(
                        folder / "train_state.safetensors", lambda tmp: save_file(state, tmp)))
        weights = run.path / WEIGHTS_NAME
        ema_state = {k: v.detach().float().contiguous() for k, v in ema.items()}
        atomic_write_with(weights, lambda tmp: save_file(ema_state, tmp))
        sidecar = {
            "model": "practicum built-in class-conditional pixel diffusion model",
            "unet_config": unet_config,
            "fold": settings.fold,
            "image_shape": list(data.image_shape),
            "scheduler_config": dict(settings.scheduler),
            "sampling": dict(settings.sampling),
            "data": settings.data,
            "split": "train",
            "train_examples": len(data),
            "class_names": list(data.class_names),
            "null_class": null,
            "seed": settings.seed,
            "settings": settings.model_dump(mode="json"),
            "weights": "EMA",
            "parameters": int(sum(v.numel() for v in ema_state.values())),
            "command": command,
            "final_loss": run.metrics("train")[-1]["loss"] if run.metrics("train") else None,
            "torch_threads": torch.get_num_threads(),
        }
        atomic_write_json(run.path / SIDECAR_NAME, sidecar)
        run.finish(steps=settings.steps)
    return weights


def _diverged(problem: str, settings: DiffusionTrainSettings, step: int) -> None:
    raise TrainingError(f"{problem} (learning rate {learning_rate(step, settings):.3g}); nothing of this "
                        "step was saved", "lower --lr or raise warmup, then rerun with --overwrite")


def _snapshot(unet, ema, opt, params, gen, step: int) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v.detach().contiguous().clone() for k, v in unet.state_dict().items()}
    state.update({f"ema.{k}": v.contiguous().clone() for k, v in ema.items()})
    for i, p in enumerate(params):
        moments = opt.state.get(p, {})
        for name in ("exp_avg", "exp_avg_sq"):
            if name in moments:
                state[f"opt.{i}.{name}"] = moments[name].contiguous().clone()
        if "step" in moments:
            state[f"opt.{i}.step"] = torch.as_tensor(moments["step"], dtype=torch.float32).reshape(1)
    state["rng"] = gen.get_state()
    state["step"] = torch.tensor([step], dtype=torch.int64)
    return state


def _restore(state, unet, ema, opt, params, gen) -> int:
    try:
        unet.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        for k in ema:
            ema[k].copy_(state[f"ema.{k}"])
        for i, p in enumerate(params):
            if f"opt.{i}.exp_avg" in state:
                opt.state[p] = {"exp_avg": state[f"opt.{i}.exp_avg"].clone(),
                                "exp_avg_sq": state[f"opt.{i}.exp_avg_sq"].clone(),
                                "step": torch.tensor(float(state[f"opt.{i}.step"][0]))}
        gen.set_state(state["rng"])
        return int(state["step"][0])
    except (KeyError, RuntimeError) as exc:
        raise RunError(f"the training checkpoint does not match these settings ({str(exc).splitlines()[0]})",
                       "rerun with --overwrite") from None
