"""`practicum distill`: discover modes, make every method's distilled set, evaluate, report.

The run directory:

```
runs/<name>/
  config.yaml  run.json  metrics.jsonl
  modes/modes.safetensors, modes.json   the per-class modes (k-means seed 0: the same for every seed)
  pool/                                  every distilled set: shard "<method>-seed<k>" + index.parquet
  results/<method>-seed<k>.json          one finished unit (set made, metrics, student trained)
  figures/*.png  summary.json  report.html
```

Each (method, seed) unit is saved atomically when it finishes; a rerun with `--resume` skips
finished units and reuses a distilled set already in the pool, so an interrupted run ends in the
same state as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from practicum.config import Settings
from practicum.data import Dataset, RunDir, atomic_write_with, load_source
from practicum.data.pool import Pool
from practicum.diffusion.builtin import builtin_for, sampling_defaults
from practicum.diffusion.service import BoundModel, ModelSpec, bind_model, load_model, sample_shard
from practicum.distill.literature import channel_stats
from practicum.distill.methods import GENERATED_METHODS, METHODS, class_job, real_selection
from practicum.distill.metrics import METRIC_SPACES, joint_scores
from practicum.distill.modes import MODE_METHODS, class_modes, nearest_rows
from practicum.distill.protocol import StudentSettings, build_student, summarise, train_student, train_teacher
from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError, DataError
from practicum.learn.models import check_arch
from practicum.limits import MAX_CFG_SCALE, MAX_GUIDANCE, MAX_IMAGE_SIZE, Count, SeedValue, check_memory
from practicum.log import echo, logger, progress
from practicum.stats import paired_difference
from practicum.validate import data_input, model_input

DIGITS = ("digits", "builtin", "builtin:digits")

# The defaults `practicum distill` samples with, per data: λ, t_stop (as a fraction of the steps: guide while
# i > t_stop) and the CFG scale chosen on that data's tune split by benchmarks/distill_<data>.py phase 1, at the
# step count they were tuned for (docs/benchmarks.md, issue 13). Other data get the paper's λ = 0.1 and
# t_stop = S/2 (25 of 50) with the model's recommended CFG (None → its sidecar or model defaults).
TUNED = {
    "fashion": {"lam": 0.3, "t_stop_fraction": 0.7, "cfg_scale": 4.0, "steps": 20},
    "digits": {"lam": 1.0, "t_stop_fraction": 0.2, "cfg_scale": None, "steps": 50},
    "paper": {"lam": 0.1, "t_stop_fraction": 0.5, "cfg_scale": None, "steps": 50},
}


def tuned_defaults(data: str) -> dict:
    """The tuned sampling settings of a data source ('paper' for data that was never tuned)."""
    key = "digits" if data in DIGITS else data
    return TUNED.get(key, TUNED["paper"])


class DistillSettings(Settings):
    data: str = "fashion"
    image_size: int | None = Field(default=None, ge=4, le=MAX_IMAGE_SIZE, description="resize the user's images")
    model: str = "builtin"
    ipc: Count = 10
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    seeds: list[SeedValue] = Field(default_factory=lambda: [0, 1, 2], max_length=1000)
    # mode discovery (spec §2)
    mode_method: Literal["kmeans", "gmm", "random"] = "kmeans"
    closest_point: bool = False
    pca: int | None = Field(default=None, ge=1)
    hflip: bool = Field(default=False, description="random flips before mode discovery (spec §2; off unless "
                                                   "asked: shoes and bags face one way)")
    modes_file: str | None = Field(default=None, description="precomputed centres: safetensors with 'centres' "
                                                            "(classes, ipc, *sample_shape)")
    shared_noise: bool = Field(default=False, description="the same noise for every class (off: per-class noise)")
    # generation (spec §3–§5)
    lam: float | None = Field(default=None, ge=0, le=MAX_GUIDANCE, description="None: the data's tuned λ (TUNED)")
    t_stop: int | None = Field(default=None, ge=-1, description="None: the data's tuned fraction of the steps")
    steps: int | None = Field(default=None, ge=1, le=10_000,
                              description="None: the data's tuned step count (50 if untuned)")
    scheduler: Literal["ddpm", "ddim"] = "ddpm"
    form: Literal["auto", "mean", "eps"] = "auto"
    timestep_spacing: str | None = "linspace"
    cfg_scale: float | None = Field(default=None, ge=1, le=MAX_CFG_SCALE,
                                    description="None: the data's tuned scale, else the model's recommended one")
    # where and how the generator runs; how data classes reach it (issue 16)
    device: str = Field(default="cpu", description="cpu, cuda, cuda:N or auto: where generation and students run")
    model_dtype: Literal["fp32", "bf16", "fp16"] = Field(default="fp32", description="generator network dtype")
    class_map: str | None = Field(default=None, description="data class folder → model class (index) and "
                                  "prompt name: LOC_synset_mapping.txt, CSV or JSON (see model_defaults)")
    prompt_template: str = Field(default="{name}", description="prompt of a text-conditioned model")
    # evaluation (spec §7; protocol A or B, see practicum.distill.protocol)
    student: StudentSettings = Field(default_factory=StudentSettings)
    eval_split: Literal["test", "val", "tune"] = "test"
    tsne_real_per_class: int | None = Field(default=500, ge=10, description="real rows per class in the joint t-SNE")
    metric_spaces: list[str] = Field(default_factory=lambda: list(METRIC_SPACES))
    metric_features: Literal["encoder", "classifier"] = "encoder"

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METHODS]
        if unknown or not value:
            raise ValueError(f"unknown or no methods {unknown}; use some of {', '.join(METHODS)}")
        return list(dict.fromkeys(value))

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value: list[int]) -> list[int]:
        if not value or len(set(value)) != len(value):
            raise ValueError("give one or more distinct seeds")
        return value

    @field_validator("metric_spaces")
    @classmethod
    def _known_spaces(cls, value: list[str]) -> list[str]:
        if any(v not in METRIC_SPACES for v in value):
            raise ValueError(f"metric spaces must be among {', '.join(METRIC_SPACES)}")
        return value

    def resolved(self) -> "DistillSettings":
        """Fill the automatic values so config.yaml records what actually ran."""
        if self.form == "mean" and self.scheduler == "ddim":
            raise ConfigError("form 'mean' adds λσ_t(m − x̂0), and DDIM (η = 0) has σ_t = 0: it would do nothing",
                              "use form 'auto' or 'eps' with ddim, or the ddpm scheduler")
        model = builtin_for(self.model, self.data) if self.model == "builtin" and self.data not in DIGITS \
            else self.model
        tuned = tuned_defaults(self.data)
        steps = self.steps if self.steps is not None else tuned["steps"]
        t_stop = self.t_stop if self.t_stop is not None else int(round(tuned["t_stop_fraction"] * steps))
        lam = self.lam if self.lam is not None else tuned["lam"]
        cfg_scale = self.cfg_scale if self.cfg_scale is not None else tuned["cfg_scale"]
        if lam > 0 and not -1 <= t_stop < steps - 1:
            raise ConfigError(f"--t-stop {t_stop} with {steps} steps guides no step (guidance runs while the step "
                              f"index exceeds t_stop)", f"give --t-stop between -1 and {steps - 2}")
        # protocol B's student flips stay off for digits (not mirror-symmetric), as before issue 13
        student = self.student.model_copy(update={"device": self.device,
                                                  "hflip": self.student.hflip and self.data not in DIGITS})
        return self.model_copy(update={"t_stop": t_stop, "lam": lam, "steps": steps, "cfg_scale": cfg_scale,
                                       "model": model, "student": student})


# ---------------------------------------------------------------- pieces

def load_splits(settings: DistillSettings) -> tuple[Dataset, Dataset]:
    options = {} if settings.image_size is None or settings.data in DIGITS or settings.data == "fashion" \
        else {"size": settings.image_size}
    train = load_source(settings.data, "train", **options)
    evaluation = load_source(settings.data, settings.eval_split, **options)
    if len(evaluation) == 0:
        raise DataError(f"the {settings.eval_split} split of {settings.data} is empty",
                        "give data with a test split (or enough images to split)")
    short = [c for c, n in enumerate(train.class_counts()) if n < settings.ipc]
    if short:
        raise DataError(f"classes {short} have fewer than ipc={settings.ipc} training images",
                        "lower --ipc or add images")
    return train, evaluation


def open_model(settings: DistillSettings, train: Dataset) -> BoundModel:
    """The generator, bound to the train split's classes (prompts, model class ids) and image shape."""
    spec = ModelSpec(settings.model, device=settings.device, dtype=settings.model_dtype)
    return bind_model(spec, train.class_names, train.image_shape, data=f"the data {settings.data}",
                      class_map=settings.class_map, prompt_template=settings.prompt_template)


@torch.no_grad()
def encode(den, images: torch.Tensor, batch: int = 256, description: str | None = None) -> torch.Tensor:
    parts = []
    chunks = range(0, len(images), batch)
    for start in (progress(chunks, description) if description else chunks):
        parts.append(den.encode(images[start:start + batch].to(den.device, den.dtype)).float().cpu())
    return torch.cat(parts) if parts else torch.empty(0)


def discover(settings: DistillSettings, den, train: Dataset, run: RunDir):
    """Per-class modes in encode() space, saved in the run (modes/); loaded again on resume."""
    folder = run.sub("modes")
    path, meta_path = folder / "modes.safetensors", "modes/modes.json"
    meta = run.read_json(meta_path)
    if path.exists() and meta is not None:
        stored = load_file(path)
        return stored["centres"], np.asarray(meta["nearest"]), float(meta["seconds"])
    start = time.perf_counter()
    if settings.modes_file is not None:
        return _load_centres(settings, den, train, run, path, meta_path)
    images = clustered_images(settings, train)
    features = encode(den, images, description="encoding the train split")
    modes = class_modes(features.reshape(len(features), -1).numpy(), train.labels.numpy(), settings.ipc,
                        train.num_classes, method=settings.mode_method, closest_point=settings.closest_point,
                        pca=settings.pca, random_state=0)
    centres = torch.from_numpy(np.stack([m.centres for m in modes])).reshape(
        train.num_classes, settings.ipc, *features.shape[1:])
    nearest = np.stack([m.nearest for m in modes])
    seconds = time.perf_counter() - start
    atomic_write_with(path, lambda tmp: save_file({"centres": centres.contiguous()}, tmp))
    run.write_json(meta_path, {"method": settings.mode_method, "nearest": nearest, "seconds": seconds,
                               "nearest_ids": train.ids[nearest]})
    return centres, nearest, seconds


def clustered_images(settings: DistillSettings, train: Dataset) -> torch.Tensor:
    """The training images exactly as mode discovery sees them (randomly flipped, seed 0, if `hflip`).

    kmeans-nearest-real takes its images from here, so it returns what was clustered.
    """
    images = train.images
    if settings.hflip:  # spec §2's random horizontal flip; off unless asked
        flip = torch.rand(len(images), generator=torch.Generator().manual_seed(0)) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    return images


def _load_centres(settings: DistillSettings, den, train: Dataset, run: RunDir, path: Path, meta_path: str):
    """Precomputed centres (spec §2 option): checked against the model's sample shape, then stored in the run."""
    source = Path(settings.modes_file)
    if not source.is_file():
        raise DataError(f"modes file {source} does not exist", "give a safetensors file with a 'centres' tensor")
    try:
        centres = load_file(source).get("centres")
    except (SafetensorError, OSError) as exc:
        raise DataError(f"cannot read {source} as safetensors ({exc})") from None
    expected = (train.num_classes, settings.ipc, *den.sample_shape)
    if centres is None or tuple(centres.shape) != expected:
        found = None if centres is None else tuple(centres.shape)
        raise DataError(f"{source} must hold 'centres' of shape {expected}, found {found}",
                        "one centre per class and image, in the model's encode() space")
    centres = centres.float()
    features = encode(den, train.images).reshape(len(train), -1).numpy()
    labels = train.labels.numpy()
    nearest = np.stack([np.flatnonzero(labels == c)[nearest_rows(features[labels == c],
                                                                 centres[c].reshape(settings.ipc, -1).numpy())]
                        for c in range(train.num_classes)])
    atomic_write_with(path, lambda tmp: save_file({"centres": centres.contiguous()}, tmp))
    run.write_json(meta_path, {"method": f"file:{source}", "nearest": nearest, "seconds": 0.0,
                               "nearest_ids": train.ids[nearest]})
    return centres, nearest, 0.0


def make_set(settings: DistillSettings, method: str, seed: int, train: Dataset, centres: torch.Tensor,
             nearest: np.ndarray, executor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One method's distilled set for one seed: images (K·IPC, C, H, W), labels, info."""
    labels = train.labels.numpy()
    start = time.perf_counter()
    if method not in GENERATED_METHODS:
        codes = None
        if method == "herding":  # encoded by the generator with its networks in fp32
            den = load_model(dataclasses.replace(open_model(settings, train).spec, dtype="fp32"))
            codes = encode(den, train.images).reshape(len(train), -1).numpy()
        rows = np.concatenate([
            real_selection(method, np.flatnonzero(labels == c), settings.ipc, nearest[c], shard_seed(seed, 1, c),
                           features=None if codes is None else codes[labels == c])
            for c in range(train.num_classes)])
        source = clustered_images(settings, train) if method == "kmeans-nearest-real" else train.images
        return source[rows], train.labels[rows], {"seconds": time.perf_counter() - start,
                                                  "source_ids": train.ids[rows].tolist()}
    bound = open_model(settings, train)
    ids = bound.class_ids or range(train.num_classes)
    cfg = settings.cfg_scale
    if cfg is None:
        den = bound.denoiser
        cfg = float(sampling_defaults(den).get("cfg_scale", 1.0)) if den.supports_cfg else 1.0
    sampling = {"steps": settings.steps, "scheduler": settings.scheduler, "cfg_scale": cfg,
                "timestep_spacing": settings.timestep_spacing}
    jobs = [class_job(method, ids[c], shard_seed(seed, 0, 0 if settings.shared_noise else c), centres[c].numpy(),
                      ipc=settings.ipc, lam=settings.lam, t_stop=int(settings.t_stop), form=settings.form,
                      sampling=sampling)
            for c in range(train.num_classes)]
    results = executor.map(sample_shard, jobs, setup=partial(load_model, bound.spec),  # loaded once per worker
                           description=f"{method} seed {seed}: generating")
    images = torch.cat([r["images"] for r in results]).clamp(-1, 1)
    out_labels = torch.arange(train.num_classes).repeat_interleave(settings.ipc)
    per_class = [int(r["guided_steps"].get("mode", 0)) for r in results]  # read from every shard, not one
    info = {"seconds": float(sum(r["seconds"] for r in results)), "wall_seconds": time.perf_counter() - start,
            "guided_steps": per_class[0] if len(set(per_class)) == 1 else per_class,
            "retries": int(sum(r["retries"] for r in results)), "cfg_scale": cfg}
    return images, out_labels, info


def _feature_fn(settings: DistillSettings, den, teacher):
    if settings.metric_features == "encoder":
        return lambda images: encode(den, images).reshape(len(images), -1).numpy()

    @torch.no_grad()
    def classifier(images: torch.Tensor) -> np.ndarray:  # features of the real-data teacher
        parts = [(teacher.features if hasattr(teacher, "features") else teacher)(images[k:k + 512])
                 for k in range(0, len(images), 512)]
        return torch.cat(parts).flatten(1).numpy()

    return classifier


# ---------------------------------------------------------------- the whole run

def run_distill(settings: DistillSettings, out: str | Path, *, resume: bool = False, overwrite: bool = False,
                engine: str = "local") -> dict:
    for arch in (settings.student.arch, settings.student.teacher_arch):
        check_arch(arch)
    settings = settings.resolved()
    executor = get_executor(engine)
    train, evaluation = load_splits(settings)
    den = open_model(settings, train).denoiser
    build_student(settings.student, train.num_classes, train.image_shape, seed=0)  # the student exists
    check_memory(4 * settings.ipc * train.num_classes * math.prod(train.image_shape) * 3,
                 f"{settings.ipc} images per class", "lower --ipc")

    inputs = {"--data": data_input(settings.data), "--model": model_input(settings.model),
              "--modes-file": settings.modes_file, "--class-map": settings.class_map}
    with RunDir.create(out, settings.to_yaml(), seed=settings.seeds[0], resume=resume, overwrite=overwrite,
                       inputs=inputs) as run:
        results_dir = run.sub("results")
        centres, nearest, mode_seconds = discover(settings, den, train, run)
        pool = Pool(run.path / "pool")
        teacher = None  # one teacher serves both soft labels and classifier features
        if settings.student.labels == "soft" or settings.metric_features == "classifier":
            val = load_source(settings.data, "val") if settings.data in DIGITS or settings.data == "fashion" \
                else load_splits(settings.model_copy(update={"eval_split": "val"}))[1]
            teacher = train_teacher(train, settings.student, seed=0, val=val)
            run.write_json("teacher.json", {"arch": settings.student.teacher_arch,
                                            "val_accuracy": teacher.practicum_val_accuracy})
        features = _feature_fn(settings, den, teacher)
        norm = None
        if settings.student.protocol == "A-full":  # the literature normalises by the real train split's stats
            norm = channel_stats(train.images)
            run.write_json("normalisation.json", {"mean": norm[0], "std": norm[1], "split": "train"})
        real_features = None
        for seed in settings.seeds:
            # 1. every method's set for this seed (the generated ones share the seed's noise)
            sets = {}
            for method in settings.methods:
                sets[method] = _distilled_set(settings, run, pool, method, seed, train, centres, nearest, executor)
            # 2. diversity / representativeness in one joint embedding per class for all methods
            metrics_path = f"results/metrics-seed{seed}.json"
            scores = run.read_json(metrics_path)
            if scores is None or set(scores) != set(settings.methods):
                if real_features is None:
                    real_features = features(train.images)
                joint = joint_scores(real_features, train.labels.numpy(),
                                     {m: (features(d.images), d.labels.numpy()) for m, (d, _) in sets.items()},
                                     spaces=tuple(settings.metric_spaces), seed=0,
                                     real_per_class=settings.tsne_real_per_class)
                if seed == settings.seeds[0] and "tsne" in settings.metric_spaces:
                    from practicum.distill.figures import tsne_figure  # lazy: matplotlib import costs ~0.7x torch's

                    for m in settings.methods:
                        tsne_figure(joint[m]["tsne"]["embeddings"], m, run.sub("figures") / f"tsne-{m}.png")
                scores = {m: {space: {"diversity": v["diversity"], "representativeness": v["representativeness"]}
                              for space, v in per_space.items()} for m, per_space in joint.items()}
                run.write_json(metrics_path, scores)
            # 3. students
            for method in settings.methods:
                name = f"{method}-seed{seed}"
                if (results_dir / f"{name}.json").exists():
                    continue
                distilled, info = sets[method]
                start = time.perf_counter()
                # each finished student is kept, so a killed unit of long (A-full) students loses one at most
                partial_path = f"results/{name}.students.json"
                done = {int(k): v for k, v in run.read_json(partial_path, default={}).items()}

                def keep(k: int, result, done=done, partial_path=partial_path) -> None:
                    done[k] = result.to_dict()
                    run.write_json(partial_path, {str(i): v for i, v in sorted(done.items())})

                student = train_student(distilled, evaluation, settings.student, seed, ipc=settings.ipc,
                                        teacher=teacher, norm=norm, done=done, on_student=keep)
                record = {"method": method, "seed": seed, **student.to_dict(),
                          "train_seconds": time.perf_counter() - start,
                          "seconds": info.get("seconds", float("nan")) +
                          (mode_seconds if method in ("kmeans-nearest-real", "mode-no-stop", "mgd3") else 0.0),
                          "generation": info}
                for space, values in scores[method].items():
                    suffix = "" if space == "tsne" else f"_{space}"
                    record[f"diversity{suffix}"] = values["diversity"]
                    record[f"representativeness{suffix}"] = values["representativeness"]
                run.write_json(f"results/{name}.json", record)
                run.log_metric({"event": "unit", "method": method, "seed": seed,
                                "best_accuracy": student.best_accuracy, "last_accuracy": student.last_accuracy})
                logger.info("%s seed %d: best %.3f last %.3f", method, seed, student.best_accuracy,
                            student.last_accuracy)
        summary = summarise_run(settings, run, mode_seconds)
        run.write_json("summary.json", summary)
        from practicum.distill.figures import write_figures_and_report  # lazy: matplotlib import costs ~0.7x torch's

        write_figures_and_report(settings, run, pool, summary)
        run.finish()
    return summary


def _distilled_set(settings: DistillSettings, run: RunDir, pool, method: str, seed: int, train: Dataset,
                   centres, nearest, executor) -> tuple[Dataset, dict]:
    """One (method, seed) set: from the pool if an earlier (interrupted) run made it, else made and stored."""
    shard = f"{method}-seed{seed}"
    name = shard
    if pool.has_shard(shard):
        images = pool.images([shard])
        index = pool.index()
        labels = torch.as_tensor(index[index["shard"] == shard]["label"].to_numpy().copy())
        info = run.read_json(f"results/{name}.set.json", default={"seconds": float("nan")})
    else:
        images, labels, info = make_set(settings, method, seed, train, centres, nearest, executor)
        run.write_json(f"results/{name}.set.json", info)
        ids = [f"{method}-s{seed}-c{int(c)}-{k % settings.ipc}" for k, c in enumerate(labels.tolist())]
        pool.append(shard, images, labels, seeds=seed, ids=ids, class_names=train.class_names,
                    settings={"method": method, "lam": settings.lam, "t_stop": settings.t_stop})
        images = pool.images([shard])  # evaluate exactly what was stored (uint8)
    return Dataset(images, labels.long(), np.array([f"{shard}-{i}" for i in range(len(labels))]),
                   train.class_names), info


PAIRS = (("mgd3", "unguided"), ("mgd3", "mode-no-stop"), ("mgd3", "random-real"), ("mgd3", "herding"))


def paired_differences(methods: dict, key: str = "last_accuracy") -> dict:
    """Per-seed paired differences a − b (`practicum.stats.paired_difference`): seeds, per_seed, mean,
    and the stats keys ci, ci_note and level (no interval, and why, below `MIN_SEEDS_FOR_INTERVAL`
    seeds)."""
    out = {}
    for a, b in PAIRS:
        if a not in methods or b not in methods:
            continue
        pa = {r["seed"]: r[key] for r in sorted(methods[a]["per_seed"], key=lambda r: r["seed"])}
        pb = {r["seed"]: r[key] for r in methods[b]["per_seed"]}
        d = paired_difference(pa, pb)
        if d is None:
            continue
        out[f"{a} - {b}"] = {k: d[k] for k in ("seeds", "per_seed", "mean", "ci", "ci_note", "level")}
    return out


def paired_interval(entry: dict) -> tuple[list[float] | None, str]:
    """(interval, why none) of one paired entry; also reads summaries written before the stats keys
    (ci95 and why_no_interval, a 95 % interval)."""
    if "ci" in entry or "ci_note" in entry:
        return entry.get("ci"), entry.get("ci_note") or ""
    return entry.get("ci95"), entry.get("why_no_interval", "")


def summarise_run(settings: DistillSettings, run: RunDir, mode_seconds: float) -> dict:
    methods = {}
    for method in settings.methods:
        records = [run.read_json(f"results/{method}-seed{s}.json") for s in settings.seeds]
        records = [r for r in records if r is not None]
        if not records:
            continue
        entry: dict = {}
        entry["accuracy_mean"], entry["accuracy_std"] = summarise([r["best_accuracy"] for r in records])
        entry["last_accuracy_mean"], entry["last_accuracy_std"] = summarise([r["last_accuracy"] for r in records])
        for key in ("diversity", "representativeness", "diversity_cosine", "representativeness_cosine"):
            values = [r.get(key) for r in records if r.get(key) is not None]
            entry[key] = float(np.mean(values)) if values else None
        entry["seconds"] = float(np.mean([r["seconds"] for r in records]))
        entry["train_seconds"] = float(np.mean([r["train_seconds"] for r in records]))
        entry["seeds"] = [r["seed"] for r in records]
        entry["per_seed"] = [{"seed": r["seed"], "best_accuracy": r["best_accuracy"],
                              "last_accuracy": r["last_accuracy"]} for r in records]
        methods[method] = entry
    protocol = settings.student.protocol
    return {
        "protocol": protocol,
        "students_per_set": settings.student.n_students(),
        "departures": settings.student.departures(),  # A-full: what differs from the literature's protocol
        "accuracy": "final-epoch accuracy (test once), mean over students, then mean ± std (ddof=1) over seeds"
        if protocol != "B" else "best accuracy over training (peeks at the evaluation split) beside the last",
        "paired": paired_differences(methods, "best_accuracy" if protocol == "B" else "last_accuracy"),
        "ipc": settings.ipc,
        "data": settings.data,
        "model": settings.model,
        "evaluated_on": settings.eval_split,
        "student": settings.student.arch,
        "width": settings.student.width or 128,
        "epochs": settings.student.epochs_for(settings.ipc, 10),
        "lam": settings.lam,
        "t_stop": settings.t_stop,
        "steps": settings.steps,
        "mode_seconds": mode_seconds,
        "methods": methods,
    }


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_summary(summary: dict) -> None:
    echo(f"IPC {summary['ipc']} on {summary['data']} ({summary['evaluated_on']} split), protocol "
         f"{summary['protocol']}: {summary['accuracy']}; diversity ↑ and representativeness ↓ in one joint "
         f"t-SNE per class | cosine")
    if summary.get("departures"):
        echo(f"A-full departs from the literature's protocol in: {summary['departures']}")
    echo(f"{'method':<21}{'best acc %':>13}{'last acc %':>13}{'div':>7}{'repr':>7}{'div cos':>9}{'repr cos':>9}"
         f"{'seconds':>9}")
    for name, m in summary["methods"].items():
        echo(f"{name:<21}{100 * m['accuracy_mean']:>7.1f} ± {100 * m['accuracy_std']:<3.1f}"
             f"{100 * m['last_accuracy_mean']:>7.1f} ± {100 * m['last_accuracy_std']:<3.1f}"
             f"{_fmt(m['diversity']):>7}{_fmt(m['representativeness']):>7}{_fmt(m['diversity_cosine']):>9}"
             f"{_fmt(m['representativeness_cosine']):>9}{m['seconds']:>9.2f}")
    for pair, d in summary.get("paired", {}).items():
        ci, why = paired_interval(d)
        tail = f"{d.get('level', 0.95):.0%} t interval [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else why
        echo(f"paired {pair}: {100 * d['mean']:+.1f} points over {len(d['seeds'])} seeds; {tail}")


__all__ = ["DistillSettings", "MODE_METHODS", "PAIRS", "TUNED", "tuned_defaults", "clustered_images", "discover", "encode", "load_splits", "make_set", "open_model",
           "paired_differences", "paired_interval", "print_summary", "run_distill", "summarise_run"]
