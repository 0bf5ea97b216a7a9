"""The respaced DDPM / DDIM loop with mode guidance and stop guidance (MGD³ spec §3–§5).

MGD³ adds its guidance to the DDPM posterior mean, which no diffusers scheduler exposes, so the
loop is owned here (spec pitfall 4). It works with any noise predictor

    eps_fn(x_t, timesteps, labels) -> eps            or -> (eps, v)

where `timesteps` are integers on the model's training scale and `v` (same shape as eps) are the
learned-range variance channels of DiT/ADM models, in [-1, 1].

Step i runs S−1 … 0 over the respaced timesteps τ_i (`respaced_timesteps`). With the predicted
clean sample x̂0 = (x_i − √(1−ᾱ'_i) ε)/√ᾱ'_i and the assigned mode m:

- `ddpm` form (default, the official DiT path):
  x_{i−1} = μ(x̂0, x_i) + 1[i > t_stop] λ σ_i (m − x̂0) + 1[i > 0] σ_i n,
  with σ_i the standard deviation (learned range if the model returns v, else the posterior
  or β' variance, `variance="small"|"large"`).
- `ddim` form (Algorithm 1, η = 0): ε̂ = ε − 1[i > t_stop] √(1−ᾱ'_i) λ (m − x̂0), then the DDIM
  update with ε̂. Both move x̂0 *towards* m (the printed Eq. 6 has the wrong sign).

λ = 0 or `modes=None` gives the plain sampler, bit for bit. Every sample draws its initial and
per-step noise from its own generator (`seeds`), so a sample is the same whatever batch it is
in, and two methods given the same seeds start from the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from practicum.errors import ConfigError

FORMS = ("ddpm", "ddim")
VARIANCES = ("small", "large")


def linear_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 1e-4,
                          beta_end: float = 0.02) -> torch.Tensor:
    """ᾱ_t of the linear β schedule (DDPM / DiT base schedule), float64."""
    betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def respaced_timesteps(num_train_timesteps: int, steps: int) -> np.ndarray:
    """S timesteps evenly spaced over 0 … T−1 with rounding (0, 20, 41, …, 999 for S=50, T=1000)."""
    if steps < 1 or steps > num_train_timesteps:
        raise ConfigError(f"steps must be between 1 and {num_train_timesteps}, not {steps}")
    return np.round(np.linspace(0, num_train_timesteps - 1, steps)).astype(np.int64)


@dataclass(frozen=True)
class RespacedSchedule:
    """The respaced DDPM quantities of spec §3, one entry per respaced index i = 0 … S−1 (float64)."""

    timesteps: torch.Tensor  # τ_i, int64
    alpha_bar: torch.Tensor  # ᾱ'_i
    alpha_bar_prev: torch.Tensor  # ᾱ'_{i−1}, with ᾱ'_{−1} = 1
    beta: torch.Tensor  # β'_i
    coef_x0: torch.Tensor  # c1_i
    coef_xt: torch.Tensor  # c2_i
    posterior_variance: torch.Tensor  # β̃'_i
    log_posterior_variance: torch.Tensor  # log β̃'_i, clipped at i = 0 with β̃'_1

    @classmethod
    def build(cls, alphas_cumprod: torch.Tensor, steps: int) -> "RespacedSchedule":
        alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        tau = torch.from_numpy(respaced_timesteps(len(alphas_cumprod), steps))
        ab = alphas_cumprod[tau]
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        beta = 1.0 - ab / ab_prev
        coef_x0 = beta * ab_prev.sqrt() / (1.0 - ab)
        coef_xt = (1.0 - ab_prev) * (1.0 - beta).sqrt() / (1.0 - ab)
        post_var = beta * (1.0 - ab_prev) / (1.0 - ab)
        clip_source = post_var[1] if len(post_var) > 1 else beta[0]
        log_post = torch.log(torch.cat([clip_source.reshape(1), post_var[1:]]))
        return cls(tau, ab, ab_prev, beta, coef_x0, coef_xt, post_var, log_post)

    @property
    def steps(self) -> int:
        return len(self.timesteps)

    def log_variance(self, i: int, v: torch.Tensor | None, variance: str = "small") -> torch.Tensor | float:
        """log σ_i²: the learned range when `v` is given, else fixed small (β̃') or large (β')."""
        if v is not None:
            frac = (v.to(torch.float64) + 1.0) / 2.0
            return frac * torch.log(self.beta[i]) + (1.0 - frac) * self.log_posterior_variance[i]
        if variance == "large":
            # Like ADM's fixed-large: at i = 0 use β̃'_1 so the last step is not over-noised.
            return float(torch.log(self.beta[i]) if i > 0 else self.log_posterior_variance[i])
        if variance == "small":
            return float(self.log_posterior_variance[i])
        raise ConfigError(f"unknown variance {variance!r}", f"use one of {', '.join(VARIANCES)}")


@dataclass
class SampleTrace:
    """What a sampling run did: the final samples and the indices i at which guidance was applied."""

    samples: torch.Tensor
    guided_steps: list[int]


def _split(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


def mode_guided_sample(eps_fn: Callable, labels: torch.Tensor, shape: tuple[int, ...], *,
                       alphas_cumprod: torch.Tensor, seeds: list[int], steps: int = 50,
                       modes: torch.Tensor | None = None, lam: float = 0.1, t_stop: int | None = None,
                       form: str = "ddpm", variance: str = "small", clip_x0: bool = False,
                       on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> SampleTrace:
    """Sample one image per label, pulled towards `modes[k]` while i > t_stop.

    `shape` is one sample's shape (C, H, W); `modes` is (N, C, H, W) or (N, C·H·W) in the same
    space and scale as x̂0; `t_stop` defaults to S // 2 (the paper: 25 of 50); `t_stop=-1`
    guides every step. `on_step(i, x0, guided)` sees each step's x̂0 (for tests and plots).
    """
    if form not in FORMS:
        raise ConfigError(f"unknown guidance form {form!r}", f"use one of {', '.join(FORMS)}")
    labels = torch.as_tensor(labels, dtype=torch.long)
    n = len(labels)
    if len(seeds) != n:
        raise ConfigError(f"{len(seeds)} seeds for {n} samples", "give one seed per sample")
    schedule = RespacedSchedule.build(alphas_cumprod, steps)
    t_stop = steps // 2 if t_stop is None else int(t_stop)
    if modes is not None:
        modes = torch.as_tensor(modes, dtype=torch.float32).reshape(n, *shape)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def noise() -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g) for g in generators])

    x = noise()
    guided_steps: list[int] = []
    for i in reversed(range(steps)):
        t = torch.full((n,), int(schedule.timesteps[i]), dtype=torch.long)
        with torch.no_grad():
            eps, v = _split(eps_fn(x, t, labels))
        eps = eps.float()
        ab, ab_prev = float(schedule.alpha_bar[i]), float(schedule.alpha_bar_prev[i])
        x0 = (x - (1.0 - ab) ** 0.5 * eps) / ab**0.5
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
        guide = modes is not None and lam != 0.0 and i > t_stop
        if guide:
            guided_steps.append(i)
        if on_step is not None:
            on_step(i, x0, torch.tensor(guide))
        if form == "ddpm":
            mean = float(schedule.coef_x0[i]) * x0 + float(schedule.coef_xt[i]) * x
            log_var = schedule.log_variance(i, v, variance)
            std = torch.exp(0.5 * torch.as_tensor(log_var)).float()
            if guide:
                mean = mean + lam * std * (modes - x0)
            x = mean + std * noise() if i > 0 else mean
        else:
            if guide:
                eps = eps - (1.0 - ab) ** 0.5 * lam * (modes - x0)
                x0 = (x - (1.0 - ab) ** 0.5 * eps) / ab**0.5
            x = ab_prev**0.5 * x0 + (1.0 - ab_prev) ** 0.5 * eps
    return SampleTrace(x, guided_steps)


__all__ = ["FORMS", "VARIANCES", "RespacedSchedule", "SampleTrace", "linear_alphas_cumprod",
           "mode_guided_sample", "respaced_timesteps"]
