"""Theory of data scaling: why hard data scales better, and what sets the exponent.

* `closed_form`  — the Deliberate Practice pruning theorem (Lemmas 1–2, Theorem 1 ICML form,
  Corollary 1) for a teacher–student model with a ridge learner;
* `simulation`   — its Monte-Carlo (ridge) and Sorscher et al.'s (max-margin, perceptron);
* `intrinsic_dim` — TwoNN and Levina–Bickel estimators, and the α ≈ c/D check on real data;
* `nonparametric` — the binning regression estimator and its dimension-dependent rate;
* `bounds`       — sample-complexity calculators (finite hypothesis class, smooth density);
* `composition`  — joint fits across data mixtures: shared exponent, per-mixture intercepts.
"""

from practicum.scaling.theory.closed_form import (
    RULES,
    Rule,
    Scalars,
    best_rule_for_fraction,
    corollary_error,
    error_curve,
    fraction_for_threshold,
    rule_scalars,
    rule_scalars_quadrature,
    theorem_error,
    theorem_terms,
    threshold_for_fraction,
)
from practicum.scaling.theory.simulation import (
    LEARNERS,
    SELECTIONS,
    MonteCarlo,
    Trial,
    run_trial,
    simulate,
    simulate_points,
    sorscher_point,
)

__all__ = [
    "LEARNERS", "RULES", "SELECTIONS", "MonteCarlo", "Rule", "Scalars", "Trial", "best_rule_for_fraction",
    "corollary_error", "error_curve", "fraction_for_threshold", "rule_scalars", "rule_scalars_quadrature",
    "run_trial", "simulate", "simulate_points", "sorscher_point", "theorem_error", "theorem_terms",
    "threshold_for_fraction",
]
