"""A streaming learner pipeline for ImageNet-sized data: files are read by DataLoader workers,
augmentation and normalisation run on the device, training runs under AMP.

The in-memory `Dataset` of practicum.data holds every image as float32 — fine for digits, not
for ImageNet-100 (its test split alone would be ~76 GB at 224²). Here:
- `open_stream("folder:PATH" | "hf:PATH", split, load_size)` returns a torch Dataset that decodes
  one image at a time into a uint8 (C, load_size, load_size) tensor (shorter side resized, centre
  crop), so memory holds only the batches in flight. `hf:PATH` reads a Hugging Face dataset saved
  with `save_to_disk` (the optional `datasets` package: `pip install 'practicum[hf]'`).
- `make_loader` wraps it in a DataLoader with workers, pinned memory and a seeded shuffle.
- `DeviceAugment` turns a uint8 batch already on the device into the learner's input: batched
  random-resized crop and horizontal flip (one `affine_grid`/`grid_sample` call for the whole
  batch, no per-image loop), Mixup/CutMix with soft targets, then the normalisation the learner
  expects (`NORMALIZATION`: ImageNet mean/std for resnet50/ViT, [-1, 1] for practicum's small nets).
- `train_stream` / `evaluate_stream`: AdamW with the WSD schedule, label smoothing, AMP
  (`amp_dtype` bf16/fp16; fp16 uses a grad scaler), returning images per second.

The DP loop's `Learner` still trains from the in-memory pool; this pipeline is the learner side
for real data at scale (and what benchmarks/gpu_check.py times).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from practicum.errors import ConfigError, DataError
from practicum.learn.augment import cutmix_box, paste_box
from practicum.learn.schedule import wsd_factor
from practicum.runtime import parse_dtype, resolve_device

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# how each learner family expects its input: (mean, std) on [0, 1] pixels
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "minus_one_one": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # x/255 → [-1, 1], practicum's convention
}
IMAGENET_ARCHS = ("resnet50", "vit_b16", "vit_tiny")


def normalization_for(arch: str) -> str:
    return "imagenet" if arch in IMAGENET_ARCHS else "minus_one_one"


# ---------------------------------------------------------------- sources

class ImageFolderStream(torch.utils.data.Dataset):
    """`root/{split}/<class>/<image>` (or `root/<class>/<image>` for every split), read lazily."""

    def __init__(self, root: str | Path, split: str = "train", load_size: int = 256, channels: int = 3):
        root = Path(root)
        base = root / split if (root / split).is_dir() else root
        if not base.is_dir():
            raise DataError(f"image folder {base} does not exist", "give root/{train,val,test}/<class>/<image>")
        class_dirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise DataError(f"{base} has no class subfolders", "put the images of each class in <split>/<class>/")
        self.files: list[str] = []
        labels = []
        for label, folder in enumerate(class_dirs):
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    self.files.append(str(path))
                    labels.append(label)
        if not self.files:
            raise DataError(f"no images under {base}")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = tuple(p.name for p in class_dirs)
        self.load_size, self.channels = int(load_size), int(channels)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        try:
            with Image.open(self.files[i]) as img:
                img = img.convert("RGB" if self.channels == 3 else "L")
                return _to_uint8_tensor(img, self.load_size), int(self.labels[i])
        except OSError as exc:
            raise DataError(f"cannot read image {self.files[i]}: {exc}", "remove or replace the file") from None


class HFDiskStream(torch.utils.data.Dataset):
    """A Hugging Face dataset saved with `save_to_disk` (columns `image`, `label` by default)."""

    def __init__(self, path: str | Path, split: str = "train", load_size: int = 256, image_column: str = "image",
                 label_column: str = "label", channels: int = 3):
        try:
            import datasets  # optional: practicum[hf]
        except ImportError:
            raise DataError("hf:PATH data needs the optional package 'datasets'",
                            "pip install 'practicum[hf]' (or pip install datasets), or use folder:PATH") from None
        if not Path(path).exists():
            raise DataError(f"no saved dataset at {path}", "save one with Dataset.save_to_disk(PATH)")
        data = datasets.load_from_disk(str(path))
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise DataError(f"{path} has splits {sorted(data)} but not {split!r}", "save the split or rename it")
            data = data[split]
        for column in (image_column, label_column):
            if column not in data.column_names:
                raise DataError(f"{path} has no column {column!r} (columns: {data.column_names})")
        self.data, self.image_column, self.label_column = data, image_column, label_column
        self.labels = np.asarray(data[label_column], dtype=np.int64)
        feature = data.features[label_column]
        names = getattr(feature, "names", None)
        self.class_names = tuple(names) if names else tuple(str(c) for c in range(int(self.labels.max()) + 1))
        self.load_size, self.channels = int(load_size), int(channels)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = self.data[int(i)]
        img = row[self.image_column].convert("RGB" if self.channels == 3 else "L")
        return _to_uint8_tensor(img, self.load_size), int(row[self.label_column])


def _to_uint8_tensor(img, size: int) -> torch.Tensor:
    """Shorter side → size (bilinear), centre crop to size×size, (C, size, size) uint8."""
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def open_stream(spec: str, split: str = "train", load_size: int = 256, **options: Any):
    """'folder:PATH' or 'hf:PATH' → a lazily decoding torch Dataset with `labels`, `class_names`."""
    kind, _, path = str(spec).partition(":")
    if kind == "folder" and path:
        return ImageFolderStream(path, split, load_size, **options)
    if kind == "hf" and path:
        return HFDiskStream(path, split, load_size, **options)
    raise ConfigError(f"cannot stream {spec!r}", "use folder:PATH (root/<split>/<class>/*.jpg) or hf:PATH "
                      "(a Hugging Face dataset saved to disk)")


def make_loader(stream, batch_size: int, *, workers: int = 4, shuffle: bool = True, seed: int = 0,
                drop_last: bool = True, pin_memory: bool | None = None) -> torch.utils.data.DataLoader:
    """DataLoader with `workers` processes (0 = in this process) and a seeded shuffle."""
    if batch_size < 1 or workers < 0:
        raise ConfigError("batch_size must be >= 1 and workers >= 0")
    generator = torch.Generator().manual_seed(int(seed))
    return torch.utils.data.DataLoader(
        stream, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last and len(stream) >= batch_size,
        num_workers=workers, generator=generator, persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        prefetch_factor=4 if workers > 0 else None)


# ---------------------------------------------------------------- device-side augmentation

class DeviceAugment(nn.Module):
    """uint8 (B, C, H, W) on the device → normalised float (B, C, size, size), batched.

    train: random-resized crop (area fraction in `scale`, aspect ratio in `ratio`, log-uniform)
    and a horizontal flip with probability `flip`, as one affine sampling of the whole batch;
    eval: a centre crop of `crop_fraction` of the image resized to `size`. Randomness comes from
    `generator` (a CPU torch.Generator: the draws are tiny; the pixels never leave the device).
    """

    def __init__(self, size: int, *, normalization: str = "imagenet", scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), flip: float = 0.5, crop_fraction: float = 0.875):
        super().__init__()
        if normalization not in NORMALIZATION:
            raise ConfigError(f"unknown normalization {normalization!r}", f"use one of {', '.join(NORMALIZATION)}")
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"bad crop scale {scale} or ratio {ratio}", "scale within (0, 1], ratio > 0")
        mean, std = NORMALIZATION[normalization]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.size, self.scale, self.ratio = int(size), tuple(scale), tuple(ratio)
        self.flip, self.crop_fraction = float(flip), float(crop_fraction)

    def crop_params(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Per-image (half-width, half-height, centre x, centre y) in [-1, 1] coordinates, and flips."""
        area = torch.empty(n).uniform_(*self.scale, generator=generator)
        log_r = torch.empty(n).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]), generator=generator)
        r = log_r.exp()
        w = (area * r).sqrt().clamp(max=1.0)  # fractions of the side, clipped to the image
        h = (area / r).sqrt().clamp(max=1.0)
        cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - h)
        flips = torch.rand(n, generator=generator) < self.flip
        return w, h, cx, cy, flips

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None,
                train: bool = True) -> torch.Tensor:
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        n = len(x)
        if train:
            if generator is None:
                raise ConfigError("training augmentation needs a generator")
            w, h, cx, cy, flips = self.crop_params(n, generator)
            sx = torch.where(flips, -w, w)
        else:
            w = h = torch.full((n,), self.crop_fraction)
            cx = cy = torch.zeros(n)
            sx = w
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
        grid = F.affine_grid(theta.to(x.device), [n, x.shape[1], self.size, self.size], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def mix_on_device(x: torch.Tensor, targets: torch.Tensor, generator: torch.Generator, mixup_alpha: float = 0.0,
                  cutmix_alpha: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix of a device batch with soft targets (one of the enabled, p = 1/2 each);
    the pairing is a permutation (no per-image loop), the box `augment.cutmix_box`."""
    use = [(name, a) for name, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not use or len(x) < 2:
        return x, targets
    name, alpha = use[int(torch.randint(len(use), (1,), generator=generator))]
    # the Beta draw comes from numpy seeded by the generator: one source of randomness
    lam = float(np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator))).beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    if name == "mixup":
        return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm]
    h, w = x.shape[-2:]
    cy, cx = int(torch.randint(h, (1,), generator=generator)), int(torch.randint(w, (1,), generator=generator))
    mixed, kept = paste_box(x, perm, cutmix_box(h, w, lam, cy, cx))
    return mixed, kept * targets + (1 - kept) * targets[perm]


# ---------------------------------------------------------------- training

def train_stream(model: nn.Module, loader, *, steps: int, num_classes: int, augment: DeviceAugment,
                 lr: float = 3e-3, weight_decay: float = 0.05, warmup_fraction: float = 0.1,
                 cooldown_fraction: float = 0.2, label_smoothing: float = 0.11, mixup_alpha: float = 0.0,
                 cutmix_alpha: float = 0.0, amp_dtype: str | None = "bf16", device: str | torch.device = "cpu",
                 seed: int = 0, channels_last: bool = False) -> dict[str, float]:
    """Train `model` for `steps` optimiser steps from `loader` (cycled); returns timing and loss."""
    device = resolve_device(device)
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    augment.to(device)
    amp = None if amp_dtype in (None, "fp32") else parse_dtype(amp_dtype)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(int(seed))
    seen, loss_sum, step, started = 0, 0.0, 0, time.perf_counter()
    while step < steps:
        for images, labels in loader:
            if step >= steps:
                break
            for group in opt.param_groups:
                group["lr"] = lr * wsd_factor(step, steps, warmup_fraction, cooldown_fraction)
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            x = augment(images, generator, train=True)
            targets = F.one_hot(labels, num_classes).float()
            x, targets = mix_on_device(x, targets, generator, mixup_alpha, cutmix_alpha)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss_sum += float(loss.detach())
            seen += len(images)
            step += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"steps": step, "images": seen, "seconds": seconds, "images_per_second": seen / max(seconds, 1e-9),
            "mean_loss": loss_sum / max(1, step)}


@torch.no_grad()
def evaluate_stream(model: nn.Module, loader, augment: DeviceAugment, *, amp_dtype: str | None = "bf16",
                    device: str | torch.device = "cpu") -> dict[str, float]:
    """Top-1 accuracy over the whole loader (centre crops)."""

    device = resolve_device(device)
    model.to(device).eval()
    augment.to(device)
    amp = None if amp_dtype in (None, "fp32") else parse_dtype(amp_dtype)
    correct = total = 0
    for images, labels in loader:
        x = augment(images.to(device), train=False)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            pred = model(x).argmax(1)
        correct += int((pred.cpu() == labels).sum())
        total += len(labels)
    return {"accuracy": correct / max(1, total), "n": total}


__all__ = ["DeviceAugment", "HFDiskStream", "IMAGENET_MEAN", "IMAGENET_STD", "ImageFolderStream", "NORMALIZATION",
           "evaluate_stream", "make_loader", "mix_on_device", "normalization_for", "open_stream", "train_stream"]
