"""Forward noising of diffusion training: x_t = √ᾱ·x0 + √(1 − ᾱ)·ε (DDPM's q(x_t | x0)).

The one copy used by `practicum diffusion train` and the rater's denoiser proxies (`select/nets.py`).
"""

from __future__ import annotations

import torch


def add_noise(x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """x_t for clean `x0`, noise ε and ᾱ_t (already shaped to broadcast against both)."""
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
