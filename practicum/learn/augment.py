"""Batch augmentations, all drawn from the learner's own torch.Generator (so a resumed run
continues bit-identically): small random translations, Mixup and CutMix."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int | None = None) -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels (default H/8, at least 1), padding with -1
    (the background of images in [-1, 1]). No flips: they change the meaning of digits and text."""
    n, _, h, w = x.shape
    s = max_shift if max_shift is not None else max(1, round(max(h, w) / 8))
    if s <= 0:
        return x
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=generator)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy:dy + h, dx:dx + w]
    return out


def _numpy_rng(generator: torch.Generator) -> np.random.Generator:
    # Beta draws need numpy; seeding it from the torch generator keeps one source of randomness.
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))


def mix_batch(x: torch.Tensor, y_soft: torch.Tensor, generator: torch.Generator,
              mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (one of the enabled two, chosen with probability 1/2 when both are on).

    `y_soft` are (N, K) target distributions; returns the mixed images and targets.
    """
    use = [name for name, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not use or len(x) < 2:
        return x, y_soft
    rng = _numpy_rng(generator)
    kind = use[int(rng.integers(len(use)))]
    perm = torch.from_numpy(rng.permutation(len(x)))
    if kind == "mixup":
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        return lam * x + (1 - lam) * x[perm], lam * y_soft + (1 - lam) * y_soft[perm]
    lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
    h, w = x.shape[-2:]
    box = cutmix_box(h, w, lam, int(rng.integers(h)), int(rng.integers(w)))
    mixed, kept = paste_box(x, perm, box)
    return mixed, kept * y_soft + (1 - kept) * y_soft[perm]


# ---------------------------------------------------------------- CutMix's box (one geometry for every caller)

def cutmix_box(h: int, w: int, lam: float, cy: int, cx: int, *, floor: bool = False) -> tuple[int, int, int, int]:
    """The CutMix box (y0, y1, x0, x1): sides √(1 − λ)·(h, w) centred at (cy, cx), clipped to the image.

    Default: sides rounded to the nearest pixel and the box [c − s//2, c + s − s//2), the full side.
    `floor=True` is the MGD³/DSA evaluation protocol's variant (sides floored, box [c − s//2, c + s//2),
    one pixel short for an odd side), kept because the distillation benchmarks' recorded numbers
    depend on it.
    """
    cut = math.sqrt(1.0 - lam)
    if floor:
        ch, cw = int(h * cut), int(w * cut)
        return max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
    ch, cw = int(round(h * cut)), int(round(w * cut))
    return max(cy - ch // 2, 0), min(cy + ch - ch // 2, h), max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)


def paste_box(x: torch.Tensor, perm: torch.Tensor, box: tuple[int, int, int, int]) -> tuple[torch.Tensor, float]:
    """`x` with the box pasted from `x[perm]`, and λ = the area fraction actually kept."""
    y0, y1, x0, x1 = box
    mixed = x.clone()
    mixed[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    h, w = x.shape[-2:]
    return mixed, 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
