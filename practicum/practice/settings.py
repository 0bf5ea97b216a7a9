"""Settings of a Deliberate Practice run (`practicum practice`) and its generator.

Defaults are the small-scale ones tuned for the built-in 8x8 digits on the validation split
(see docs/benchmarks.md); the paper's ImageNet values are given in the field descriptions.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from practicum.config import Settings
from practicum.data import load_source
from practicum.diffusion.builtin import builtin_for
from practicum.learn import TrainSettings
from practicum.learn.patience import PATIENCE_RULES
from practicum.limits import MAX_IMAGE_SIZE, CfgScale, Count, GuidanceStrength, SeedValue, check_memory
from practicum.practice.generators import DiffusionGenerator
from practicum.runtime import resolve_device

BUILTIN_PRACTICE_STEPS = 10  # the digits model's sampler steps in DP runs (tuned on val; its own default is 50)


class GeneratorSettings(Settings):
    """The diffusion model and how it samples (None = the model's own recommended value)."""

    model: str = Field("builtin", description="'builtin' or a local diffusers folder (SD-1.5, DiT, UNet)")
    steps: int | None = Field(None, ge=1, le=10_000, description="sampler steps; None = 10 for the built-in digits model "
                              "(tuned), else the model's own default (SD-1.5, DiT: 50) [paper: 50]")
    cfg_scale: CfgScale | None = Field(None, description="diffusers convention s = 1 + λ (0 ≤ s ≤ 50) "
                                       "[paper: λ = 3 → s = 4]")
    eta: float | None = Field(None, ge=0)
    every: Count = Field(3, description="guide at steps i with i mod every == 0 [paper code: 5 of 30]")
    form: Literal["latent", "score"] = "latent"
    through: Literal["full", "learner"] = Field("full", description="gradient path of the entropy guidance")
    guide_start: int | None = Field(None, ge=0, description="first guided loop step (None = 0)")
    guide_stop: int | None = Field(None, description="guide only steps < this (negative: from the end); None = "
                                   "all but the last max(1, round(S/6)) steps, which are never guided by default")
    min_alpha_bar: float = Field(0.01, ge=0, lt=1, description="skip steps whose ᾱ_t is below this (x̂0 is noise)")
    shifts: int = Field(0, ge=0, le=64, description="average the guide's entropy over this many random "
                        "translations of x̂0 (0 = the paper's single view; see EntropyGuidance)")
    shard_size: Count = Field(100, description="samples per parallel generation shard")
    # precision and memory (issue 16); the device is the run's `device`
    model_dtype: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="dtype of the generator's networks")
    guidance_batch: int | None = Field(None, ge=1, description="rows per guidance backward pass (None = shard)")
    gradient_checkpointing: bool = False
    vae_slicing: bool = False
    class_map: str | None = Field(None, description="data class folder → prompt name / model class index "
                                  "(ImageNet's LOC_synset_mapping.txt, CSV or JSON); needed for WordNet-id folders")
    prompt_template: str = Field("{name}", description="SD prompt per class [paper: the class name]")

    def runtime(self) -> dict:
        return {"dtype": self.model_dtype, "gradient_checkpointing": self.gradient_checkpointing,
                "vae_slicing": self.vae_slicing}

    def sampling(self) -> dict:
        steps = self.steps if self.steps is not None or self.model != "builtin" else BUILTIN_PRACTICE_STEPS
        values = {"steps": steps, "cfg_scale": self.cfg_scale, "eta": self.eta}
        return {k: v for k, v in values.items() if v is not None}

    def guidance(self) -> dict:
        values = {"every": self.every, "form": self.form, "through": self.through, "start": self.guide_start,
                  "stop": self.guide_stop, "min_alpha_bar": self.min_alpha_bar}
        if self.shifts:  # only when used, so earlier runs' settings (and their resume checks) are unchanged
            values["shifts"] = self.shifts
        return values if self.guidance_batch is None else {**values, "micro_batch": self.guidance_batch}


class PracticeSettings(Settings):
    """One DP run (also static and dynamic-vanilla runs: `max_rounds=0` / `omega=0`)."""

    data: str = Field("fashion", description="real data: val drives patience, test is reported")
    image_size: int | None = Field(None, ge=1, le=MAX_IMAGE_SIZE,
                                   description="resize an image-folder data source to this size")
    val_size: int | None = Field(None, ge=1, description="use this many val images (a fixed random subset) for "
                                 "patience and the static grid; None = all (an evaluation costs about as much as "
                                 "100 training steps of the 28×28 CNN on the full 5k)")
    test_size: int | None = Field(None, ge=1, description="score reported points on this many test images "
                                  "(a fixed random subset); None = all")
    device: str = Field("cpu", description="learner and generator device: cpu, cuda, auto")
    seed: SeedValue = 0
    arch: str = Field("cnn", description="learner architecture (practicum.learn.ARCHS)")
    width: int | None = Field(16, description="learner width (None = the architecture's default)")
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(steps=700, batch_size=32),
                                 description="train.steps is the iteration budget I")
    initial_size: Count = Field(40, description="N: vanilla samples to start with [paper: 32k-1.3M]")
    add_size: Count = Field(40, description="P: samples added per round [paper: 16k-654k]")
    omega: GuidanceStrength = Field(0.1, description="entropy guidance strength ω (0 = dynamic-vanilla control) "
                         "[paper: 0.05; 0.1 won the validation sweep on digits]")
    t_init: Count = Field(1, description="initial patience T_init (evaluations without improvement)")
    patience_rule: str = Field("proportional", description=f"one of {PATIENCE_RULES}")
    reset_best: bool = Field(False, description="forget the best accuracy after each round")
    eval_every: int | None = Field(160, ge=1, description="τ in samples seen; None = N (one pass over the start set)")
    max_rounds: int | None = Field(None, ge=0, description="stop adding after this many rounds (0 = static run)")
    track_val: bool = Field(True, description="evaluate on val every τ samples even when no round can be added "
                            "(static runs only need it for the training-curve figure)")
    add_during_warmup: bool = Field(False, description="allow rounds during the LR warm-up (an untrained "
                                    "learner's entropy is uninformative; the paper's patience rarely fires there)")
    branch_out: bool = Field(True, description="branch out before rounds (accuracy vs data size)")
    branch_out_at: list[int] | None = Field(None, description="only before these rounds (1-based); "
                                            "None = chosen by branch_growth")
    branch_growth: float = Field(1.5, ge=1.0, description="branch out only when the pool has grown by this "
                                 "factor since the last branch (1 = before every round; 1.5 = geometric sizes)")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints; None = max(100, I/10)")
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)

    @model_validator(mode="after")
    def _check(self) -> "PracticeSettings":
        if self.patience_rule not in PATIENCE_RULES:
            raise ValueError(f"patience_rule must be one of {PATIENCE_RULES}")
        return self

    def load_data(self, split: str):
        """A real split; val and test are cut to `val_size` / `test_size` images when those are set."""
        options = {"size": self.image_size} if self.image_size is not None else {}
        data = load_source(self.data, split, **options)
        keep = {"val": self.val_size, "test": self.test_size}.get(split)
        if keep is not None and keep < len(data):
            # a fixed random subset (the same for every run and seed), so every class is represented
            data = data.subset(np.sort(np.random.default_rng(12345).permutation(len(data))[:keep]))
        return data

    def make_generator(self, data, engine: str = "local"):
        """The diffusion generator for this run, fitted to the real data's classes and image shape."""
        g = self.generator
        device = self.device if self.device != "auto" else str(resolve_device("auto"))

        model = builtin_for(g.model, self.data) if g.model == "builtin" else g.model
        return DiffusionGenerator(model, sampling=g.sampling(), guidance=g.guidance(), shard_size=g.shard_size,
                                  engine=engine, class_names=data.class_names, image_shape=data.image_shape,
                                  device=device, class_map=g.class_map, prompt_template=g.prompt_template,
                                  **g.runtime())

    @property
    def iterations(self) -> int:
        return self.train.steps

    @property
    def tau(self) -> int:
        return self.eval_every or self.initial_size

    def wants_branch(self, round_index: int, pool_size: int, last_branch_size: int | None) -> bool:
        if not self.branch_out:
            return False
        if self.branch_out_at is not None:
            return round_index in self.branch_out_at
        return last_branch_size is None or pool_size >= self.branch_growth * last_branch_size - 1e-9


def check_pool_memory(settings: PracticeSettings, image_shape) -> None:
    """Refuse a start and first round whose generated pool cannot sit in memory (it is trained on in memory)."""
    rows = settings.initial_size + settings.add_size
    check_memory(rows * (4 * math.prod(image_shape) + 64), f"a pool of {rows} generated images",
                 "lower --initial-size / --add-size")
