"""MGD³ dataset distillation: mode discovery, mode-guided generation, the evaluation protocol, metrics.

>>> from practicum.distill import DistillSettings, run_distill
>>> summary = run_distill(DistillSettings(ipc=10), "runs/distill")   # all five methods, 3 seeds
>>> summary["methods"]["mgd3"]["accuracy_mean"]

Modules: `modes` (k-means / GMM modes in the generator's encode() space), `generate` (the five
methods, one class shard at a time), `sampler` (the spec's respaced DDPM/DDIM loop with mode and
stop guidance, a reference for the engine's), `protocol` (students, augmentation, CutMix, the
epoch rule, best-vs-last reporting, KD), `metrics` (diversity, representativeness), `figures`,
`pipeline` (the run directory behind `practicum distill`).
"""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "generate": ["GENERATED_METHODS", "METHODS", "REAL_METHODS"],
    "metrics": ["distillation_scores"],
    "modes": ["class_modes", "discover_modes"],
    "pipeline": ["DistillSettings", "run_distill"],
    "protocol": ["StudentSettings", "epochs_for_ipc", "train_student", "train_teacher"],
    "sampler": ["mode_guided_sample"],
})
