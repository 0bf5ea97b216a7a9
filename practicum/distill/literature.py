"""Protocol A-full: the dataset-distillation literature's evaluation, as the DC/DSA/DM code runs it (issue 27).

Protocol A (`protocol.py`) keeps the literature's recipe but on practicum's [-1, 1] images, with
practicum's ConvNet and DSA parameters read in [0, 1] units. A-full removes those differences, so a
number can sit beside the Fashion-MNIST rows of the DC, DSA, DM and MTT papers:

- **Inputs** normalised per channel, z = (p − mean) / std with p in [0, 1] and mean/std of the real
  train split (the DC code's constants for Fashion-MNIST are 0.2861 / 0.3530). DSA's parameters and
  its zero fill are in these units, so zero is the mean pixel, not black.
- **Student** `LiteratureConvNet`: ConvNet-3, width 128, [conv3x3 - instance norm - ReLU - avgpool2]
  × 3, then linear; single-channel inputs get padding 3 on the first convolution (28 px → 32 px,
  a 4×4×128 feature map), as the DC code's ConvNet does for MNIST-like data.
- **DSA** (`dsa`): Zhao & Bilen 2021, mode "S": one of the strategy's groups per batch, parameters
  drawn per image. The strategy is `color_crop_cutout_flip_scale_rotate` for every dataset: the
  DM code uses that default for MNIST and Fashion-MNIST too (no grayscale variant there; "color"
  reduces to brightness and contrast because saturation is the identity on one channel).
- SGD 0.01, momentum 0.9, weight decay 5e-4, batch 256, 1000 epochs, lr × 0.1 after epoch 500;
  test accuracy once, after the last epoch; the mean over ≥ 5 students (the DM code uses 20).
  The DC code trains epochs 0…1000 (1001) and decays after 502, rebuilding the optimiser; here
  it is 1000 and 500 with the momentum kept, a difference of 0.1 % of the steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from practicum.errors import ConfigError

# The literature's settings; `StudentSettings.departures()` lists every value that differs from them.
LITERATURE_SETTINGS = {"arch": "convnet", "width": 128, "epochs": 1000, "epoch_scale": 1.0, "batch": 256,
                       "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "augment": True, "labels": "hard",
                       "image_size": None}
MIN_STUDENTS = 5
DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
# DSA's ParamDiffAug defaults
BRIGHTNESS, SATURATION, CONTRAST = 1.0, 2.0, 0.5
CROP_PAD, CUTOUT, FLIP, SCALE, ROTATE = 0.125, 0.5, 0.5, 1.2, 15.0


class LiteratureConvNet(nn.Module):
    """The DC code's ConvNet: [conv3x3 - instance norm - ReLU - avgpool2] × depth, then linear."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], width: int = 128, depth: int = 3):
        super().__init__()
        channels, height, width_px = image_shape
        layers: list[nn.Module] = []
        cin = channels
        for d in range(depth):
            pad = 3 if channels == 1 and d == 0 else 1  # 28 px grey images become 32 px, as in the DC code
            layers += [nn.Conv2d(cin, width, 3, padding=pad), nn.GroupNorm(width, width, affine=True), nn.ReLU(),
                       nn.AvgPool2d(2)]
            cin = width
        self.body = nn.Sequential(*layers)
        size_h, size_w = height + (4 if channels == 1 else 0), width_px + (4 if channels == 1 else 0)
        for _ in range(depth):
            size_h, size_w = size_h // 2, size_w // 2
        if size_h < 1 or size_w < 1:
            raise ConfigError(f"{height}x{width_px} images are too small for a depth-{depth} ConvNet",
                              "use images of at least 8 pixels a side")
        self.head = nn.Linear(width * size_h * size_w, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_literature_convnet(num_classes: int, image_shape: tuple[int, int, int], width: int | None,
                             seed: int) -> LiteratureConvNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return LiteratureConvNet(num_classes, tuple(int(v) for v in image_shape), width or 128)


# ---------------------------------------------------------------- normalisation

def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of [-1, 1] images, in [0, 1] pixel units (what the DC code normalises by)."""
    pixels = (images.float() + 1) / 2
    return (tuple(float(v) for v in pixels.mean(dim=(0, 2, 3))),
            tuple(float(v) for v in pixels.std(dim=(0, 2, 3))))


def normalise(images: torch.Tensor, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    """[-1, 1] images → z = (p − mean) / std, p in [0, 1]."""
    mean, std = stats
    if len(mean) != images.shape[1] or len(std) != images.shape[1] or min(std) <= 0:
        raise ConfigError(f"normalisation stats {stats} do not fit {images.shape[1]}-channel images",
                          "give one mean and one positive std per channel")
    m = torch.tensor(mean, dtype=images.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype).view(1, -1, 1, 1)
    return ((images + 1) / 2 - m) / s


# ---------------------------------------------------------------- DSA, one function per operation
# Each takes normalised images (N, C, H, W) and a generator; parameters are drawn per image.

def _rand(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen)


def brightness(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return x + (_rand(len(x), gen) - 0.5).view(-1, 1, 1, 1) * BRIGHTNESS


def saturation(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(len(x), gen) * SATURATION).view(-1, 1, 1, 1) + mean


def contrast(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(len(x), gen) + CONTRAST).view(-1, 1, 1, 1) + mean


def crop(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Integer translation by up to ⌊side·0.125 + 0.5⌋ pixels per axis; uncovered pixels are 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * CROP_PAD + 0.5), int(w * CROP_PAD + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1), generator=gen)
    tx = torch.randint(-sw, sw + 1, (n, 1), generator=gen)
    rows = (torch.arange(h).view(1, h) + ty + 1).clamp(0, h + 1)  # +1: index into the 1-pixel zero pad
    cols = (torch.arange(w).view(1, w) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Zero a ⌊side/2 + 0.5⌋ square whose centre is anywhere in the image (clipped at the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1), generator=gen)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1), generator=gen)
    rows = (torch.arange(ch).view(1, ch) + cy - ch // 2).clamp(0, h - 1)
    cols = (torch.arange(cw).view(1, cw) + cx - cw // 2).clamp(0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype)
    mask[torch.arange(n).view(n, 1, 1), rows[:, :, None], cols[:, None, :]] = 0
    return x * mask.unsqueeze(1)


def flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.where((_rand(len(x), gen) < FLIP).view(-1, 1, 1, 1), x.flip(3), x)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def scale(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Sampling-grid scale in [1/1.2, 1.2] per axis (> 1 shrinks the content); zero fill."""
    n = len(x)
    sx = _rand(n, gen) * (SCALE - 1 / SCALE) + 1 / SCALE
    sy = _rand(n, gen) * (SCALE - 1 / SCALE) + 1 / SCALE
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = sx, sy
    return _warp(x, theta)


def rotate(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotation by up to ±15°; zero fill."""
    n = len(x)
    angle = (_rand(n, gen) - 0.5) * 2 * ROTATE / 180 * math.pi
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), torch.sin(-angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return _warp(x, theta)


DSA_GROUPS = {"color": (brightness, saturation, contrast), "crop": (crop,), "cutout": (cutout,), "flip": (flip,),
              "scale": (scale,), "rotate": (rotate,)}


def dsa(x: torch.Tensor, gen: torch.Generator, strategy: str = DSA_STRATEGY) -> tuple[torch.Tensor, str]:
    """DSA mode "S" on normalised images: one group of `strategy` per batch; returns (images, group)."""
    groups = strategy.split("_")
    unknown = [g for g in groups if g not in DSA_GROUPS]
    if unknown or not strategy:
        raise ConfigError(f"unknown DSA group(s) {unknown} in {strategy!r}",
                          f"join some of {', '.join(DSA_GROUPS)} with '_'")
    group = groups[int(torch.randint(0, len(groups), (1,), generator=gen))]
    for op in DSA_GROUPS[group]:
        x = op(x, gen)
    return x.contiguous(), group


__all__ = ["DSA_GROUPS", "DSA_STRATEGY", "LITERATURE_SETTINGS", "LiteratureConvNet", "MIN_STUDENTS", "brightness",
           "build_literature_convnet", "channel_stats", "contrast", "crop", "cutout", "dsa", "flip", "normalise",
           "rotate", "saturation", "scale"]
