"""The MGD³ reference loop (spec §3–§5), kept only as a test oracle for practicum's one sampler.

Issue 13: the package has one sampling loop (`practicum.diffusion.sample` with `ModeGuidance`);
this loop, written straight from the spec, checks it — DDIM with the eps form and DDPM with
clipping and the mean form (the default path of the built-in models). It works with any noise predictor

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

import math

import pytest

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




# ---------------------------------------------------------------- the reference sampler (spec §3–§4)

def test_respaced_timesteps_match_the_spec():
    tau = respaced_timesteps(1000, 50)
    assert list(tau[:3]) == [0, 20, 41] and tau[-1] == 999 and len(tau) == 50


def test_learned_range_variance_endpoints():
    sched = RespacedSchedule.build(linear_alphas_cumprod(), 50)
    for i in (1, 10, 49):
        lo = sched.log_variance(i, torch.tensor(-1.0))
        hi = sched.log_variance(i, torch.tensor(1.0))
        assert float(lo) == pytest.approx(math.log(float(sched.posterior_variance[i])))
        assert float(hi) == pytest.approx(math.log(float(sched.beta[i])))
    # the posterior log-variance at i = 0 is clipped to β̃'_1
    assert float(sched.log_posterior_variance[0]) == pytest.approx(math.log(float(sched.posterior_variance[1])))


_ALPHA_BAR = linear_alphas_cumprod()


def _toy_eps(x, t, labels):
    # the exact noise predictor when the data are N(0, I): ε = √(1−ᾱ_t) x_t, so x̂0 = √ᾱ_t x_t
    ab = _ALPHA_BAR[t].float().view(-1, 1, 1, 1)
    return (1 - ab).sqrt() * x


def _run(lam, modes, t_stop=2, form="ddpm", steps=6, trace=None):
    return mode_guided_sample(_toy_eps, torch.zeros(4, dtype=torch.long), (1, 4, 4),
                              alphas_cumprod=_ALPHA_BAR, seeds=[0, 1, 2, 3], steps=steps,
                              modes=modes, lam=lam, t_stop=t_stop, form=form, on_step=trace)


def test_lambda_zero_equals_the_unguided_sampler_exactly():
    modes = torch.ones(4, 1, 4, 4)
    for form in ("ddpm", "ddim"):
        plain = _run(0.0, None, form=form)
        zero = _run(0.0, modes, form=form)
        assert torch.equal(plain.samples, zero.samples) and zero.guided_steps == []


@pytest.mark.parametrize("form", ["ddpm", "ddim"])
def test_a_guided_step_moves_towards_the_mode(form):
    modes = torch.full((4, 1, 4, 4), 0.8)
    # one step from the same noise: compare x̂0 at the second step with and without guidance
    seen = {}

    def recorder(key):
        def on_step(i, x0, guided):
            seen.setdefault(key, []).append(x0.clone())
        return on_step

    _run(0.0, modes, t_stop=-1, form=form, trace=recorder("free"))
    _run(0.3, modes, t_stop=-1, form=form, trace=recorder("guided"))
    d_free = (seen["free"][1] - modes).flatten(1).norm(dim=1)
    d_guided = (seen["guided"][1] - modes).flatten(1).norm(dim=1)
    assert torch.equal(seen["free"][0], seen["guided"][0])  # same start
    assert (d_guided < d_free).all()
    # and the final samples end closer to their modes
    final_free = (_run(0.0, modes, t_stop=-1, form=form).samples - modes).flatten(1).norm(dim=1)
    final_guided = (_run(0.3, modes, t_stop=-1, form=form).samples - modes).flatten(1).norm(dim=1)
    assert (final_guided < final_free).all()


def test_stop_window_guides_the_first_steps_only():
    modes = torch.zeros(4, 1, 4, 4)
    for steps, t_stop in ((50, 25), (10, 5), (10, 0), (10, -1), (10, 9)):
        trace = _run(0.1, modes, t_stop=t_stop, steps=steps)
        assert len(trace.guided_steps) == max(0, steps - 1 - t_stop)
        assert all(i > t_stop for i in trace.guided_steps)  # the high-noise end, i = S-1 down
        assert trace.guided_steps == sorted(trace.guided_steps, reverse=True)


def test_sampler_rejects_bad_settings():
    with pytest.raises(ConfigError):
        _run(0.1, torch.zeros(4, 1, 4, 4), form="euler")
    with pytest.raises(ConfigError):
        mode_guided_sample(_toy_eps, torch.zeros(2, dtype=torch.long), (1, 4, 4),
                           alphas_cumprod=linear_alphas_cumprod(), seeds=[0], steps=4)




# ---------------------------------------------------------------- the engine against this oracle

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random class-conditional pixel UNet that clips x̂0 (like the built-in models)."""
    from tiny_models import save_tiny_pixel_unet

    return save_tiny_pixel_unet(tmp_path_factory.mktemp("tiny_unet_ref"))


def _eps_fn(den):
    def eps_fn(x, t, labels):
        return den.predict(x, t, den.cond_for_labels(labels))
    return eps_fn


def test_engine_matches_the_oracle_ddim_eps_form(tiny_model):
    """DDIM (η = 0), no clipping, the eps form (Algorithm 1)."""
    from practicum.diffusion import ModeGuidance, load_denoiser, sample

    den = load_denoiser(tiny_model).eval()
    labels, seeds = torch.tensor([0, 3, 7]), [11, 12, 13]
    modes = torch.linspace(-0.5, 0.5, 64).reshape(1, 1, 8, 8).repeat(3, 1, 1, 1)
    ours = mode_guided_sample(_eps_fn(den), labels, (1, 8, 8), alphas_cumprod=den.alphas_cumprod,
                              seeds=seeds, steps=8, modes=modes, lam=0.2, t_stop=3, form="ddim")
    noise = torch.stack([torch.randn((1, 8, 8), generator=torch.Generator().manual_seed(s)) for s in seeds])
    theirs = sample(den, labels, steps=8, scheduler="ddim", eta=0.0, timestep_spacing="linspace", noise=noise,
                    clip_sample=False, guidance=[ModeGuidance(modes, lam=0.2, t_stop=3, form="eps")], seed=0)
    assert ours.guided_steps == [7, 6, 5, 4] and theirs.guided_steps["mode"] == 4
    np.testing.assert_allclose(ours.samples.numpy(), theirs.latents.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_engine_matches_the_oracle_ddpm_with_clipping(tiny_model, lam):
    """The default path: DDPM, the model clips x̂0, the mean form pulls with that same clipped x̂0."""
    from practicum.diffusion import ModeGuidance, load_denoiser, sample

    den = load_denoiser(tiny_model).eval()
    assert den.clip_sample
    modes = torch.linspace(-0.8, 0.8, 64).reshape(1, 1, 1, 8, 8)
    for label, seed in ((0, 5), (4, 6)):
        ours = mode_guided_sample(_eps_fn(den), torch.tensor([label]), (1, 8, 8), alphas_cumprod=den.alphas_cumprod,
                                  seeds=[seed], steps=8, modes=modes[0], lam=lam, t_stop=3, form="ddpm",
                                  clip_x0=True)
        theirs = sample(den, [label], steps=8, scheduler="ddpm", timestep_spacing="linspace", seed=seed,
                        guidance=[ModeGuidance(modes[0], lam=lam, t_stop=3, form="mean")])
        np.testing.assert_allclose(ours.samples.numpy(), theirs.latents.numpy(), rtol=1e-4, atol=1e-4)
        assert theirs.guided_steps.get("mode", 0) == (4 if lam else 0)


def test_clipped_pull_keeps_the_first_steps_bounded(tiny_model):
    """At ᾱ ≈ 4e-5 the unclipped x̂0 is ~150× x_t; pulling with it blew x_t up (issue 13)."""
    from practicum.diffusion import ModeGuidance, load_denoiser, sample

    den = load_denoiser(tiny_model).eval()
    modes = torch.zeros(1, 1, 8, 8)
    seen = []

    class Spy(ModeGuidance):
        def correction(self, state):
            seen.append((state.x0.abs().max().item(), state.x0_step.abs().max().item()))
            return super().correction(state)

    out = sample(den, [1], steps=8, scheduler="ddpm", timestep_spacing="linspace", seed=3,
                 guidance=[Spy(modes, lam=0.5, t_stop=-1, form="mean")])
    assert seen[0][0] > 10 and seen[0][1] <= 1.0  # the raw x̂0 is huge, the step's x̂0 is clipped
    assert float(out.latents.abs().max()) <= 1.5


def test_mean_form_without_noise_is_refused(tiny_model):
    from practicum.diffusion import ModeGuidance, load_denoiser, sample

    den = load_denoiser(tiny_model).eval()
    with pytest.raises(ConfigError, match="σ_t = 0"):
        sample(den, [1], steps=4, scheduler="ddim", eta=0.0, seed=0,
               guidance=[ModeGuidance(torch.zeros(1, 1, 8, 8), lam=0.1, t_stop=-1, form="mean")])
    # "auto" under DDIM is Algorithm 1's eps form and guides
    out = sample(den, [1], steps=4, scheduler="ddim", eta=0.0, seed=0,
                 guidance=[ModeGuidance(torch.zeros(1, 1, 8, 8), lam=0.1, t_stop=-1, form="auto")])
    assert out.guided_steps["mode"] == 4
