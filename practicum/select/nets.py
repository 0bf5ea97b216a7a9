"""The networks of the rater stage: the rater φ (backbone + two heads) and the proxies θ.

Rater (Alchemist §2, scaled down): a feature extractor gives f_i ∈ R^C per example (a small
CNN over images, or an MLP over precomputed embeddings), conditioned on the label (the caption's
stand-in) through a per-class scale and shift (FiLM). Two heads:

- instance head a_i = sigmoid(MLP_inst(f_i)), MLP C → 64 → 1 with tanh-GELU; p = softmax_batch(a);
- group head  g = sigmoid(MLP_grp([mean_b f_b ; var_b f_b])), 2C → 64 → 1 (biased variance);
- score_i = p_i · g (what is stored as the rating).

`heads="single"` is the paper's ablation: score_i = sigmoid(MLP(f_i)), no batch softmax, no group head.

Proxies have no batch norm, so the one-step lookahead rule can call them functionally
(`torch.func.functional_call`). Their `forward(x, y, draws)` returns per-example losses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from practicum.diffusion.builtin import BUILTIN_SCHEDULER_CONFIG, BUILTIN_UNET_CONFIG
from practicum.diffusion.denoisers import PixelUNetDenoiser
from practicum.diffusion.loading import load_denoiser
from practicum.errors import ConfigError
from practicum.learn.noising import add_noise


def _conv_stack(channels: int, width: int, image_shape: tuple[int, int, int]) -> tuple[nn.Sequential, int]:
    """conv-GELU blocks, downsampling until the map is <= 4x4, then global average pooling."""
    _, h, w = image_shape
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.GELU()]
    size, cin = max(h, w), width
    while size > 4:
        layers += [nn.Conv2d(cin, 2 * cin if cin < 4 * width else cin, 3, stride=2, padding=1), nn.GELU()]
        cin = 2 * cin if cin < 4 * width else cin
        size = math.ceil(size / 2)
    layers += [nn.Conv2d(cin, cin, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), cin


class FeatureExtractor(nn.Module):
    """Images (N, C, H, W) → CNN features, or embeddings (N, D) → MLP features; + label embedding."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, feature_dim: int = 64, width: int = 16):
        super().__init__()
        if len(input_shape) == 3:
            self.body, out = _conv_stack(input_shape[0], width, input_shape)  # type: ignore[arg-type]
        elif len(input_shape) == 1:
            self.body, out = nn.Sequential(nn.Linear(input_shape[0], 2 * feature_dim), nn.GELU()), 2 * feature_dim
        else:
            raise ValueError(f"input shape {input_shape} is neither (C, H, W) nor (D,)")
        self.project = nn.Linear(out, feature_dim)
        # FiLM conditioning on the label: a scale and a shift per class, so the heads can tell
        # whether an image agrees with its label (an additive embedding alone can hardly do that).
        self.label_scale = nn.Embedding(num_classes, feature_dim)
        self.label_shift = nn.Embedding(num_classes, feature_dim)
        nn.init.zeros_(self.label_scale.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(self.body(x))
        return F.gelu(h * (1 + self.label_scale(y)) + self.label_shift(y), approximate="tanh")


def _mlp(cin: int, hidden: int, approximate: str) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.GELU(approximate=approximate), nn.Linear(hidden, 1))


class RaterNet(nn.Module):
    """φ: features + instance head + group head. `forward` returns the pieces of the score."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, feature_dim: int = 64, width: int = 16,
                 head_hidden: int = 64, heads: str = "multi"):
        super().__init__()
        if heads not in ("multi", "single"):
            raise ValueError(f"heads must be 'multi' or 'single', not {heads!r}")
        self.heads = heads
        self.features = FeatureExtractor(input_shape, num_classes, feature_dim, width)
        self.instance_head = _mlp(feature_dim, head_hidden, "tanh")
        self.group_head = _mlp(2 * feature_dim, head_hidden, "none") if heads == "multi" else None

    def forward(self, x: torch.Tensor, y: torch.Tensor, group_size: int | None = None) -> dict[str, torch.Tensor]:
        """`group_size` cuts the batch into consecutive groups with a softmax and a g each (as the
        released launch does, one per device); None: the whole batch is one group."""
        f = self.features(x, y)
        logit = self.instance_head(f).squeeze(-1)
        a = torch.sigmoid(logit)
        if self.group_head is None:
            return {"a": a, "logit": logit, "score": a}
        size = len(a) if group_size is None else group_size
        p, g = [], []
        for a_part, f_part in zip(a.split(size), f.split(size)):
            p.append(torch.softmax(a_part, dim=0))
            u = torch.cat([f_part.mean(dim=0), f_part.var(dim=0, unbiased=False)])
            g.append(torch.sigmoid(self.group_head(u).squeeze(-1)).expand(len(a_part)))
        p, g = torch.cat(p), torch.cat(g)
        if group_size is None:
            g = g[0]  # one batch, one scalar
        return {"a": a, "logit": logit, "p": p, "g": g, "score": p * g}


# ---------------------------------------------------------------- proxies

class ClassifierProxy(nn.Module):
    """A small classifier; forward gives per-example cross-entropy."""

    kind = "classifier"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 16):
        super().__init__()
        if len(input_shape) == 3:
            body, out = _conv_stack(input_shape[0], width, input_shape)  # type: ignore[arg-type]
        else:
            body, out = nn.Sequential(nn.Linear(input_shape[0], 4 * width), nn.GELU()), 4 * width
        self.body = body
        self.head = nn.Linear(out, num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor, draws=None) -> torch.Tensor:
        return F.cross_entropy(self.logits(x), y, reduction="none")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class DiffusionProxy(nn.Module):
    """A tiny class-conditional ε-prediction model on flattened inputs (DDPM, linear β schedule).

    Per-example loss = mean over K (t, noise) draws of ‖ε − ε̂(x_t, t, y)‖² / dim; the rater
    shares one set of draws across a batch (`practicum.select.pool.common_draws`), so the rows of a
    batch differ only by their images, not by their luck.
    """

    kind = "diffusion"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 128, timesteps: int = 1000):
        super().__init__()
        self.dim = int(math.prod(input_shape))
        self.time_dim = 32
        self.net = nn.Sequential(nn.Linear(self.dim + self.time_dim, width), nn.GELU(),
                                 nn.Linear(width, width), nn.GELU(), nn.Linear(width, self.dim))
        self.class_embedding = nn.Embedding(num_classes, self.dim + self.time_dim)
        betas = torch.linspace(1e-4, 0.02, timesteps)
        self.register_buffer("alphas_cumprod", torch.cumprod(1.0 - betas, dim=0), persistent=False)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x_t, timestep_embedding(t, self.time_dim)], dim=1) + self.class_embedding(y)
        return self.net(h)

    def forward(self, x: torch.Tensor, y: torch.Tensor, draws) -> torch.Tensor:
        t, noise = draws  # (N, K) int64, (N, K, dim)
        x0 = x.reshape(len(x), 1, self.dim)
        abar = self.alphas_cumprod[t].unsqueeze(-1)
        x_t = add_noise(x0, noise, abar)
        k = t.shape[1]
        pred = self.eps(x_t.reshape(-1, self.dim), t.reshape(-1), y.repeat_interleave(k))
        return ((pred.reshape(len(x), k, self.dim) - noise) ** 2).mean(dim=(1, 2))


class DenoiserProxy(nn.Module):
    """Any `practicum.diffusion` Denoiser as the proxy: per-example ε-MSE over K (t, noise) draws.

    With `diffusion_model="builtin"` the rater trains a freshly initialised built-in pixel UNet
    (the paper's proxy is trained from scratch alongside the rater); a denoiser spec that
    `load_denoiser` understands starts from those weights instead.
    """

    kind = "diffusion"

    def __init__(self, denoiser):
        super().__init__()
        self.denoiser = denoiser
        self.register_buffer("alphas_cumprod", denoiser.alphas_cumprod.float(), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, draws) -> torch.Tensor:
        t, noise = draws  # (N, K), (N, K, dim)
        n, k = t.shape
        x0 = self.denoiser.encode(x)
        noise = noise.reshape(n, k, *x0.shape[1:])
        abar = self.alphas_cumprod[t].reshape(n, k, *[1] * (x0.ndim - 1))
        x_t = add_noise(x0.unsqueeze(1), noise, abar)
        cond = self.denoiser.cond_for_labels(y.repeat_interleave(k))
        eps = self.denoiser(x_t.reshape(n * k, *x0.shape[1:]), t.reshape(-1), cond)
        return ((eps.reshape(n, k, -1) - noise.reshape(n, k, -1)) ** 2).mean(dim=(1, 2))


def build_denoiser_proxy(spec: str, input_shape: tuple[int, ...], num_classes: int) -> DenoiserProxy:
    """`builtin`: a fresh built-in UNet sized to the data; anything else: `load_denoiser(spec)`."""
    if len(input_shape) != 3:
        raise ConfigError("a UNet diffusion proxy needs images", "use diffusion_model='tiny' for embeddings")
    if spec == "builtin":
        from diffusers import UNet2DModel  # lazy: diffusers import costs ~3.5x torch's


        c, h, w = input_shape
        if h != w or h % 2:
            raise ConfigError(f"the built-in UNet proxy needs square images of even size, not {h}x{w}")
        config = {**BUILTIN_UNET_CONFIG, "sample_size": h, "in_channels": c, "out_channels": c,
                  "num_class_embeds": num_classes + 1}
        denoiser = PixelUNetDenoiser(UNet2DModel(**config), BUILTIN_SCHEDULER_CONFIG, num_classes=num_classes,
                                     image_shape=input_shape)
    else:
        denoiser = load_denoiser(spec)
        if tuple(denoiser.image_shape) != tuple(input_shape):
            raise ConfigError(f"the denoiser {spec!r} makes {denoiser.image_shape} images, the pool has {input_shape}")
    return DenoiserProxy(denoiser.train())


__all__ = ["ClassifierProxy", "DenoiserProxy", "DiffusionProxy", "build_denoiser_proxy", "FeatureExtractor", "RaterNet", "timestep_embedding"]
