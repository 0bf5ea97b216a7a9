"""MGD³ dataset distillation: mode discovery, mode-guided generation, the evaluation protocol, metrics.

>>> from practicum.distill import DistillSettings, run_distill
>>> summary = run_distill(DistillSettings(ipc=10), "runs/distill")   # Fashion-MNIST, all six methods, 3 seeds
>>> summary["methods"]["mgd3"]["accuracy_mean"]

Modules: `modes` (k-means / GMM modes in the generator's encode() space), `methods` (the six
methods, one class shard at a time, through practicum.diffusion's one guided sampler),
`protocol` (protocols A and B: students, DSA / CutMix, epochs, final vs best-and-last, KD),
`metrics` (diversity, representativeness in one joint embedding per class), `figures`,
`pipeline` (the run directory behind `practicum distill`).
"""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "methods": ["GENERATED_METHODS", "METHODS", "REAL_METHODS"],
    "metrics": ["distillation_scores", "joint_scores"],
    "modes": ["class_modes", "discover_modes"],
    "pipeline": ["DistillSettings", "run_distill"],
    "protocol": ["StudentSettings", "epochs_for_ipc", "train_student", "train_teacher"],
})
