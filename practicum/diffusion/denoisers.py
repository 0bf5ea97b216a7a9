"""Denoiser adapters: every diffusion network behind one signature.

`eps = denoiser(x_t, t, cond)` predicts the noise in x_t at timestep t under condition `cond`;
`decode(z)` maps a clean sample to images in [-1, 1] and `encode(images)` maps images back to
the space the sampler works in (identity for pixel models; the VAE posterior mean times the
scaling factor for latent models, which is where MGD³ looks for modes).

A condition is always a tensor with the batch first: class ids for class-conditional models
(the null class for classifier-free guidance is one extra id) or prompt embeddings
(B, tokens, dim) for text-conditioned ones. So conditions concatenate and index like tensors.

Adapters:
- `PixelUNetDenoiser`   diffusers `UNet2DModel`, class-conditional (class embedding) or not;
- `StableDiffusionDenoiser`  `UNet2DConditionModel` + `AutoencoderKL`, prompts from class names;
- `DiTDenoiser`         `DiTTransformer2DModel` + `AutoencoderKL`, learned-variance channels;
- the built-in digits model (`practicum.diffusion.builtin`) is a `PixelUNetDenoiser`.

`load_folder` opens a local diffusers folder (never the network) and `build_denoiser` a dict
config that builds a randomly initialised model (tests, experiments); `practicum.diffusion.loading`
picks between them and the built-in models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from practicum.errors import ConfigError, ModelError

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class Denoiser(nn.Module):
    """Base adapter. Subclasses set the attributes below and implement `_model_output`.

    Attributes
    ----------
    sample_shape : (C, H, W) of x_t.
    image_shape : (C, H, W) of decoded images.
    num_classes : number of classes (None for an unconditional model).
    class_names : names of the classes (prompts for text models).
    scheduler_config : the diffusers scheduler config the model was trained with.
    alphas_cumprod : float64 tensor (num_train_timesteps,), ᾱ_t of that schedule.
    learned_variance : the network also outputs the variance interpolation v (DiT/ADM).
    cfg_channels : classifier-free guidance mixes only the first `cfg_channels` channels of ε
        (None: all; original DiT mixes 3 of 4).
    clip_sample : clip x̂0 to [-1, 1] inside the sampler step (sensible for pixel models only).
    supports_cfg : a null condition exists.
    """

    sample_shape: tuple[int, int, int]
    image_shape: tuple[int, int, int]
    num_classes: int | None = None
    class_names: tuple[str, ...] = ()
    learned_variance: bool = False
    cfg_channels: int | None = None
    clip_sample: bool = False
    supports_cfg: bool = True
    prediction_type: str = "epsilon"

    def __init__(self, scheduler_config: dict[str, Any] | None = None):
        super().__init__()
        from diffusers import DDPMScheduler  # lazy: diffusers import costs ~3.5x torch's

        config = dict(scheduler_config or {})
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        base = DDPMScheduler.from_config(config)
        # keep keys only DDIM knows (set_alpha_to_one, steps_offset) for the sampler's DDIMScheduler
        self.scheduler_config = {**config, **{k: v for k, v in base.config.items() if not k.startswith("_")}}
        self.prediction_type = self.scheduler_config.get("prediction_type", "epsilon")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ModelError(f"prediction_type {self.prediction_type!r} is not supported",
                             f"use a model trained with one of {', '.join(PREDICTION_TYPES)}")
        # a plain float64 CPU tensor, not a buffer: module.to(bf16) must not round ᾱ (see precision.py)
        self.alphas_cumprod = base.alphas_cumprod.to(torch.float64)

    # -- the contract
    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler_config["num_train_timesteps"])

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.float32

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None) -> torch.Tensor:
        """ε for x_t at timestep t (the variance channels, if any, are dropped)."""
        return self.predict(x_t, t, cond)[0]

    def predict(self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ε, v): the noise prediction and, for learned-variance models, the raw variance channels."""
        t = self._timesteps(t, len(x_t))
        # the network runs in its own dtype; the sampler's arithmetic stays in x_t's (float32)
        out = self._model_output(x_t.to(self.dtype), t, cond).to(x_t.dtype)
        v = None
        channels = self.sample_shape[0]
        if self.learned_variance:
            out, v = out[:, :channels], out[:, channels:]
        return self._to_eps(out, x_t, t), v

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Clean sample → images in [-1, 1] (differentiable)."""
        return z

    def decode_unclamped(self, z: torch.Tensor) -> torch.Tensor:
        """Like `decode` but without the final clamp to [-1, 1] (for guidance that rescales itself)."""
        return self.decode(z)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] → the sampler's space (inverse of decode for pixel models)."""
        return images

    def cond_for_labels(self, labels: torch.Tensor | Sequence[int]) -> torch.Tensor | None:
        """The condition for class ids."""
        labels = torch.as_tensor(labels, dtype=torch.long)
        if self.num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ConfigError(f"class ids must lie in 0..{self.num_classes - 1}, got {labels.min()}..{labels.max()}",
                              "pass labels of the model's classes")
        return labels.to(self.device)

    def null_cond(self, batch: int) -> torch.Tensor | None:
        """The unconditional ("empty") condition for classifier-free guidance."""
        raise ModelError(f"{type(self).__name__} has no null condition", "sample with cfg_scale=1")

    # -- helpers for subclasses
    def _model_output(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        raise ModelError(f"{type(self).__name__} does not define a network")

    def _timesteps(self, t: torch.Tensor | int, batch: int) -> torch.Tensor:
        t = torch.as_tensor(t, device=self.device)
        if t.ndim == 0:
            t = t.expand(batch)
        return t.long()

    def _to_eps(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "epsilon":
            return out
        ab = self.alphas_cumprod[t.cpu()].to(x_t.device, torch.float32).view(-1, *[1] * (x_t.ndim - 1))
        if self.prediction_type == "v_prediction":  # v = √ᾱ ε − √(1−ᾱ) x0  ⇒  ε = √ᾱ v + √(1−ᾱ) x_t
            return ab.sqrt() * out + (1 - ab).sqrt() * x_t
        return (x_t - ab.sqrt() * out) / (1 - ab).sqrt()  # "sample": the network predicts x0

    def describe(self) -> dict[str, Any]:
        return {"adapter": type(self).__name__, "sample_shape": list(self.sample_shape),
                "image_shape": list(self.image_shape), "num_classes": self.num_classes,
                "prediction_type": self.prediction_type, "learned_variance": self.learned_variance}


# ---------------------------------------------------------------- pixel UNet2DModel

class PixelUNetDenoiser(Denoiser):
    """A pixel-space `UNet2DModel`.

    Class-conditional when the UNet has `num_class_embeds`: ids 0..num_classes-1 are classes and
    `null_class` (default: the last embedding, num_class_embeds - 1, when the model was trained
    with label dropout) is the null condition for CFG. Without a class embedding the model is
    unconditional and `cond` is ignored.

    `image_shape` lets the network work at a padded size: decode crops the centre back to the
    data's own shape (the built-in 8×8 digits run at 8×8, so no crop is needed there).

    `fold` > 1 runs the network on images folded by `pixel_unshuffle` (C×H×W → C·f²×H/f×W/f)
    and unfolds its output, so the sampler, the guidance and the data all stay in pixel space
    while the convolutions see f² fewer positions (the built-in Fashion model uses f = 2).
    """

    clip_sample = True

    def __init__(self, unet, scheduler_config: dict[str, Any] | None = None, *, num_classes: int | None = None,
                 null_class: int | None = None, class_names: Sequence[str] | None = None,
                 image_shape: Sequence[int] | None = None, fold: int = 1):
        super().__init__(scheduler_config)
        self.unet = unet
        cfg = unet.config
        size = cfg.sample_size if isinstance(cfg.sample_size, (list, tuple)) else (cfg.sample_size, cfg.sample_size)
        self.fold = int(fold)
        if self.fold < 1 or int(cfg.in_channels) % self.fold ** 2:
            raise ModelError(f"cannot fold {cfg.in_channels} UNet channels by {self.fold}",
                             "the UNet's in_channels must be the image channels times fold²")
        self.sample_shape = (int(cfg.in_channels) // self.fold ** 2, int(size[0]) * self.fold,
                             int(size[1]) * self.fold)
        self.image_shape = tuple(int(s) for s in image_shape) if image_shape is not None else self.sample_shape
        embeds = getattr(cfg, "num_class_embeds", None)
        if embeds is None:
            self.num_classes = None
            self.supports_cfg = False
            self.null_class = None
        else:
            self.null_class = int(embeds - 1 if null_class is None else null_class)
            self.num_classes = int(num_classes if num_classes is not None else embeds - 1)
            if not 0 <= self.null_class < embeds or self.num_classes > embeds:
                raise ModelError(f"UNet has {embeds} class embeddings; cannot use {self.num_classes} classes "
                                 f"with null class {self.null_class}", "set num_classes/null_class to fit")
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(c) for c in range(self.num_classes or 0))
        self.clip_sample = bool(self.scheduler_config.get("clip_sample", True))

    def _model_output(self, x_t, t, cond):
        labels = None if self.num_classes is None else cond
        if self.fold == 1:
            return self.unet(x_t, t, class_labels=labels).sample
        out = self.unet(F.pixel_unshuffle(x_t, self.fold), t, class_labels=labels).sample
        return F.pixel_shuffle(out, self.fold)

    def cond_for_labels(self, labels):
        labels = super().cond_for_labels(labels)
        return labels if self.num_classes is not None else torch.zeros(len(labels), dtype=torch.long,
                                                                         device=self.device)

    def null_cond(self, batch: int) -> torch.Tensor:
        if self.null_class is None:
            return super().null_cond(batch)
        return torch.full((batch,), self.null_class, dtype=torch.long, device=self.device)

    def decode(self, z):
        return _center_crop(z, self.image_shape).clamp(-1, 1) if self.clip_sample else _center_crop(z, self.image_shape)

    def decode_unclamped(self, z):
        return _center_crop(z, self.image_shape)

    def encode(self, images):
        return _center_pad(images, self.sample_shape)


def _center_crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    h, w = shape[-2:]
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top:top + h, left:left + w]


def _center_pad(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    h, w = shape[-2:]
    dh, dw = h - x.shape[-2], w - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=-1.0)


# ---------------------------------------------------------------- latent models (shared VAE part)

class _LatentDenoiser(Denoiser):
    """Shared VAE handling: decode(z) = vae.decode(z / s), encode(x) = s · vae.encode(x).mean."""

    def __init__(self, vae, scheduler_config, latent_shape: Sequence[int]):
        super().__init__(scheduler_config)
        self.vae = vae
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 0.18215))
        self.sample_shape = tuple(int(s) for s in latent_shape)
        down = 2 ** (len(vae.config.block_out_channels) - 1)
        self.image_shape = (int(vae.config.in_channels), self.sample_shape[1] * down, self.sample_shape[2] * down)

    def decode(self, z):
        images = self.vae.decode((z / self.scaling_factor).to(self.vae.dtype)).sample
        return images.to(torch.promote_types(z.dtype, torch.float32)).clamp(-1, 1)

    def decode_unclamped(self, z):
        return self.vae.decode(z / self.scaling_factor).sample

    def encode(self, images, *, posterior: str = "mean", generator: torch.Generator | None = None):
        """s · the VAE posterior mean (DiT/MGD³ default), or a posterior sample (`posterior="sample"`,
        the SD variant of MGD³) drawn with `generator`."""
        dist = self.vae.encode(images.to(self.vae.dtype)).latent_dist
        mean, std = dist.mean.float(), dist.std.float()  # modes live in float32 like the sampler's state
        if posterior == "sample":
            noise = torch.randn(mean.shape, generator=generator).to(mean.device)
            return (mean + std * noise) * self.scaling_factor
        if posterior != "mean":
            raise ConfigError(f"unknown posterior {posterior!r}", "use 'mean' or 'sample'")
        return mean * self.scaling_factor


class StableDiffusionDenoiser(_LatentDenoiser):
    """`UNet2DConditionModel` + `AutoencoderKL`, conditioned on prompt embeddings.

    `prompt_embeds` is (num_classes, tokens, dim): one embedded prompt per class, and
    `null_embeds` (1, tokens, dim) the empty prompt. Build them with `encode_prompts` from the
    folder's own tokenizer and text encoder (needs the optional `transformers`), or precompute
    them elsewhere and pass the tensors, so no text encoder is required here.
    """

    def __init__(self, unet, vae, scheduler_config, prompt_embeds: torch.Tensor, null_embeds: torch.Tensor | None = None,
                 class_names: Sequence[str] | None = None):
        size = unet.config.sample_size
        size = size if isinstance(size, (list, tuple)) else (size, size)
        super().__init__(vae, scheduler_config, (unet.config.in_channels, size[0], size[1]))
        self.unet = unet
        if prompt_embeds.ndim != 3:
            raise ModelError(f"prompt_embeds must be (classes, tokens, dim), got {tuple(prompt_embeds.shape)}")
        dim = unet.config.cross_attention_dim
        dim = dim[0] if isinstance(dim, (list, tuple)) else dim
        if prompt_embeds.shape[-1] != dim:
            raise ModelError(f"prompt embeddings have width {prompt_embeds.shape[-1]} but the UNet expects {dim}",
                             "encode the prompts with the text encoder the UNet was trained with")
        self.register_buffer("prompt_embeds", prompt_embeds.detach().float(), persistent=False)
        if null_embeds is None:
            self.supports_cfg = False
            null_embeds = torch.zeros_like(prompt_embeds[:1])
        self.register_buffer("null_embeds", null_embeds.detach().float().reshape(1, *prompt_embeds.shape[1:]),
                             persistent=False)
        self.num_classes = int(prompt_embeds.shape[0])
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(c) for c in range(self.num_classes))

    def _model_output(self, x_t, t, cond):
        return self.unet(x_t, t, encoder_hidden_states=cond.to(x_t.dtype)).sample

    def cond_for_labels(self, labels):
        labels = super().cond_for_labels(labels)
        return self.prompt_embeds[labels]

    def null_cond(self, batch: int) -> torch.Tensor:
        if not self.supports_cfg:
            return super().null_cond(batch)
        return self.null_embeds.expand(batch, -1, -1)


def encode_prompts(folder: str | Path, prompts: Sequence[str]) -> torch.Tensor:
    """Embed prompts with the folder's `tokenizer/` and `text_encoder/` (CLIP; needs transformers)."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer  # optional: practicum[text]
    except ImportError:
        raise ModelError("encoding prompts needs the optional package transformers",
                         "pip install 'practicum[text]', or pass precomputed prompt_embeds") from None
    folder = Path(folder)
    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)
    encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", local_files_only=True,
                                           use_safetensors=True).eval()
    tokens = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    with torch.no_grad():
        return encoder(tokens.input_ids)[0]


class DiTDenoiser(_LatentDenoiser):
    """Class-conditional `DiTTransformer2DModel` + `AutoencoderKL`.

    With `out_channels == 2 · in_channels` the extra channels are the learned-variance
    interpolation v (ADM/DiT): `predict` returns them for the DDPM sampler's learned range;
    x̂0 uses ε = the first channels only. The null class is `num_embeds_ada_norm` (DiT's label
    table has one extra row when trained with label dropout). `cfg_channels=3` mixes CFG into
    the first three latent channels only, as the original DiT code does (diffusers' DiTPipeline
    mixes all four); None mixes all.
    """

    def __init__(self, transformer, vae, scheduler_config, *, class_names: Sequence[str] | None = None,
                 cfg_channels: int | None = 3):
        cfg = transformer.config
        super().__init__(vae, scheduler_config, (cfg.in_channels, cfg.sample_size, cfg.sample_size))
        self.transformer = transformer
        out = cfg.out_channels or cfg.in_channels
        self.learned_variance = out == 2 * cfg.in_channels
        self.num_classes = int(cfg.num_embeds_ada_norm)
        self.null_class = self.num_classes
        self.cfg_channels = None if cfg_channels is None else min(int(cfg_channels), int(cfg.in_channels))
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(c) for c in range(self.num_classes))

    def _model_output(self, x_t, t, cond):
        return self.transformer(x_t, timestep=t, class_labels=cond).sample

    def null_cond(self, batch: int) -> torch.Tensor:
        return torch.full((batch,), self.null_class, dtype=torch.long, device=self.device)


# ---------------------------------------------------------------- loading

def build_denoiser(config: dict[str, Any], **options: Any) -> Denoiser:
    """A randomly initialised denoiser from explicit configs (seeded by the caller's torch seed)."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel, UNet2DConditionModel, UNet2DModel  # lazy: diffusers import costs ~3.5x torch's

    config = dict(config)
    kind = config.pop("kind", "unet")
    scheduler = config.pop("scheduler", {})
    try:
        if kind == "unet":
            return PixelUNetDenoiser(UNet2DModel(**config.pop("unet", {})), scheduler, **config, **options)
        if kind == "sd":
            unet = UNet2DConditionModel(**config.pop("unet", {}))
            vae = AutoencoderKL(**config.pop("vae", {}))
            embeds = options.pop("prompt_embeds", config.pop("prompt_embeds", None))
            null = options.pop("null_embeds", config.pop("null_embeds", None))
            if embeds is None:
                raise ModelError("an SD-layout model built from a config needs prompt_embeds")
            return StableDiffusionDenoiser(unet, vae, scheduler, torch.as_tensor(embeds), null, **config, **options)
        if kind == "dit":
            transformer = DiTTransformer2DModel(**config.pop("transformer", {}))
            vae = AutoencoderKL(**config.pop("vae", {}))
            return DiTDenoiser(transformer, vae, scheduler, **config, **options)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build a {kind!r} denoiser from the config: {exc}", "check the config keys") from None
    raise ConfigError(f"unknown denoiser kind {kind!r}", "use 'unet', 'sd' or 'dit'")


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def refuse_pickled_weights(folder: Path) -> None:
    """Refuse a model folder whose weights are pickles (loading a pickle can run arbitrary code).

    Every `from_pretrained` also passes `use_safetensors=True`; this check gives the one-line
    error with the fix before diffusers gets a chance to print its own.
    """
    pickled = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())
    if not pickled:
        return
    safe = {p.parent for p in folder.rglob("*.safetensors")}
    unsafe = [p for p in pickled if p.parent not in safe]
    if unsafe:
        raise ModelError(f"{unsafe[0]} holds pickled weights, which practicum never loads (a pickle can run code)",
                         "convert it once in a trusted session: `m = UNet2DModel.from_pretrained(DIR, "
                         "use_safetensors=False); m.save_pretrained(DIR, safe_serialization=True)`, then delete "
                         "the .bin")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc})", "repair or re-download the model folder") from None


def load_folder(folder: Path, *, class_names: Sequence[str] | None = None,
                 prompt_embeds: torch.Tensor | None = None, null_embeds: torch.Tensor | None = None,
                 **options: Any) -> Denoiser:
    if folder.is_file():
        raise ModelError(f"--model {folder} is a file; practicum loads diffusers model folders",
                         "give 'builtin' or a folder saved with save_pretrained (config.json + .safetensors)")
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist",
                         "give 'builtin' or a local diffusers folder (models are never downloaded)")
    from diffusers import AutoencoderKL, DiTTransformer2DModel, UNet2DConditionModel, UNet2DModel  # lazy: diffusers import costs ~3.5x torch's

    refuse_pickled_weights(folder)
    index_path = folder / "model_index.json"
    try:
        if not index_path.exists():
            config = folder / "config.json"
            if not config.exists():
                raise ModelError(f"{folder} has neither model_index.json nor config.json (nor the "
                                 "denoiser.safetensors and denoiser.json of `practicum diffusion train`)",
                                 "give a diffusers pipeline folder, a saved UNet2DModel folder or a "
                                 "`practicum diffusion train` run folder")
            if _read_json(config).get("_class_name") != "UNet2DModel":
                raise ModelError(f"{folder} holds a {_read_json(config).get('_class_name')}, not a UNet2DModel",
                                 "give the pipeline folder (with model_index.json)")
            unet = UNet2DModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
            scheduler = _read_json(folder / "scheduler_config.json") if (folder / "scheduler_config.json").exists() else {}
            return PixelUNetDenoiser(unet.eval(), scheduler, class_names=class_names, **options)
        index = _read_json(index_path)
        pipeline = index.get("_class_name", "")
        scheduler = _read_json(folder / "scheduler" / "scheduler_config.json") if (
            folder / "scheduler" / "scheduler_config.json").exists() else {}
        if "unet" in index and "vae" not in index:
            unet = UNet2DModel.from_pretrained(folder, subfolder="unet", local_files_only=True, use_safetensors=True)
            return PixelUNetDenoiser(unet.eval(), scheduler, class_names=class_names, **options)
        if "transformer" in index or pipeline.startswith("DiT"):
            transformer = DiTTransformer2DModel.from_pretrained(folder, subfolder="transformer", local_files_only=True,
                                                                use_safetensors=True)
            vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True, use_safetensors=True)
            if class_names is None and "id2label" in index:
                labels = index["id2label"]
                class_names = [str(labels[str(i)]).split(",")[0] for i in range(len(labels))]
            return DiTDenoiser(transformer.eval(), vae.eval(), scheduler, class_names=class_names, **options)
        if "unet" in index and "vae" in index:
            unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True,
                                                        use_safetensors=True)
            vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True, use_safetensors=True)
            if prompt_embeds is None:
                embeds_file = folder / "prompt_embeds.safetensors"
                if embeds_file.exists():
                    stored = load_file(embeds_file)
                    prompt_embeds, null_embeds = stored["prompt_embeds"], stored.get("null_embeds")
                elif class_names is not None:
                    embeds = encode_prompts(folder, [*class_names, ""])
                    prompt_embeds, null_embeds = embeds[:-1], embeds[-1:]
                else:
                    raise ModelError(f"{folder}: an SD-layout model needs class names to build prompts",
                                     "pass class_names (from the dataset) or prompt_embeds")
            return StableDiffusionDenoiser(unet.eval(), vae.eval(), scheduler, torch.as_tensor(prompt_embeds),
                                           null_embeds, class_names=class_names, **options)
        raise ModelError(f"{folder}: unsupported pipeline {pipeline!r}",
                         "use a DDPM/DDIM (UNet2DModel), Stable Diffusion or DiT folder")
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"cannot load the model in {folder}: {str(exc).splitlines()[0][:300]}",
                         "check that the folder is a complete diffusers model saved locally") from None
