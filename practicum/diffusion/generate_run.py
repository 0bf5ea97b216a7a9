"""`practicum generate`: entropy-guided samples into a run directory's pool.

The n requested examples are class-balanced (label i = i mod classes) and cut into shards of
`shard_size`. Each shard carries its own seed `shard_seed(seed, round, shard)` and is sampled by
the generation service (`practicum.diffusion.service.sample_shard`) through
`get_executor(engine).imap`, so the bytes do not depend on the engine or on which shards were
already done. Each shard is appended to `OUT/pool` as soon as it is sampled, so an interrupted
run resumes (`--resume`) at the first missing shard. Without `--learner` the guide is a small classifier trained on the train split of
`--data` (default: the data a `practicum diffusion train` model records, else the built-in
Fashion-MNIST), cached in `OUT/guide/` (`practicum.learn.guide`). `--model builtin` means the
built-in generator of `--data`; a model whose image shape or classes differ from the data's is refused.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from practicum.config import Settings
from practicum.data import RunDir, load_source
from practicum.data.pool import Pool
from practicum.diffusion.builtin import builtin_for, recorded_data, sampling_defaults
from practicum.diffusion.guidance import EntropyGuidance
from practicum.diffusion.service import GenerationJob, ModelSpec, bind_model, load_model, sample_shard
from practicum.engine import get_executor, shard_seed
from practicum.errors import ModelError
from practicum.learn.guide import check_guide_matches_data, default_guide, guide_input_size, load_guide
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
    data = load_source(settings.data, "val")
    spec = ModelSpec(model, device=settings.device, dtype=settings.model_dtype,
                     gradient_checkpointing=settings.gradient_checkpointing, vae_slicing=settings.vae_slicing)
    bound = bind_model(spec, data.class_names, data.image_shape, data=f"the data {settings.data}")
    den = bound.denoiser
    if not den.num_classes:
        raise ModelError("generate needs a class-conditional model", "use the built-in model or a conditional one")
    if settings.learner is not None:
        check_guide_matches_data(settings.learner, data, settings.data)
    steps = settings.steps or sampling_defaults(den).get("steps", 50)
    if settings.omega != 0 and settings.guidance_every >= steps:  # say so: the samples are (nearly) unguided
        logger.warning("--guidance-every %d with %d sampling steps guides at most the first step, which the "
                       "noise floor usually skips: expect unguided samples", settings.guidance_every, steps)
    executor = get_executor(engine)
    overrides = {"steps": settings.steps, "cfg_scale": settings.cfg_scale, "scheduler": settings.scheduler,
                 "eta": settings.eta}
    sampling = {**sampling_defaults(den), **{k: v for k, v in overrides.items() if v is not None}}
    inputs = {"--model": model_input(model), "--learner": settings.learner, "--data": data_input(settings.data)}
    with RunDir.create(out, settings.to_yaml(), seed=settings.seed, command=command,
                       resume=resume, overwrite=overwrite, inputs=inputs) as run:
        if settings.learner is not None:
            learner_dir = Path(settings.learner)
        else:
            learner_dir = default_guide(run, settings.data, steps=settings.guide_steps, arch=settings.guide_arch,
                                        seed=settings.seed)
        guide = load_guide(learner_dir).to(den.device)
        term = EntropyGuidance(guide, settings.omega, every=settings.guidance_every, form=settings.form,
                               through=settings.through, input_size=guide_input_size(guide),
                               micro_batch=settings.guidance_batch)
        pool = Pool(run.sub("pool"), dtype=settings.dtype)
        labels = np.arange(settings.n) % den.num_classes
        names, jobs = [], []
        for shard, start in enumerate(range(0, settings.n, settings.shard_size)):
            names.append(f"r{settings.round:04d}-s{shard:05d}")
            jobs.append(GenerationJob(labels=tuple(int(v) for v in labels[start:start + settings.shard_size]),
                                      seed=shard_seed(settings.seed, settings.round, shard),
                                      sampling=tuple(sorted(sampling.items())), guidance=(term,)))
        pending = [shard for shard, name in enumerate(names) if not pool.has_shard(name)]
        if len(pending) < len(jobs):
            logger.info("resuming: %d of %d shards already in the pool", len(jobs) - len(pending), len(jobs))
        shard_settings = {"omega": settings.omega, "guidance_every": settings.guidance_every,
                          "form": settings.form, "through": settings.through, "model": model,
                          "cfg_scale": float(sampling["cfg_scale"]), "steps": int(sampling["steps"])}
        # Each shard is committed to the pool as soon as it and every shard before it are sampled
        # (an engine may finish them out of order; the pool keeps job order): a kill loses little.
        finished: dict[int, dict[str, Any]] = {}
        committed = 0
        results = executor.imap(sample_shard, [jobs[shard] for shard in pending], setup=partial(load_model, bound.spec),
                                description=f"generating {len(pending)} of {len(jobs)} shards")
        for position, res in results:
            finished[position] = res
            while committed in finished:
                shard, res = pending[committed], finished.pop(committed)
                entropy = res["stats"]["entropy"]
                pool.append(names[shard], res["images"], res["labels"], round_index=settings.round,
                            seeds=jobs[shard].seed, settings=shard_settings,
                            values={"entropy": entropy.numpy().astype(np.float32),
                                    "attempts": res["stats"]["attempts"].numpy().astype(np.int64)},
                            class_names=den.class_names)
                run.log_metric({"event": "shard", "shard": names[shard], "n": len(jobs[shard].labels),
                                "seconds": res["seconds"], "retries": res["retries"],
                                "guided_steps": res["guided_steps"].get("entropy", 0),
                                "mean_entropy": float(entropy.mean())})
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
