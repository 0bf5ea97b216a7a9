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

from practicum.distill.generate import GENERATED_METHODS, METHODS, REAL_METHODS
from practicum.distill.metrics import distillation_scores
from practicum.distill.modes import class_modes, discover_modes
from practicum.distill.pipeline import DistillSettings, run_distill
from practicum.distill.protocol import StudentSettings, epochs_for_ipc, train_student, train_teacher
from practicum.distill.sampler import mode_guided_sample

__all__ = [
    "GENERATED_METHODS", "METHODS", "REAL_METHODS", "DistillSettings", "StudentSettings", "class_modes",
    "discover_modes", "distillation_scores", "epochs_for_ipc", "mode_guided_sample", "run_distill",
    "train_student", "train_teacher",
]
