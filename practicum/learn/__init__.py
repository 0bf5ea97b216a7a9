"""Learners: small built-in networks (or any nn.Module), AdamW with warmup-stable-decay, EMA,
evaluation on real data, patience, and safetensors + JSON state."""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "guide": ["default_guide", "load_guide"],
    "learner": ["Learner", "TrainSettings", "train_classifier"],
    "models": ["ARCHS", "build_model", "register_arch"],
    "patience": ["Patience"],
    "schedule": ["cooldown_start", "wsd_factor"],
})
