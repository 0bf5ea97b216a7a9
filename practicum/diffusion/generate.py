"""`practicum generate`: entropy-guided samples into a run directory's pool.

The n requested examples are class-balanced (label i = i mod classes) and cut into shards of
`shard_size`. Each shard carries its own seed `shard_seed(seed, round, shard)` and is produced
by the top-level function `generate_shard` through `get_executor(engine).imap`, so the bytes do
not depend on the engine or on which shards were already done. Each shard is appended to
`OUT/pool` as soon as it is sampled, so an interrupted run resumes (`--resume`) at the first
missing shard; the default guide is checkpointed every 100 training steps. Without `--learner`
the guide is a small classifier trained on the train split of `--data` (default: the data a
`practicum diffusion train` model records, else the built-in Fashion-MNIST), cached in `OUT/guide/`. `--model builtin` means the
built-in generator of `--data`; a model whose image shape or classes differ from the data's is refused.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from practicum.config import Settings
from practicum.data import RunDir, load_source
from practicum.data.pool import Pool
from practicum.diffusion.builtin import builtin_for, recorded_data, sampling_defaults
from practicum.diffusion.guidance import EntropyGuidance
from practicum.diffusion.loading import load_denoiser
from practicum.diffusion.precision import prepare_denoiser
from practicum.diffusion.sampler import sample
from practicum.engine import get_executor, shard_seed
from practicum.errors import ModelError
from practicum.learn import Learner, build_model
from practicum.learn.learner import TrainSettings, read_learner_meta
from practicum.limits import MAX_COUNT, CfgScale, Count, GuidanceStrength, SeedValue, check_memory
from practicum.log import echo, logger
from practicum.runtime import parse_dtype, resolve_device
from practicum.validate import data_input, model_input


class GenerateSettings(Settings):
    n: Count = Field(1000, description="examples to generate")
    model: str = Field("builtin", description="'builtin' (the built-in generator of `data`), a folder written by "
                                              "`practicum diffusion train`, or a local diffusers folder")
    omega: GuidanceStrength = Field(0.05, description="entropy guidance strength ω (0 = vanilla samples; |ω| ≤ 100)")
    guidance_every: Count = Field(5, description="guide every k-th step")
    form: Literal["latent", "score"] = "latent"
    through: Literal["full", "learner"] = "full"
    learner: str | None = Field(None, description="a saved learner folder (Learner.save); default: train one")
    data: str = Field("fashion", description="data the generator must match; its train split trains the default guide")
    guide_steps: Count = Field(600, description="training steps of the default guide classifier")
    guide_arch: str = "cnn"
    steps: Count | None = Field(None, description="sampling steps (default: the model's)")
    cfg_scale: CfgScale | None = Field(None, description="CFG scale s, diffusers convention (λ = s - 1; 0 ≤ s ≤ 50)")
    scheduler: Literal["ddim", "ddpm"] | None = None
    eta: float | None = Field(None, ge=0)
    seed: SeedValue = 0
    round: int = Field(0, ge=0, le=MAX_COUNT)
    shard_size: Count = 100
    dtype: Literal["uint8", "float16"] = "uint8"
    # where and how the models run (issue 16): the pool's `dtype` above is the storage format
    device: str = Field("cpu", description="device of the generator and the guide: cpu, cuda, cuda:N, auto")
    model_dtype: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="dtype of the generator's networks "
                                                          "(the sampler's arithmetic and schedule stay fp32)")
    guidance_batch: int | None = Field(None, ge=1, description="rows per guidance backward pass (None = shard)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the guidance backward")
    vae_slicing: bool = Field(False, description="decode one image at a time in the VAE")


@dataclass(frozen=True)
class ShardJob:
    """One shard's work: everything a (possibly remote) worker needs, picklable."""

    name: str
    shard: int
    seed: int
    labels: tuple[int, ...]
    model: str
    learner_dir: str
    omega: float
    every: int
    form: str
    through: str
    sampling: tuple[tuple[str, Any], ...]
    device: str = "cpu"
    model_dtype: str = "fp32"
    guidance_batch: int | None = None
    gradient_checkpointing: bool = False
    vae_slicing: bool = False

    def model_key(self) -> tuple:
        return (self.model, self.device, self.model_dtype, self.gradient_checkpointing, self.vae_slicing)


_CACHE: dict[tuple[str, str], Any] = {}


def _cached(kind: str, key: str, build):
    if (kind, key) not in _CACHE:
        _CACHE[(kind, key)] = build()
    return _CACHE[(kind, key)]


def load_guide(learner_dir: str | Path) -> torch.nn.Module:
    """A saved learner's EMA network in eval mode, frozen (the guide of entropy guidance)."""
    return Learner.load(learner_dir).guide_model()


def guide_input_size(classifier: torch.nn.Module) -> tuple[int, int] | None:
    spec = getattr(classifier, "practicum_spec", None)
    return None if spec is None else tuple(spec["image_shape"][1:])


def generate_shard(job: ShardJob) -> dict[str, Any]:
    """Sample one shard (top-level so executors can ship it): images as uint8-ready floats + stats."""
    den = _cached("model", job.model_key(), lambda: prepare_denoiser(
        load_denoiser(job.model), device=job.device, dtype=job.model_dtype,
        gradient_checkpointing=job.gradient_checkpointing, vae_slicing=job.vae_slicing))
    guide = _cached("guide", (job.learner_dir, job.device),
                    lambda: load_guide(job.learner_dir).to(resolve_device(job.device)))
    term = EntropyGuidance(guide, job.omega, every=job.every, form=job.form, through=job.through,
                           input_size=guide_input_size(guide), micro_batch=job.guidance_batch)
    options = dict(sampling_defaults(den), **dict(job.sampling))
    start = time.perf_counter()
    out = sample(den, torch.tensor(job.labels), guidance=[term], seed=job.seed, **options)
    seconds = time.perf_counter() - start
    entropy = out.stats["entropy"] if "entropy" in out.stats else term.final_stats(den, out.images, out.latents,
                                                                                   torch.arange(len(job.labels)))["entropy"]
    return {"name": job.name, "images": out.images, "labels": out.labels, "entropy": entropy,
            "attempts": out.stats["attempts"], "retries": out.retries, "seconds": seconds,
            "guided_steps": out.guided_steps.get("entropy", 0), "sampling": options}


def check_model_matches_data(den, data, model: str, data_spec: str) -> None:
    """Refuse a generator whose images or classes are not the data's (the guide learns the data)."""
    if tuple(den.image_shape) != tuple(data.image_shape):
        raise ModelError(f"the model {model} makes {'x'.join(map(str, den.image_shape))} images but the data "
                         f"{data_spec} has {'x'.join(map(str, data.image_shape))}",
                         "pass --data of the kind the model was trained on, or a model trained on this data")
    if den.num_classes != data.num_classes:
        raise ModelError(f"the model {model} has {den.num_classes} classes but the data {data_spec} has "
                         f"{data.num_classes}", "pass --data of the kind the model was trained on")


def check_guide_matches_data(learner: str | Path, data, data_spec: str) -> None:
    """Refuse a saved learner whose images or classes are not the data's: it would guide nothing."""
    spec = read_learner_meta(learner).get("model_spec") or {}
    shape = tuple(spec.get("image_shape") or data.image_shape)
    classes = spec.get("num_classes", data.num_classes)
    if shape != tuple(data.image_shape) or classes != data.num_classes:
        raise ModelError(f"the learner {learner} was built for {classes} classes of {'x'.join(map(str, shape))} "
                         f"images but the data {data_spec} has {data.num_classes} of "
                         f"{'x'.join(map(str, data.image_shape))}", "guide with a learner trained on this data")


GUIDE_CHECKPOINT_EVERY = 100  # guide training steps between two checkpoints (resume granularity)


def _default_guide(run: RunDir, settings: GenerateSettings) -> Path:
    """Train (or reuse) the default guide in OUT/guide, checkpointed in OUT/guide/partial as it trains,
    so a kill during guide training (a large share of a small run) loses at most 100 steps."""
    folder = run.path / "guide"
    if (folder / "learner.json").exists():
        Learner.load(folder)  # validates the cache
        return folder
    train = load_source(settings.data, "train")
    partial = folder / "partial"
    if (partial / "learner.json").exists():
        learner = Learner.load(partial)
        logger.info("resuming the guide classifier at step %d of %d", learner.step, settings.guide_steps)
    else:
        logger.info("no --learner given: training the default guide classifier on the %s train split first "
                    "(%d steps, once; cached in %s, or pass --learner to skip it)",
                    settings.data, settings.guide_steps, folder)
        model = build_model(settings.guide_arch, train.num_classes, train.image_shape, seed=settings.seed)
        learner = Learner(model, TrainSettings.build(steps=settings.guide_steps), seed=settings.seed, device="cpu")
    while learner.step < settings.guide_steps:
        learner.fit(train, steps=min(GUIDE_CHECKPOINT_EVERY, settings.guide_steps - learner.step),
                    description=f"guide classifier, steps {learner.step + 1}-"
                                f"{min(learner.step + GUIDE_CHECKPOINT_EVERY, settings.guide_steps)} "
                                f"of {settings.guide_steps}")
        if learner.step < settings.guide_steps:
            learner.save(partial)
    val = load_source(settings.data, "val")
    run.log_metric({"event": "guide", "steps": settings.guide_steps, **learner.evaluate(val)})
    learner.save(folder)
    shutil.rmtree(partial, ignore_errors=True)
    return folder


def run_generate(settings: GenerateSettings, out: str | Path, *, engine: str = "local", resume: bool = False,
                 overwrite: bool = False, command: str | None = None) -> dict[str, Any]:
    """Generate `settings.n` examples into `out/pool`; write `out/summary.json` and return it."""
    if "data" not in settings.model_fields_set and recorded_data(settings.model):
        settings = settings.model_copy(update={"data": recorded_data(settings.model)})
        echo(f"--data not given: using {settings.data}, the data {settings.model} was trained on")
    model = builtin_for(settings.model, settings.data)
    # the pool's index and the shards' label lists hold ~100 bytes per example while sampling
    check_memory(100 * settings.n, f"generating {settings.n} examples", "lower --n, or generate in several runs")
    resolve_device(settings.device)  # fail early on a device this machine lacks
    parse_dtype(settings.model_dtype)
    key = (model, settings.device, settings.model_dtype, settings.gradient_checkpointing, settings.vae_slicing)
    den = _cached("model", key, lambda: prepare_denoiser(  # fail early on a bad model
        load_denoiser(model), device=settings.device, dtype=settings.model_dtype,
        gradient_checkpointing=settings.gradient_checkpointing, vae_slicing=settings.vae_slicing))
    if not den.num_classes:
        raise ModelError("generate needs a class-conditional model", "use the built-in model or a conditional one")
    data = load_source(settings.data, "val")
    check_model_matches_data(den, data, model, settings.data)
    if settings.learner is not None:
        check_guide_matches_data(settings.learner, data, settings.data)
    steps = settings.steps or sampling_defaults(den).get("steps", 50)
    if settings.omega != 0 and settings.guidance_every >= steps:  # say so: the samples are (nearly) unguided
        logger.warning("--guidance-every %d with %d sampling steps guides at most the first step, which the "
                       "noise floor usually skips: expect unguided samples", settings.guidance_every, steps)
    executor = get_executor(engine)
    sampling = {k: v for k, v in dict(steps=settings.steps, cfg_scale=settings.cfg_scale,
                                       scheduler=settings.scheduler, eta=settings.eta).items() if v is not None}
    inputs = {"--model": model_input(model), "--learner": settings.learner, "--data": data_input(settings.data)}
    with RunDir.create(out, settings.to_yaml(), seed=settings.seed, command=command,
                       resume=resume, overwrite=overwrite, inputs=inputs) as run:
        if settings.learner is not None:
            learner_dir = Path(settings.learner)
        else:
            learner_dir = _default_guide(run, settings)
        pool = Pool(run.sub("pool"), dtype=settings.dtype)
        labels = np.arange(settings.n) % den.num_classes
        jobs = []
        for shard, start in enumerate(range(0, settings.n, settings.shard_size)):
            name = f"r{settings.round:04d}-s{shard:05d}"
            jobs.append(ShardJob(name=name, shard=shard, seed=shard_seed(settings.seed, settings.round, shard),
                                 labels=tuple(int(v) for v in labels[start:start + settings.shard_size]),
                                 model=model, learner_dir=str(learner_dir.resolve()),
                                 omega=settings.omega, every=settings.guidance_every, form=settings.form,
                                 through=settings.through, sampling=tuple(sorted(sampling.items())),
                                 device=settings.device, model_dtype=settings.model_dtype,
                                 guidance_batch=settings.guidance_batch,
                                 gradient_checkpointing=settings.gradient_checkpointing,
                                 vae_slicing=settings.vae_slicing))
        pending = [job for job in jobs if not pool.has_shard(job.name)]
        if len(pending) < len(jobs):
            logger.info("resuming: %d of %d shards already in the pool", len(jobs) - len(pending), len(jobs))
        shard_settings = {"omega": settings.omega, "guidance_every": settings.guidance_every,
                          "form": settings.form, "through": settings.through, "model": model}
        # Each shard is committed to the pool as soon as it and every shard before it are sampled
        # (an engine may finish them out of order; the pool keeps job order): a kill loses little.
        finished: dict[int, dict[str, Any]] = {}
        committed = 0
        results = executor.imap(generate_shard, pending, description=f"generating {len(pending)} of {len(jobs)} shards")
        for position, res in results:
            finished[position] = res
            while committed in finished:
                job, res = pending[committed], finished.pop(committed)
                sampling_used = res["sampling"]
                pool.append(job.name, res["images"], res["labels"], round_index=settings.round, seeds=job.seed,
                            settings={**shard_settings, "cfg_scale": float(sampling_used["cfg_scale"]),
                                      "steps": int(sampling_used["steps"])},
                            values={"entropy": res["entropy"].numpy().astype(np.float32),
                                    "attempts": res["attempts"].numpy().astype(np.int64)},
                            class_names=den.class_names)
                run.log_metric({"event": "shard", "shard": job.name, "n": len(job.labels),
                                "seconds": res["seconds"], "retries": res["retries"],
                                "guided_steps": res["guided_steps"],
                                "mean_entropy": float(res["entropy"].mean())})
                committed += 1
        index = pool.index()
        shard_rows = {row["shard"]: row for row in run.metrics("shard")}
        seconds = sum(row["seconds"] for row in shard_rows.values())
        generated = sum(row["n"] for row in shard_rows.values())
        summary = {
            "n": int(len(index)),
            "seconds_per_image": seconds / max(1, generated),
            "mean_entropy": float(index["entropy"].mean()),
            "mean_entropy_per_class": {str(c): float(v) for c, v in index.groupby("label")["entropy"].mean().items()},
            "retries": int(sum(row["retries"] for row in shard_rows.values())),
            "shards": len(jobs),
            "engine": engine,
            "model": model,
            "data": settings.data,
            "guide": str(learner_dir),
            "omega": settings.omega,
            "guidance_every": settings.guidance_every,
            "form": settings.form,
            "through": settings.through,
        }
        run.write_json("summary.json", summary)
        run.finish(n=summary["n"])
    echo(f"{summary['n']} examples in {Path(out) / 'pool'}: mean entropy {summary['mean_entropy']:.4f} nats, "
         f"{summary['seconds_per_image'] * 1000:.1f} ms per image")
    return summary
