"""Deliberate Practice as a Hugging Face `TrainerCallback` (needs `pip install 'practicum[hf]'`).

    dp = DeliberatePractice(model, "builtin:fashion", num_classes=10, image_shape=(1, 28, 28), initial_size=400)
    dp.pool.keys = ("pixel_values", "labels")            # the Trainer's batches are dicts
    trainer = Trainer(model, args, train_dataset=dp.pool, eval_dataset=val, compute_metrics=accuracy,
                      callbacks=[DeliberatePracticeCallback(dp, metric="eval_accuracy")])

After each evaluation the `metric` value goes to `dp.step`, at the trainer's global step. The
Trainer shuffles each epoch anew, so a round joins the batches from the next epoch.
"""

from __future__ import annotations

from practicum.errors import ConfigError

try:
    from transformers import TrainerCallback
except ImportError:
    raise ConfigError("the Trainer callback needs transformers", "pip install 'practicum[hf]'") from None

from practicum.practice.deliberate import DeliberatePractice


class DeliberatePracticeCallback(TrainerCallback):
    def __init__(self, dp: DeliberatePractice, metric: str = "eval_accuracy"):
        self.dp, self.metric = dp, metric

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is None:
            raise ConfigError(f"the evaluation returned no {self.metric!r} (it returned {sorted(metrics or {})})",
                              "compute it in compute_metrics, or pass metric=")
        self.dp.step(float(value), step=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.dp.close()
