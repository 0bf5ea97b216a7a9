"""Guidance terms: gradients on the predicted clean sample that steer the sampler.

A term looks at one step's state (x_t, t, ᾱ_t, ε, x̂0, ...) and returns a `Correction`:
- `x`:      a nudge added to x_t before the step (the normalised latent step of DP);
- `eps`:    a correction added to ε (classifier-guidance / score form);
- `x_prev`: a shift added to x_{t-1} after the step (MGD³'s DDPM mean shift).
Terms compose by addition and each decides when it is active (`active(state)`), so "hard and
diverse" is simply `guidance=(EntropyGuidance(...), ModeGuidance(...))`.

The interface is open: subclass `GuidanceTerm`, implement `correction(state)` (and optionally
`active` and `final_stats`) — e.g. a cross-entropy loss toward a target class — and pass it to
`sample(..., guidance=[...])`; the loop does not change.

Step indices. `state.index` counts loop steps 0..S-1 from the noisiest; `state.step` is the
respaced index of the MGD³ paper, running S-1..0 (so `step = S-1-index`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from practicum.errors import ConfigError

if TYPE_CHECKING:
    from practicum.diffusion.denoisers import Denoiser


@dataclass
class StepState:
    """Everything a guidance term may look at in one step (tensors are detached)."""

    denoiser: "Denoiser"
    index: int  # 0..S-1, noisiest first
    num_steps: int
    t: int  # the training timestep of this step
    alpha_bar: float  # ᾱ_t
    alpha_bar_prev: float  # ᾱ of the next (less noisy) step; 1 after the last
    sigma: torch.Tensor  # (B, 1, 1, 1) std of the noise the step adds (0 for DDIM η=0)
    x_t: torch.Tensor
    eps: torch.Tensor  # the (CFG-combined) noise prediction at x_t
    x0: torch.Tensor  # x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t, unclipped
    cond: torch.Tensor | None  # the conditional branch's condition (no CFG)
    labels: torch.Tensor  # class ids of the batch
    rows: torch.Tensor  # which rows of the caller's batch these are (retries redraw a subset)
    scheduler: str  # "ddim" | "ddpm"
    # The x̂0 the step's update actually uses: clipped to [-1, 1] when the model clips, else x0.
    # MGD³'s pull must use this one, or the shift and the posterior mean disagree (issue 13).
    x0_step: torch.Tensor | None = None

    @property
    def step(self) -> int:
        """MGD³'s respaced index i: S-1 at the first (noisiest) step, 0 at the last."""
        return self.num_steps - 1 - self.index


@dataclass
class Correction:
    x: torch.Tensor | None = None
    eps: torch.Tensor | None = None
    x_prev: torch.Tensor | None = None


class GuidanceTerm(ABC):
    """Base class of a guidance term. Subclasses implement `correction`."""

    name = "guidance"

    def active(self, state: StepState) -> bool:
        return True

    @abstractmethod
    def correction(self, state: StepState) -> Correction:
        """The term's contribution at this step (called only when `active(state)`)."""

    def final_stats(self, denoiser: "Denoiser", images: torch.Tensor, z0: torch.Tensor,
                    rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample statistics of the finished samples (reported in SampleOutput.stats)."""
        return {}

    def settings(self) -> dict[str, Any]:
        """Plain values describing the term (stored with generated data)."""
        return {"name": self.name}


# ---------------------------------------------------------------- entropy guidance (Deliberate Practice)

def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) per row, in nats."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def prepare_for_classifier(images: torch.Tensor, size: tuple[int, int] | None, clamp: bool = True,
                           preprocess: str = "clamp") -> torch.Tensor:
    """Decoded images → the classifier's input in [-1, 1], resized (antialiased) if needed.

    preprocess: "clamp" (default) clips to [-1, 1]; "minmax" rescales each image by its own
    min and detached max (the predecessor code's `fg_minmax`, which keeps a gradient at every
    pixel); "none" passes values through.
    """
    if preprocess == "minmax":
        flat = images.flatten(1)
        low = flat.min(dim=1).values.view(-1, *[1] * (images.ndim - 1))
        high = flat.max(dim=1).values.detach().view(-1, *[1] * (images.ndim - 1))
        images = (images - low) / (high - low + 1e-8) * 2 - 1
    elif clamp and preprocess == "clamp":
        images = images.clamp(-1, 1)
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        downsizing = images.shape[-2] > size[0] or images.shape[-1] > size[1]
        images = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False,
                               antialias=downsizing)
    return images


class _frozen_eval:
    """Context: the classifier in eval mode with frozen parameters; restored afterwards."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __enter__(self):
        self.training = self.module.training
        self.grads = [p.requires_grad for p in self.module.parameters()]
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        return self.module

    def __exit__(self, *exc):
        self.module.train(self.training)
        for p, g in zip(self.module.parameters(), self.grads):
            p.requires_grad_(g)


class EntropyGuidance(GuidanceTerm):
    """Raise (ω > 0) or lower (ω < 0) the classifier's predictive entropy of x̂0 (DP, spec §2).

    Parameters
    ----------
    classifier : nn.Module mapping images in [-1, 1] (decoded space) to logits. Pass the model
        whose accuracy is validated (the learner's eval/EMA copy); it is put in eval mode with
        frozen parameters during guidance and restored afterwards.
    omega : guidance strength ω.
    every : guide at loop steps i with i mod every == 0 (DP default 5; 1 = every step).
    form : "latent" (default) — z_t ← z_t + ω ‖z_t‖ g/(‖g‖+1e-8) per sample, then the step
        with the unguided ε; or "score" — ε̃ = ε − ω √(1−ᾱ_t) g (Dhariwal–Nichol convention;
        ω is on a different scale). g = ∇_{z_t} H, per sample (the sum of entropies is
        differentiated, so rows do not interact).
    through : "full" — the gradient flows through the learner, the decoder and a fresh
        conditional denoiser pass (no CFG), as in the paper; "learner" — ε is held fixed, so
        only the decoder and learner are differentiated (cheaper: no extra denoiser pass).
    normalize : per-sample gradient normalisation; None = the form's default (latent: on,
        score: off).
    x0_blend : feed √(1−ᾱ)·x̂0 + (1−√(1−ᾱ))·z_t to the decoder instead of x̂0; None = the form's
        default (latent: on, score: off).
    input_size : (H, W) the classifier expects; decoded images are resized when they differ.
    preprocess : "clamp" (default), "minmax" (predecessor's fg_minmax) or "none"; see
        `prepare_for_classifier`.
    start, stop : the guided window: loop steps start <= i < stop, counted every `every` from
        `start` (i − start ≡ 0 mod every). start None = 0. stop None = S − max(1, round(S/6)):
        the last steps are never guided by default, because a nudge with no denoising after it
        lands on the output pixels as a gradient attack on the guide (the predecessor guides
        steps 0–25 of 30). A negative stop counts from the end (stop=-1: all but the last
        step); stop=S guides through the last step (an ablation, not a default).
    min_alpha_bar : skip steps with ᾱ_t below this (default 0.01): there x̂0 = (x_t − √(1−ᾱ)ε)/√ᾱ
        amplifies the noise-prediction error by 1/√ᾱ, the decode clamps it and most rows get a
        zero gradient (at ᾱ ≈ 2e-9 the first step of the built-in schedule is pure noise).
    micro_batch : rows per backward pass (None = the whole batch). The gradient is computed
        chunk by chunk, so peak memory grows with the micro-batch, not the shard; rows do not
        interact (the classifier is in eval mode), so the result is the same.
    shifts : 0 (default, the paper) or k > 0: the entropy is averaged over k random translations
        of the decoded image by up to `max_shift` pixels (an expectation over transformations).
        A small CNN's input gradient on one view is mostly pixel-level texture; averaged over
        shifted views, what survives is what raises the entropy wherever it sits in the image.
        The shifts are drawn from the step index, so a sample's bytes stay a function of its seed.
    max_shift : the largest translation of `shifts`, in pixels of the classifier's input (default 2).
    """

    name = "entropy"

    def __init__(self, classifier: nn.Module, omega: float = 0.05, *, every: int = 5,
                 form: Literal["latent", "score"] = "latent", through: Literal["full", "learner"] = "full",
                 normalize: bool | None = None, x0_blend: bool | None = None,
                 input_size: tuple[int, int] | None = None, clamp: bool = True,
                 preprocess: Literal["clamp", "minmax", "none"] = "clamp",
                 start: int | None = None, stop: int | None = None, min_alpha_bar: float = 0.01,
                 micro_batch: int | None = None, shifts: int = 0, max_shift: int = 2):
        if int(shifts) < 0 or int(max_shift) < 0:
            raise ConfigError(f"guidance shifts={shifts} and max_shift={max_shift} must be >= 0")
        self.shifts, self.max_shift = int(shifts), int(max_shift)
        if micro_batch is not None and int(micro_batch) < 1:
            raise ConfigError(f"guidance micro_batch={micro_batch} must be at least 1", "give a positive integer")
        self.micro_batch = None if micro_batch is None else int(micro_batch)
        if form not in ("latent", "score"):
            raise ConfigError(f"unknown entropy guidance form {form!r}", "use 'latent' or 'score'")
        if through not in ("full", "learner"):
            raise ConfigError(f"unknown gradient path {through!r}", "use 'full' or 'learner'")
        if int(every) < 1:
            raise ConfigError(f"guidance every={every} must be at least 1")
        if preprocess not in ("clamp", "minmax", "none"):
            raise ConfigError(f"unknown preprocess {preprocess!r}", "use 'clamp', 'minmax' or 'none'")
        if start is not None and int(start) < 0:
            raise ConfigError(f"guidance start={start} must be >= 0")
        if not 0.0 <= float(min_alpha_bar) < 1.0:
            raise ConfigError(f"min_alpha_bar={min_alpha_bar} must lie in [0, 1)")
        if not math.isfinite(float(omega)):
            raise ConfigError(f"omega={omega} is not a finite number")
        self.classifier = classifier
        self.omega = float(omega)
        self.every = int(every)
        self.form = form
        self.through = through
        self.normalize = (form == "latent") if normalize is None else bool(normalize)
        self.x0_blend = (form == "latent") if x0_blend is None else bool(x0_blend)
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        self.clamp = clamp
        self.preprocess = preprocess
        self.start = None if start is None else int(start)
        self.stop = None if stop is None else int(stop)
        self.min_alpha_bar = float(min_alpha_bar)

    def window(self, num_steps: int) -> range:
        """The loop steps the schedule may guide (before the ᾱ floor): range(start, stop, every)."""
        start = self.start or 0
        if self.stop is None:
            stop = num_steps - max(1, round(num_steps / 6))
        else:
            stop = self.stop if self.stop >= 0 else num_steps + self.stop
        return range(start, min(stop, num_steps), self.every)

    def guided_steps(self, alpha_bar: list[float]) -> list[int]:
        """The loop steps that are guided for a schedule with these ᾱ_t (noisiest first)."""
        if self.omega == 0.0:
            return []
        return [i for i in self.window(len(alpha_bar)) if alpha_bar[i] >= self.min_alpha_bar]

    def active(self, state: StepState) -> bool:
        if self.omega == 0.0 or state.alpha_bar < self.min_alpha_bar:
            return False
        return state.index in self.window(state.num_steps)

    def entropy(self, images: torch.Tensor) -> torch.Tensor:
        """The classifier's entropy per image (images in decoded space; clamped/rescaled here)."""
        self._check_guide_fits(images)
        images = images.to(_param_dtype(self.classifier))  # explicit cast: generator dtype → learner dtype
        return entropy_from_logits(self.classifier(prepare_for_classifier(images, self.input_size, self.clamp,
                                                                         self.preprocess)))

    def _check_guide_fits(self, images: torch.Tensor) -> None:
        """A practicum classifier (it records its spec) must see images of the shape it was built for,
        unless `input_size` asks for a resize: a guide for other data would guide nothing."""
        spec = getattr(self.classifier, "practicum_spec", None)
        if not spec or "image_shape" not in spec:
            return
        want = tuple(int(v) for v in spec["image_shape"])
        got = tuple(images.shape[1:])
        if got[0] != want[0] or (self.input_size is None and got != want):
            raise ConfigError(f"the guide classifier was built for {'x'.join(map(str, want))} images but the "
                              f"generator makes {'x'.join(map(str, got))}",
                              "guide with a learner trained on the generator's data")

    def check_classes(self, num_classes: int | None) -> None:
        """Refuse a practicum classifier whose classes are not the generator's."""
        spec = getattr(self.classifier, "practicum_spec", None)
        if spec and num_classes and int(spec.get("num_classes", num_classes)) != int(num_classes):
            raise ConfigError(f"the guide classifier has {spec['num_classes']} classes but the generator "
                              f"{num_classes}", "guide with a learner trained on the generator's classes")

    def gradient(self, state: StepState) -> torch.Tensor:
        """g = ∇_{x_t} Σ_b H_b (row b is the gradient of sample b's entropy), in micro-batches."""
        self.check_classes(getattr(state.denoiser, "num_classes", None))
        n = len(state.x_t)
        chunk = n if self.micro_batch is None else min(n, self.micro_batch)
        # both networks frozen for the pass: the gradient flows to x_t only (no parameter grads kept)
        with _frozen_eval(self.classifier), _frozen_eval(state.denoiser):
            parts = [self._chunk_gradient(state, slice(i, min(n, i + chunk))) for i in range(0, n, chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _chunk_gradient(self, state: StepState, rows: slice) -> torch.Tensor:
        den = state.denoiser
        ab = state.alpha_bar
        with torch.enable_grad():
            z = state.x_t[rows].detach().clone().requires_grad_(True)
            if self.through == "full":
                eps = den(z, state.t, None if state.cond is None else state.cond[rows])
            else:
                eps = state.eps[rows].detach()
            x0 = (z - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if self.x0_blend:
                c = math.sqrt(1 - ab)
                x0 = c * x0 + (1 - c) * z
            # minmax rescales each image itself, so it must see the decode before any clamp
            decoded = den.decode_unclamped(x0) if self.preprocess == "minmax" else den.decode(x0)
            h = self.entropy(decoded).sum() if self.shifts == 0 else self._shifted_entropy(decoded, state.index)
            # fp16 networks: scale the loss so small gradients do not underflow on the way back
            scale = FP16_GRAD_SCALE if den.dtype == torch.float16 else 1.0
            (grad,) = torch.autograd.grad(h * scale, z)
        return grad.detach() / scale

    def _shifted_entropy(self, decoded: torch.Tensor, step: int) -> torch.Tensor:
        """Σ_b mean over `shifts` random translations of sample b's entropy (circular shifts)."""
        generator = torch.Generator().manual_seed(7919 * (step + 1))
        offsets = torch.randint(-self.max_shift, self.max_shift + 1, (self.shifts, 2), generator=generator)
        views = [torch.roll(decoded, shifts=(int(dy), int(dx)), dims=(-2, -1)) for dy, dx in offsets.tolist()]
        return torch.stack([self.entropy(v) for v in views]).mean(0).sum()

    def correction(self, state: StepState) -> Correction:
        g = self.gradient(state)
        if self.normalize:
            g = g / (_row_norm(g) + 1e-8)
        if self.form == "latent":
            scale = _row_norm(state.x_t) if self.normalize else 1.0
            return Correction(x=self.omega * scale * g)
        return Correction(eps=-self.omega * math.sqrt(1 - state.alpha_bar) * g)

    def final_stats(self, denoiser, images, z0, rows):
        with torch.no_grad(), _frozen_eval(self.classifier):
            return {"entropy": self.entropy(images).float()}

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "omega": self.omega, "every": self.every, "form": self.form,
                "through": self.through, "normalize": self.normalize, "x0_blend": self.x0_blend,
                "start": self.start, "stop": self.stop, "min_alpha_bar": self.min_alpha_bar,
                "preprocess": self.preprocess, "micro_batch": self.micro_batch, "shifts": self.shifts,
                "max_shift": self.max_shift}


FP16_GRAD_SCALE = 2.0 ** 12  # static loss scale of guidance gradients through an fp16 generator


def _param_dtype(module: nn.Module) -> torch.dtype:
    for p in module.parameters():
        return p.dtype if p.dtype.is_floating_point else torch.float32
    return torch.float32


def _row_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1).view(-1, *[1] * (x.ndim - 1))


# ---------------------------------------------------------------- mode guidance (MGD³)

class ModeGuidance(GuidanceTerm):
    """Pull x̂0 toward an assigned mode m, only while the respaced index i > t_stop (MGD³ §3–4).

    Parameters
    ----------
    modes : (B, *sample_shape), one mode per sample, in the denoiser's `encode` space.
    lam : strength λ (the direction is toward the mode: the paper's Eq. 6 sign is corrected).
    t_stop : guide while `state.step > t_stop` (step runs S-1..0); with S = 50 and t_stop = 25
        that is 24 steps. t_stop = S-1 (or more) never guides; t_stop = -1 guides every step.
    form : "mean" — x_{t-1} += λ σ_t (m − x̂0), the DDPM form of the official DiT code, σ_t the
        step's std; "eps" — ε̂ = ε − √(1−ᾱ_t) λ (m − x̂0), the DDIM form (Algorithm 1);
        "prev" — x_{t-1} += λ √ᾱ_t (m − x̂0) (the reference code's DDIM variant);
        "auto" (default) — "mean" under the DDPM sampler, "eps" under DDIM.
        "mean" needs σ_t > 0: under DDIM with η = 0 (σ = 0) it would silently do nothing, so it
        raises a ConfigError instead of falling back (use "auto"/"eps", Algorithm 1's form).

    x̂0 is the one the step's posterior mean uses (`state.x0_step`: clipped when the model clips),
    so the pull and the mean agree, as in the paper's DiT loop.
    """

    name = "mode"

    def __init__(self, modes: torch.Tensor, lam: float = 0.1, t_stop: int = 25,
                 form: Literal["auto", "mean", "eps", "prev"] = "auto"):
        if form not in ("auto", "mean", "eps", "prev"):
            raise ConfigError(f"unknown mode guidance form {form!r}", "use 'auto', 'mean', 'eps' or 'prev'")
        self.modes = torch.as_tensor(modes).detach()
        self.lam = float(lam)
        self.t_stop = int(t_stop)
        self.form = form

    def active(self, state: StepState) -> bool:
        return self.lam != 0.0 and state.step > self.t_stop

    def _direction(self, state: StepState) -> torch.Tensor:
        if self.modes.shape[1:] != state.x0.shape[1:]:
            raise ConfigError(f"modes have shape {tuple(self.modes.shape[1:])} but samples {tuple(state.x0.shape[1:])}",
                              "give modes in the denoiser's encode() space")
        x0 = state.x0 if state.x0_step is None else state.x0_step
        modes = self.modes.to(x0.device, x0.dtype)[state.rows.to(self.modes.device)]
        return modes - x0

    def correction(self, state: StepState) -> Correction:
        g = self._direction(state)
        form = self.form if self.form != "auto" else ("mean" if state.scheduler == "ddpm" else "eps")
        if form == "mean":
            last = state.index == state.num_steps - 1  # σ is 0 at the last step of every sampler
            if not last and not bool((state.sigma > 0).any()):
                raise ConfigError("mode guidance form='mean' adds λσ_t(m − x̂0), but this sampler has σ_t = 0 "
                                  "(DDIM with eta=0), so it would do nothing",
                                  "use form='auto' or 'eps' (Algorithm 1's DDIM form), or the ddpm scheduler")
            return Correction(x_prev=self.lam * state.sigma * g)
        if form == "eps":
            return Correction(eps=-math.sqrt(1 - state.alpha_bar) * self.lam * g)
        return Correction(x_prev=self.lam * math.sqrt(state.alpha_bar) * g)

    def final_stats(self, denoiser, images, z0, rows):
        modes = self.modes.to(z0.device, z0.dtype)[rows.to(self.modes.device)]
        return {"mode_distance": (z0 - modes).flatten(1).norm(dim=1).float()}

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "lam": self.lam, "t_stop": self.t_stop, "form": self.form}


@dataclass
class ClassGuidance(GuidanceTerm):
    """Example of a user term: push x̂0 toward `target` classes of a classifier (cross-entropy).

    Shown as the open-interface example; uses the learner-only gradient and the score form.
    """

    classifier: nn.Module
    target: torch.Tensor
    scale: float = 1.0
    name: str = field(default="class", init=False)

    def correction(self, state: StepState) -> Correction:
        with torch.enable_grad(), _frozen_eval(self.classifier):
            z = state.x_t.detach().clone().requires_grad_(True)
            x0 = (z - math.sqrt(1 - state.alpha_bar) * state.eps) / math.sqrt(state.alpha_bar)
            logits = self.classifier(state.denoiser.decode(x0).clamp(-1, 1))
            target = torch.as_tensor(self.target, device=logits.device)[state.rows.to(logits.device)]
            logp = F.log_softmax(logits, dim=-1).gather(1, target.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(logp, z)
        return Correction(eps=-self.scale * math.sqrt(1 - state.alpha_bar) * grad)
