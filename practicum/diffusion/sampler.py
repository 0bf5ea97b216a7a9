"""The guided sampling loop: one DDIM/DDPM loop that every model and every guidance term shares.

diffusers pipelines run under `no_grad` and their callbacks never see ε, so practicum owns the
loop and uses diffusers only for the networks and the noise schedule. Per step i (noisiest first):

    ε, v   ← denoiser(x_t, t, cond) with classifier-free guidance (no gradient)
    x̂0     ← (x_t − √(1−ᾱ_t) ε) / √ᾱ_t
    for every active guidance term: Correction(x, eps, x_prev) — summed over terms
    x_t    ← x_t + Σ x ;  ε ← ε + Σ eps          (ε is not re-evaluated after a latent nudge)
    x_{t−1} ← step(x_t, ε) + Σ x_prev

Steps. The timesteps and ᾱ come from a diffusers scheduler built from the model's own config:
`DDIMScheduler` or `DDPMScheduler` (both stateless). Stateful multistep schedulers (PNDM,
DPM-Solver, UniPC, Euler, ...) are refused: they keep histories that a guided loop corrupts.
The step is computed here from ᾱ, with ᾱ_prev = ᾱ of the next timestep in the list (1 after
the last), i.e. the respaced process of ADM/DiT:
- ddim: x_{t−1} = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε + σ n,  σ = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_prev);
- ddpm: x_{t−1} = c1 x̂0 + c2 x_t + σ n with the respaced posterior (c1, c2, β̃); σ² is the
  posterior variance β̃ ("fixed_small"), β ("fixed_large") or the learned range
  log σ² = f log β + (1−f) log β̃, f = (v+1)/2, for learned-variance models (DiT).

Classifier-free guidance uses the diffusers convention ε = ε_u + s (ε_c − ε_u) with
s = `cfg_scale`. The DP paper writes ε = (1+λ) ε_c − λ ε_u: the same thing with s = 1 + λ
(λ = 3 ⇒ s = 4). Both are reported in `SampleOutput.settings`.

Non-finite samples (NaN/inf, e.g. from a too-strong guidance step) are redrawn with fresh noise
from the same generator, at most `max_retries` times; the number redrawn is reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from practicum.diffusion.denoisers import Denoiser
from practicum.diffusion.guidance import Correction, GuidanceTerm, StepState
from practicum.errors import ConfigError, ModelError

SCHEDULERS = ("ddim", "ddpm")
VARIANCES = ("auto", "fixed_small", "fixed_large", "learned_range")


@dataclass
class SampleOutput:
    images: torch.Tensor  # (B, *image_shape) in [-1, 1], float32, CPU
    latents: torch.Tensor  # (B, *sample_shape): the final x_0 in the sampler's space
    labels: torch.Tensor  # (B,)
    retries: int = 0  # samples redrawn because they were not finite
    stats: dict[str, torch.Tensor] = field(default_factory=dict)  # per-sample values, (B,) each
    guided_steps: dict[str, int] = field(default_factory=dict)  # steps each term was active (per pass)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Schedule:
    timesteps: list[int]
    alpha_bar: list[float]
    alpha_bar_prev: list[float]


def make_schedule(denoiser: Denoiser, steps: int, scheduler: "str | Any" = "ddim",
                  timestep_spacing: str | None = None) -> tuple[str, _Schedule]:
    """The timesteps and ᾱ for `steps` steps, from a stateless diffusers scheduler."""
    from diffusers import DDIMScheduler, DDPMScheduler  # lazy: diffusers import costs ~3.5x torch's

    kind, instance = _scheduler_kind(scheduler)
    if not 1 <= int(steps) <= denoiser.num_train_timesteps:
        raise ConfigError(f"steps={steps} must lie in 1..{denoiser.num_train_timesteps}")
    if instance is None:
        config = {k: v for k, v in denoiser.scheduler_config.items() if not k.startswith("_")}
        if timestep_spacing is not None:
            config["timestep_spacing"] = timestep_spacing
        cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
        instance = cls.from_config(config)
    try:
        instance.set_timesteps(int(steps))
    except ValueError as exc:
        raise ConfigError(f"cannot use {steps} steps: {exc}") from None
    timesteps = [int(t) for t in instance.timesteps]
    ab = denoiser.alphas_cumprod.cpu()
    alpha_bar = [float(ab[t]) for t in timesteps]
    final = 1.0
    if kind == "ddim" and not instance.config.get("set_alpha_to_one", True):
        final = float(ab[0])
    return kind, _Schedule(timesteps, alpha_bar, alpha_bar[1:] + [final])


def _scheduler_kind(scheduler: "str | Any") -> tuple[str, Any]:
    from diffusers import DDIMScheduler, DDPMScheduler  # lazy: diffusers import costs ~3.5x torch's

    if isinstance(scheduler, str):
        if scheduler in SCHEDULERS:
            return scheduler, None
        raise ConfigError(f"scheduler {scheduler!r} is not supported by the guided loop",
                          "use 'ddim' or 'ddpm' (stateful multistep schedulers cannot be guided)")
    if type(scheduler) is DDIMScheduler:
        return "ddim", scheduler
    if type(scheduler) is DDPMScheduler:
        return "ddpm", scheduler
    raise ConfigError(f"{type(scheduler).__name__} is a stateful (or unsupported) scheduler; the guided loop "
                      "only runs stateless DDIMScheduler / DDPMScheduler",
                      "pass scheduler='ddim' or 'ddpm' (x̂0 is computed from alphas_cumprod, not scheduler.step)")


def sample(denoiser: Denoiser, labels: "torch.Tensor | Sequence[int]", *, steps: int = 50, eta: float = 0.0,
           cfg_scale: float = 1.0, guidance: Sequence[GuidanceTerm] = (), seed: int | None = None,
           generator: torch.Generator | None = None, scheduler: "str | Any" = "ddim",
           max_retries: int = 3, timestep_spacing: str | None = None,
           variance: Literal["auto", "fixed_small", "fixed_large", "learned_range"] = "auto",
           noise: torch.Tensor | None = None, clip_sample: bool | None = None,
           batch_size: int | None = None) -> SampleOutput:
    """Draw one sample per label with the guided loop (see the module docstring).

    `seed` or `generator` fixes all randomness (initial noise, DDPM/η noise, redraws): the same
    seed gives the same bytes. `noise` gives the initial x_T explicitly (B, *sample_shape).
    `batch_size` splits a large batch into chunks (same results as one chunk per chunk order).
    """
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    if variance not in VARIANCES:
        raise ConfigError(f"unknown variance {variance!r}", f"use one of {', '.join(VARIANCES)}")
    if eta < 0:
        raise ConfigError(f"eta={eta} must be >= 0")
    if cfg_scale != 1.0 and not denoiser.supports_cfg:
        raise ConfigError(f"cfg_scale={cfg_scale} needs a model with a null condition; {type(denoiser).__name__} has none",
                          "use cfg_scale=1")
    if max_retries < 0:
        raise ConfigError("max_retries must be >= 0")
    kind, schedule = make_schedule(denoiser, steps, scheduler, timestep_spacing)
    if variance == "auto":
        variance = "learned_range" if denoiser.learned_variance else "fixed_small"
    if variance == "learned_range" and not denoiser.learned_variance:
        raise ConfigError("variance='learned_range' needs a model with variance channels (DiT/ADM)")
    if noise is not None and tuple(noise.shape) != (len(labels), *denoiser.sample_shape):
        raise ConfigError(f"noise has shape {tuple(noise.shape)}, expected {(len(labels), *denoiser.sample_shape)}")
    clip = denoiser.clip_sample if clip_sample is None else bool(clip_sample)
    run = _Loop(denoiser, kind, schedule, eta, cfg_scale, list(guidance), variance, clip, generator)

    n = len(labels)
    chunk = n if not batch_size else max(1, int(batch_size))
    z0 = torch.empty((n, *denoiser.sample_shape))
    images = torch.empty((n, *denoiser.image_shape))
    attempts = torch.ones(n, dtype=torch.long)
    stats: dict[str, torch.Tensor] = {}
    retries = 0
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(n, start + chunk))
        x_init = None if noise is None else noise[rows]
        pending = rows
        for attempt in range(max_retries + 1):
            out_z, out_img, out_stats = run(labels[pending], pending, x_init)
            ok = torch.isfinite(out_z.flatten(1)).all(1) & torch.isfinite(out_img.flatten(1)).all(1)
            z0[pending[ok]] = out_z[ok]
            images[pending[ok]] = out_img[ok]
            for name, values in out_stats.items():
                stats.setdefault(name, torch.full((n,), float("nan")))[pending[ok]] = values[ok].cpu()
            attempts[pending] = attempt + 1
            pending = pending[~ok]
            if len(pending) == 0:
                break
            retries += len(pending)
            x_init = None  # a redraw always gets fresh noise
        if len(pending):
            raise ModelError(f"{len(pending)} sample(s) stayed non-finite (NaN/inf) after {max_retries} redraws",
                             "lower the guidance strength, raise max_retries, or sample in float32")
    stats["attempts"] = attempts
    settings = {"steps": int(steps), "scheduler": kind, "eta": float(eta), "variance": variance,
                "cfg_scale": float(cfg_scale), "cfg_lambda": float(cfg_scale) - 1.0,
                "timesteps": schedule.timesteps, "clip_sample": clip,
                "guidance": [term.settings() for term in guidance]}
    return SampleOutput(images=images, latents=z0, labels=labels, retries=retries, stats=stats,
                        guided_steps=dict(run.guided_steps), settings=settings)


class _Loop:
    """One pass of the loop over a batch of rows; counts guided steps per term."""

    def __init__(self, denoiser: Denoiser, kind: str, schedule: _Schedule, eta: float, cfg_scale: float,
                 terms: list[GuidanceTerm], variance: str, clip: bool, generator: torch.Generator):
        self.den, self.kind, self.schedule = denoiser, kind, schedule
        self.eta, self.cfg_scale, self.terms = float(eta), float(cfg_scale), terms
        self.variance, self.clip, self.generator = variance, clip, generator
        self.guided_steps: dict[str, int] = {}

    def _noise(self, shape) -> torch.Tensor:
        # the sampler's state is float32 whatever the network's dtype (Denoiser.predict casts)
        return torch.randn(shape, generator=self.generator).to(self.den.device, torch.float32)

    def _eps(self, x: torch.Tensor, t: int, cond, null) -> tuple[torch.Tensor, torch.Tensor | None]:
        if null is None:
            return self.den.predict(x, t, cond)
        both, v_both = self.den.predict(torch.cat([x, x]), t, torch.cat([cond, null]))
        eps_c, eps_u = both.chunk(2)
        k = self.den.cfg_channels or eps_c.shape[1]
        eps = eps_c.clone()
        eps[:, :k] = eps_u[:, :k] + self.cfg_scale * (eps_c[:, :k] - eps_u[:, :k])
        return eps, None if v_both is None else v_both.chunk(2)[0]

    def _sigma(self, i: int, v: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        ab, ab_prev = self.schedule.alpha_bar[i], self.schedule.alpha_bar_prev[i]
        shape = (len(like), *[1] * (like.ndim - 1))
        if self.kind == "ddim":
            var = (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
            return torch.full(shape, self.eta * math.sqrt(max(var, 0.0)), dtype=like.dtype, device=like.device)
        beta = 1 - ab / ab_prev
        beta_tilde = beta * (1 - ab_prev) / (1 - ab)
        if self.variance == "fixed_large":
            return torch.full(shape, math.sqrt(beta), dtype=like.dtype, device=like.device)
        if self.variance == "fixed_small":
            return torch.full(shape, math.sqrt(beta_tilde), dtype=like.dtype, device=like.device)
        # learned range; log β̃ at the last step (β̃ = 0) is clipped to the previous step's value (ADM)
        if beta_tilde <= 0 and i > 0:
            a1, a1p = self.schedule.alpha_bar[i - 1], self.schedule.alpha_bar_prev[i - 1]
            beta_tilde = (1 - a1 / a1p) * (1 - a1p) / (1 - a1)
        frac = (v.float() + 1) / 2
        log_var = frac * math.log(beta) + (1 - frac) * math.log(max(beta_tilde, 1e-20))
        return (0.5 * log_var).exp().to(like.dtype)

    def __call__(self, labels: torch.Tensor, rows: torch.Tensor, x_init: torch.Tensor | None):
        den, sched = self.den, self.schedule
        b = len(labels)
        x = self._noise((b, *den.sample_shape)) if x_init is None else x_init.to(den.device, torch.float32)
        cond = den.cond_for_labels(labels)
        null = den.null_cond(b) if self.cfg_scale != 1.0 else None
        labels_dev = labels.to(den.device)
        steps = len(sched.timesteps)
        guided: dict[str, int] = {}
        for i, t in enumerate(sched.timesteps):
            ab, ab_prev = sched.alpha_bar[i], sched.alpha_bar_prev[i]
            with torch.no_grad():
                eps, v = self._eps(x, t, cond, null)
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            last = i == steps - 1
            sigma = self._sigma(i, v, x)
            if last:
                sigma = torch.zeros_like(sigma)
            state = StepState(denoiser=den, index=i, num_steps=steps, t=t, alpha_bar=ab, alpha_bar_prev=ab_prev,
                              sigma=sigma, x_t=x, eps=eps, x0=x0, cond=cond, labels=labels_dev, rows=rows,
                              scheduler=self.kind, x0_step=x0.clamp(-1, 1) if self.clip else x0)
            total = Correction()
            for term in self.terms:
                if term.active(state):
                    c = term.correction(state)
                    guided[term.name] = guided.get(term.name, 0) + 1
                    total.x = _add(total.x, c.x)
                    total.eps = _add(total.eps, c.eps)
                    total.x_prev = _add(total.x_prev, c.x_prev)
            with torch.no_grad():
                if total.x is not None:
                    x = x + total.x
                if total.eps is not None:
                    eps = eps + total.eps
                x = self._step(i, x, eps, sigma, last)
                if total.x_prev is not None:
                    x = x + total.x_prev
        for name, count in guided.items():
            self.guided_steps[name] = count
        with torch.no_grad():
            images = den.decode(x).float()
            stats: dict[str, torch.Tensor] = {}
            for term in self.terms:
                stats.update(term.final_stats(den, images, x, rows))
        return x.detach().float().cpu(), images.detach().cpu(), stats

    def _step(self, i: int, x: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor, last: bool) -> torch.Tensor:
        ab, ab_prev = self.schedule.alpha_bar[i], self.schedule.alpha_bar_prev[i]
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        if self.clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        if self.kind == "ddim":
            direction = (1 - ab_prev - sigma ** 2).clamp_min(0).sqrt() * eps
            mean = math.sqrt(ab_prev) * x0 + direction
        else:
            beta = 1 - ab / ab_prev
            c1 = beta * math.sqrt(ab_prev) / (1 - ab)
            c2 = (1 - ab_prev) * math.sqrt(1 - beta) / (1 - ab)
            mean = c1 * x0 + c2 * x
        if last or not bool((sigma > 0).any()):
            return mean
        return mean + sigma * self._noise(x.shape)


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if b is None:
        return a
    return b if a is None else a + b
