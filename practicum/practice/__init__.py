"""Deliberate Practice: the loop that grows a synthetic training set with samples the current
learner finds hard, its baselines, and the study that compares them."""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "generators": ["BankGenerator", "DiffusionGenerator", "FallbackGenerator", "Generation", "Request",
                 "balanced_labels"],
    "deliberate": ["DeliberatePractice"],
    "growing": ["GrowingPool", "GrowingSampler"],
    "loop": ["practice"],
    "settings": ["GeneratorSettings", "PracticeSettings"],
})
