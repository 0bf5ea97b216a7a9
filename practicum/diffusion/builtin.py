"""The built-in generators and the folders `practicum diffusion train` writes.

Two small class-conditional pixel UNets ship with the package, each trained by
`practicum diffusion train` on its data's train split only and committed with a JSON sidecar
(config, split, seed, measured quality, and the exact command that reproduces it):

- `builtin:fashion` — Fashion-MNIST, 1×28×28, `practicum/assets/fashion_unet.*` (the default);
- `builtin:digits`  — scikit-learn's 8×8 digits, `practicum/assets/digits_unet.*`.

A plain `builtin` means the model that matches the data (`builtin_for(data)`); the library call
`load_denoiser("builtin")` keeps meaning the digits model. The class after the last real class
is the null class (trained with label dropout) for classifier-free guidance.

Any folder written by `practicum diffusion train` holds `denoiser.safetensors` + `denoiser.json`
in the same format, and `load_trained(folder)` opens it, so a user's own generator is accepted
wherever `--model` is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from practicum.diffusion.denoisers import PixelUNetDenoiser
from practicum.diffusion.model_defaults import default_sampling
from practicum.errors import ModelError
from practicum.files import layout_of, read_json_object, read_safetensors

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUILTIN_WEIGHTS = ASSETS / "digits_unet.safetensors"
BUILTIN_SIDECAR = ASSETS / "digits_unet.json"
FASHION_WEIGHTS = ASSETS / "fashion_unet.safetensors"
FASHION_SIDECAR = ASSETS / "fashion_unet.json"
BUILTIN_FILES = {"digits": (BUILTIN_WEIGHTS, BUILTIN_SIDECAR), "fashion": (FASHION_WEIGHTS, FASHION_SIDECAR)}

# What `practicum diffusion train` writes into its run folder.
TRAINED_WEIGHTS = "denoiser.safetensors"
TRAINED_SIDECAR = "denoiser.json"


def _unet_config(sample_size: int, channels: int, widths: list[int]) -> dict[str, Any]:
    """The built-in UNet's shape: one down-sampling with self-attention at the lower resolution, and
    11 class embeddings (10 classes and the null class of classifier-free guidance)."""
    return {
        "sample_size": sample_size,
        "in_channels": channels,
        "out_channels": channels,
        "layers_per_block": 1,
        "block_out_channels": widths,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
        "norm_num_groups": 8,
        "attention_head_dim": 32,
        "num_class_embeds": 11,
    }


# Works directly at 8×8 (8 → 4, attention at 4×4); ~0.7 M parameters, small enough to train in
# minutes on a shared 2-core CPU.
BUILTIN_UNET_CONFIG = _unet_config(8, 1, [32, 64])

# Fashion-MNIST: the 28×28 image is folded 2×2 into 4×14×14 (pixel_unshuffle) before the UNet, so
# every convolution runs on a quarter of the positions (14 → 7, attention at 7×7). 1.6 M parameters,
# 0.55–1.05 s per batch of 64 on one core (idle to loaded), so 6,000 steps (7.7 epochs of the
# train split) take one to two hours with the other core left free.
FASHION_FOLD = 2
FASHION_UNET_CONFIG = _unet_config(14, FASHION_FOLD ** 2, [48, 96])

BUILTIN_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": True,
    "timestep_spacing": "trailing",
}

# Sampling defaults for the built-in models (chosen by the quality benchmark, see docs/benchmarks.md).
BUILTIN_SAMPLING: dict[str, Any] = {"steps": 50, "cfg_scale": 2.0, "scheduler": "ddim", "eta": 0.0}

# Training recipes per built-in data set: the UNet, the fold, and the trainer's settings.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "digits": {"unet": BUILTIN_UNET_CONFIG, "fold": 1},
    "fashion": {"unet": FASHION_UNET_CONFIG, "fold": FASHION_FOLD, "steps": 6000, "lr": 1e-3, "warmup": 200,
                "ema_decay": 0.999, "checkpoint_every": 250},
}


def builtin_name(data: str) -> str | None:
    """The built-in data set a data spec names (None for the user's own data)."""
    if data in ("fashion", "fashion-mnist", "builtin:fashion"):
        return "fashion"
    if data in ("digits", "builtin", "builtin:digits"):
        return "digits"
    return None


def builtin_for(model: str, data: str) -> str:
    """Resolve `--model builtin` against `--data`: the built-in generator of that data set.

    Other models are returned unchanged; a user's own data has no built-in generator.
    """
    if model != "builtin":
        return model
    name = builtin_name(data)
    if name is None:
        raise ModelError(f"there is no built-in generator for the data {data!r}",
                         f"train one with `practicum diffusion train --data {data} --out DIR` and pass --model DIR")
    return f"builtin:{name}"


def builtin_denoiser(unet_config: dict[str, Any] | None = None, scheduler_config: dict[str, Any] | None = None,
                     *, num_classes: int = 10, class_names: list[str] | None = None,
                     image_shape: tuple[int, int, int] | None = None, fold: int = 1) -> PixelUNetDenoiser:
    """A randomly initialised pixel UNet of the built-in kind (the trainer starts from this)."""
    from diffusers import UNet2DModel  # lazy: diffusers import costs ~3.5x torch's

    unet = UNet2DModel(**(unet_config or BUILTIN_UNET_CONFIG))
    names = class_names if class_names is not None else [str(c) for c in range(num_classes)]
    if image_shape is None:
        c, s = unet.config.in_channels // fold ** 2, unet.config.sample_size * fold
        image_shape = (c, s, s)
    return PixelUNetDenoiser(unet, scheduler_config or BUILTIN_SCHEDULER_CONFIG, num_classes=num_classes,
                             null_class=num_classes, class_names=names, image_shape=image_shape, fold=fold)


MODEL_FIX = "reinstall practicum or retrain the model with `practicum diffusion train`"


def read_sidecar(path: Path = BUILTIN_SIDECAR) -> dict[str, Any]:
    """A model's `denoiser.json`, its fields' types and sizes checked."""
    if not path.exists():
        raise ModelError(f"the model's sidecar {path} is missing", MODEL_FIX)
    meta = read_json_object(path, ModelError, MODEL_FIX)
    kinds = {"class_names": list, "image_shape": list, "unet_config": dict, "scheduler_config": dict,
             "sampling": dict, "fold": int}
    for key, kind in kinds.items():
        if meta.get(key) is not None and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            raise ModelError(f"{path}: {key!r} must be a {kind.__name__}, not {type(meta[key]).__name__}", MODEL_FIX)
    names, shape = meta.get("class_names"), meta.get("image_shape")
    if names is not None and not (1 <= len(names) <= 100_000 and all(isinstance(c, str) for c in names)):
        raise ModelError(f"{path}: class_names must be a list of 1 to 100000 strings", MODEL_FIX)
    if shape is not None and not (len(shape) == 3 and all(isinstance(d, int) and not isinstance(d, bool)
                                                          and 1 <= d <= 4096 for d in shape)):
        raise ModelError(f"{path}: image_shape must be [channels, height, width], each 1..4096", MODEL_FIX)
    if not 1 <= int(meta.get("fold", 1)) <= 64:
        raise ModelError(f"{path}: fold must lie in 1..64", MODEL_FIX)
    # sizes a real model has: a corrupt width, step or timestep count would allocate or loop without end
    for key, largest in (("unet_config", 65536), ("scheduler_config", 10 ** 6), ("sampling", 10 ** 4)):
        if any(not -1 <= v <= largest for v in _numbers(meta.get(key) or {})):
            raise ModelError(f"{path}: {key} holds a number outside -1..{largest}", MODEL_FIX)
    return meta


def _numbers(value: Any) -> list[float]:
    """Every number in a nested JSON value (a UNet config's sizes, widths and counts)."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def load_builtin(weights: Path = BUILTIN_WEIGHTS, sidecar: Path = BUILTIN_SIDECAR) -> PixelUNetDenoiser:
    """A model written by `practicum diffusion train` (by default the committed digits model), in eval mode."""
    if not weights.exists():
        raise ModelError(f"the model's weights {weights} are missing", MODEL_FIX)
    meta = read_sidecar(sidecar)
    classes = meta.get("class_names") or [str(c) for c in range(10)]
    image_shape = meta.get("image_shape")
    try:
        den = builtin_denoiser(meta.get("unet_config"), meta.get("scheduler_config"), num_classes=len(classes),
                               class_names=list(classes), image_shape=tuple(image_shape) if image_shape else None,
                               fold=int(meta.get("fold", 1)))
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError,
            NotImplementedError) as exc:
        raise ModelError(f"{sidecar} describes no buildable model: {str(exc).splitlines()[0][:200]}",
                         MODEL_FIX) from None
    embeds = den.unet.config.get("num_class_embeds")
    if embeds is not None and embeds != len(classes) + 1:  # one embedding per class plus the null class
        raise ModelError(f"{sidecar} lists {len(classes)} class_names but {embeds} class embeddings "
                         f"(expected {len(classes) + 1})", MODEL_FIX)
    state = read_safetensors(weights, ModelError, MODEL_FIX, expect=layout_of(den.unet))
    den.unet.load_state_dict({k: v.float() for k, v in state.items()})
    den.sampling_defaults = dict(BUILTIN_SAMPLING, **meta.get("sampling", {}))
    den.requires_grad_(False)  # a generator is never trained by the code that samples from it
    return den.eval()


def load_named_builtin(name: str) -> PixelUNetDenoiser:
    """`digits` or `fashion`: the committed built-in model of that data set."""
    if name not in BUILTIN_FILES:
        raise ModelError(f"unknown built-in model {name!r}", f"use one of {', '.join(sorted(BUILTIN_FILES))}")
    return load_builtin(*BUILTIN_FILES[name])


def is_trained_folder(folder: Path) -> bool:
    return (folder / TRAINED_WEIGHTS).is_file() and (folder / TRAINED_SIDECAR).is_file()


def recorded_data(model: str) -> str | None:
    """The data a `practicum diffusion train` folder records it was trained on (None for other models)."""
    folder = Path(model)
    if model.startswith("builtin") or not is_trained_folder(folder):
        return None
    return read_sidecar(folder / TRAINED_SIDECAR).get("data")


def load_trained(folder: Path) -> PixelUNetDenoiser:
    """The model in a folder written by `practicum diffusion train`."""
    return load_builtin(folder / TRAINED_WEIGHTS, folder / TRAINED_SIDECAR)


def sampling_defaults(denoiser) -> dict[str, Any]:
    """The sampling settings a model recommends (the built-in's are tuned; SD and DiT: their
    papers' values, see practicum.diffusion.model_defaults)."""
    return default_sampling(denoiser)
