"""Guided diffusion: denoiser adapters, the guided DDIM/DDPM loop, composable guidance terms.

>>> from practicum.diffusion import load_denoiser, sample, EntropyGuidance
>>> den = load_denoiser("builtin")
>>> out = sample(den, labels=[0, 1, 2], steps=50, cfg_scale=2.0,
...              guidance=[EntropyGuidance(classifier, omega=0.05, every=5)], seed=0)
>>> out.images, out.stats["entropy"], out.retries
"""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "denoisers": ["Denoiser", "DiTDenoiser", "PixelUNetDenoiser", "StableDiffusionDenoiser", "build_denoiser",
                  "encode_prompts"],
    "loading": ["load_denoiser"],
    "guidance": ["ClassGuidance", "Correction", "EntropyGuidance", "GuidanceTerm", "ModeGuidance", "StepState",
                 "entropy_from_logits", "prepare_for_classifier"],
    "sampler": ["SCHEDULERS", "SampleOutput", "make_schedule", "sample"],
    "service": ["GenerationJob", "ModelSpec", "bind_model", "load_model", "register_model", "sample_shard"],
})
