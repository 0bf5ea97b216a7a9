"""Batch augmentations, all drawn from the learner's own torch.Generator (so a resumed run
continues bit-identically): small random translations, Mixup and CutMix."""

from __future__ import annotations

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
    cut_h, cut_w = int(round(h * np.sqrt(1 - lam))), int(round(w * np.sqrt(1 - lam)))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + (cut_h - cut_h // 2), h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + (cut_w - cut_w // 2), w)
    mixed = x.clone()
    mixed[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)  # the area actually kept
    return mixed, lam * y_soft + (1 - lam) * y_soft[perm]
