"""Deliberate Practice as a Lightning callback (needs `pip install 'practicum[lightning]'`).

    dp = DeliberatePractice(model, "builtin:fashion", num_classes=10, image_shape=(1, 28, 28), initial_size=400)
    trainer = L.Trainer(callbacks=[DeliberatePracticeCallback(dp, monitor="val_accuracy")], ...)
    trainer.fit(model, DataLoader(dp.pool, sampler=GrowingSampler(dp.pool, ...)), val_loader)

After each validation run the logged `monitor` value goes to `dp.step`, at the trainer's global step.
"""

from __future__ import annotations

from practicum.errors import ConfigError

try:
    from lightning.pytorch import Callback
except ImportError:
    raise ConfigError("the Lightning callback needs Lightning", "pip install 'practicum[lightning]'") from None

from practicum.practice.deliberate import DeliberatePractice


class DeliberatePracticeCallback(Callback):
    def __init__(self, dp: DeliberatePractice, monitor: str = "val_accuracy"):
        self.dp, self.monitor = dp, monitor

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise ConfigError(f"validation logged no {self.monitor!r} (it logged {sorted(trainer.callback_metrics)})",
                              f"self.log({self.monitor!r}, ...) in validation_step, or pass monitor=")
        self.dp.step(float(value), step=trainer.global_step)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.dp.close()
