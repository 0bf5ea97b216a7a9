"""Guided diffusion: denoiser adapters, the guided DDIM/DDPM loop, composable guidance terms.

>>> from practicum.diffusion import load_denoiser, sample, EntropyGuidance
>>> den = load_denoiser("builtin")
>>> out = sample(den, labels=[0, 1, 2], steps=50, cfg_scale=2.0,
...              guidance=[EntropyGuidance(classifier, omega=0.05, every=5)], seed=0)
>>> out.images, out.stats["entropy"], out.retries
"""

from practicum.diffusion.denoisers import (
    Denoiser,
    DiTDenoiser,
    PixelUNetDenoiser,
    StableDiffusionDenoiser,
    build_denoiser,
    encode_prompts,
    load_denoiser,
)
from practicum.diffusion.guidance import (
    ClassGuidance,
    Correction,
    EntropyGuidance,
    GuidanceTerm,
    ModeGuidance,
    StepState,
    entropy_from_logits,
    prepare_for_classifier,
)
from practicum.diffusion.sampler import SCHEDULERS, SampleOutput, make_schedule, sample

__all__ = [
    "SCHEDULERS", "ClassGuidance", "Correction", "Denoiser", "DiTDenoiser", "EntropyGuidance", "GuidanceTerm",
    "ModeGuidance", "PixelUNetDenoiser", "SampleOutput", "StableDiffusionDenoiser", "StepState", "build_denoiser",
    "encode_prompts", "entropy_from_logits", "load_denoiser", "make_schedule", "prepare_for_classifier", "sample",
]
