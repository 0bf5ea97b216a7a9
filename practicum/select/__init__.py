"""Data selection: per-example scorers, selectors for a budget, and the Alchemist meta-learned rater.

- `practicum.select.scorers`: one float per example from arrays, higher = harder / more informative.
- `practicum.select.dynamics`: training records (per-epoch logits, correctness) for forgetting, AUM, EL2N.
- `practicum.select.selectors`: top-k, bottom-k, block, band, Gsample, Shift-Gsample, CCS, class-balanced.
- `practicum.select.rater`: the rater (instance + group heads) trained with a proxy on a clean split.
- `practicum.select.adaptive`: compute-adaptive keep fraction from fitted scaling laws.
- `practicum.select.defects`: seeded web-like defects for demos and benchmarks.
"""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "curate": ["CoverSettings", "DedupSettings", "LabelIssueSettings", "run_cover", "run_dedup", "run_label_issues"],
    "pipeline": ["RateSettings", "ScoreSettings", "SelectSettings", "run_rate", "run_score", "run_select"],
    "rater": ["RaterSettings", "load_rater", "train_rater"],
    "selectors": ["bottom_k", "ccs", "class_balanced", "gsample", "select", "shift_gsample", "top_k"],
})
