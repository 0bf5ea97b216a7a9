"""`practicum study`: Deliberate Practice against static generation, measured on real held-out data.

Built-in Fashion-MNIST by default (`--data digits` for the 8×8 digits). For each seed:
1. a vanilla bank: one class-balanced stream drawn from the generator and grown as needed.
   Static sets are its prefixes, DP's start set is its first N, dynamic-vanilla rounds and
   generate-then-prune candidates are its next slices (generated on demand past its end);
   vanilla images are generated once and their per-image cost is charged to every run using them;
2. static runs on a geometric grid N·2^k, one size at a time, until a doubling changes mean val
   accuracy by less than one standard error (or grid_max_factor·N): this fixes the static
   curve, and with it the target, from static alone before DP is looked at;
3. DP (with branch-outs; growth not capped by the static grid), dynamic-vanilla (ω = 0) and
   generate-then-prune, all with the same iteration budget, learner and validation split,
   through `executor.map` (local or Ray);
4. the analysis (`practicum.practice.analysis`): per-seed multipliers with censoring, t intervals
   only with >= 5 seeds, paired gains above the start size, a one-family fitted multiplier;
   figures, `report.html`, `summary.json`.

Splits: val drives patience and the static grid; tune (optional `report_tune`) scores every
point for hyper-parameter choices in benchmarks; test is only read for the reported numbers.
Every run is its own run directory under `runs/` and resumes on its own; a finished run is read
back, so `--resume` after a kill only redoes what was not finished.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from practicum.config import Settings, merge_values
from practicum.data import RunDir
from practicum.data.pool import Pool
from practicum.diffusion.builtin import builtin_name
from practicum.diffusion.service import forget_loaded_models, registered_models
from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError
from practicum.limits import Threads
from practicum.log import logger
from practicum.practice import analysis
from practicum.practice.baselines import PruneSettings, generate_then_prune
from practicum.practice.generators import BankGenerator, FallbackGenerator, Generation, Request, balanced_labels
from practicum.practice.loop import practice
from practicum.practice.settings import PracticeSettings
from practicum.practice.study_report import (  # noqa: F401
    LABELS,
    headline,
    print_summary,
    verdict,
    write_study_report,
)
from practicum.heap import release_memory
from practicum.runtime import torch_threads
from practicum.validate import data_input, model_input

STRATEGIES = ("static", "dp", "vanilla", "prune")
# Run settings per built-in data set, applied before the user's values. Fashion-MNIST (28×28) is
# the default, at a budget where static generation plateaus inside its grid (issue 21): the
# small CNN (width 16) trains 1,500 AdamW iterations of batch 64 whatever the data size, so past a
# few thousand vanilla images more of them help less and the 1-SE rule ends the grid (at most
# 16·N). DP starts at N = 250 and adds P = 250 per round whenever one evaluation of a fixed
# 1,000-image val subset (every 3,200 samples) after the last round fails to beat it. The shared
# vanilla bank and one process per core aim at 3 seeds within half an hour of an idle two-core CPU
# (docs/benchmarks.md, "Issue 21"). Digits keep the settings tuned for 8×8.
PRESETS: dict[str, dict[str, Any]] = {
    "fashion": {"practice": {"arch": "cnn", "width": 16,
                             # channels-last: a third less time per step of this CNN on a CPU (issue 21)
                             "train": {"steps": 1500, "batch_size": 64, "memory_format": "channels_last"},
                             "initial_size": 250, "add_size": 250, "eval_every": 3200, "omega": 0.1,
                             "t_init": 1, "val_size": 1000, "branch_growth": 2.0,
                             # chosen on tune (issue 21): a round whenever one evaluation after the last
                             # round fails to beat it; the proportional rule added only 2-3 rounds here
                             "patience_rule": "fixed", "reset_best": True,
                             # 25 rows per guidance backward pass: the same gradients in 40 % less memory
                             "generator": {"steps": 10, "every": 3, "guidance_batch": 25}},
                # DP against static; the controls (vanilla, prune) double the cost: --strategies
                "strategies": ["static", "dp"],
                # 16·N: the 1-SE rule stopped every recorded study at 4,000 = 16·N; the 32·N size
                # was run and ignored, at half the vanilla bank's cost
                "grid_max_factor": 16},
    "digits": {"practice": {"arch": "cnn", "width": 16, "train": {"steps": 700, "batch_size": 32},
                            "initial_size": 40, "add_size": 40, "eval_every": 160, "omega": 0.1,
                            "generator": {"steps": 10, "every": 3}},
               "grid_max_factor": 64},
}
QUICK: dict[str, dict[str, Any]] = {
    "fashion": {"seeds": 2, "strategies": ["static", "dp"], "grid_max_factor": 4,
                "practice": {"initial_size": 40, "add_size": 40, "eval_every": 640, "train": {"steps": 300, "batch_size": 32},
                             # smaller val/test subsets: DP's evaluations cost as much as its training here
                             "val_size": 500, "test_size": 1000}},
    "digits": {"seeds": 2, "strategies": ["static", "dp"], "grid_max_factor": 16,
               "practice": {"initial_size": 30, "add_size": 30, "eval_every": 120, "train": {"steps": 400}}},
}


class StudySettings(Settings):
    data: str = Field("fashion", description="real data: val drives patience and the static grid, test is reported")
    seeds: int = Field(3, ge=1, le=1000, description="runs per strategy (seeds 0..seeds-1); intervals need at least 5")
    static_sizes: list[int] | None = Field(None, description="fixed static sizes; None = the adaptive geometric "
                                           "grid (grid_ratio, grid_max_factor, stopped by the 1-SE rule on val)")
    grid_ratio: float = Field(2.0, gt=1.0, description="growth factor of the static grid")
    grid_max_factor: int = Field(64, ge=1, description="the static grid stops at this multiple of the start size")
    strategies: list[str] = Field(default_factory=lambda: list(STRATEGIES))
    practice: PracticeSettings = Field(default_factory=PracticeSettings,
                                       description="the shared run settings (learner, budget, DP loop)")
    prune_ratio: float = Field(4.0, ge=1.0)
    prune_at: float = Field(0.34, gt=0, lt=1)
    threads: Threads = Field(1, description="torch threads per run (tiny models run best on one)")
    shared_bank: bool = Field(True, description="one vanilla stream for all seeds, generated up front to the "
                              "largest size the plan can use; each seed reads its own class-balanced random order "
                              "of it (so seeds still draw different sets below the full size). False = one stream "
                              "per seed, grown as the static grid goes")
    report_tune: bool = Field(False, description="also score every reported point on the tune split "
                              "(for choosing hyper-parameters in benchmarks; costs one evaluation per point)")


def study_settings(values: dict[str, Any] | None = None, quick: bool = False, **overrides: Any) -> StudySettings:
    """Defaults, the data set's preset, then --quick, then the user's values (YAML), then CLI overrides."""
    values = values or {}
    data = overrides.get("data") or values.get("data") or StudySettings.model_fields["data"].default
    preset = builtin_name(data) or "fashion"  # a user's own images: the 28×28-sized settings
    merged = merge_values(StudySettings().model_dump(mode="json"), PRESETS[preset])
    merged = merge_values(merge_values(merged, QUICK[preset] if quick else {}), values)
    settings = StudySettings.build(merged, **{k: v for k, v in overrides.items() if v is not None})
    settings.practice = settings.practice.model_copy(update={"data": settings.data})
    unknown = set(settings.strategies) - set(STRATEGIES)
    if unknown or "static" not in settings.strategies:
        raise ConfigError(f"strategies must include 'static' and come from {STRATEGIES} (got {settings.strategies})",
                          "e.g. --strategies static,dp,vanilla,prune")
    if settings.static_sizes is not None and (not settings.static_sizes or min(settings.static_sizes) < 1):
        raise ConfigError("static sizes must be positive", "give a list of sizes, or leave it out for the grid")
    return settings


# ---------------------------------------------------------------- the plan

def static_grid(s: StudySettings) -> list[int]:
    """The candidate static sizes: fixed ones, or N·r^k up to grid_max_factor·N (rounded to whole classes)."""
    if s.static_sizes is not None:
        return sorted(set(int(n) for n in s.static_sizes))
    start = s.practice.initial_size
    sizes, n = [], float(start)
    while n <= start * s.grid_max_factor + 1e-9:
        sizes.append(int(round(n)))
        n *= s.grid_ratio
    return sizes


def plateau_reached(val_by_seed: dict[int, dict[int, float]], smaller: int, larger: int, n_val: int) -> bool:
    """True when growing static from `smaller` to `larger` changes mean val accuracy by < 1 SE.

    SE of the paired (per-seed) difference, and never below the binomial SE of a difference of
    two accuracies on `n_val` images (with one or two seeds the sample SD alone is unreliable)."""
    diffs = [c[larger] - c[smaller] for c in val_by_seed.values() if smaller in c and larger in c]
    if not diffs:
        return False
    mean = sum(diffs) / len(diffs)
    p = sum(c[larger] for c in val_by_seed.values() if larger in c) / len(diffs)
    se = math.sqrt(2 * p * (1 - p) / max(1, n_val) / len(diffs))
    if len(diffs) > 1:
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        se = max(se, sd / math.sqrt(len(diffs)))
    return abs(mean) < se


def bank_folder(out: Path, seed: int | str, bank: Path | None = None) -> Path:
    """A vanilla stream's folder: `<out>/banks/seed-<seed>`, or the shared one (`bank` if given)."""
    if seed == "shared":
        return Path(bank) if bank is not None else out / "banks" / "shared"
    return out / "banks" / f"seed-{seed}"


def bank_item(s: StudySettings, out: Path, seed: int, bank: Path | None = None) -> dict[str, Any]:
    """Where a seed's vanilla stream lives, and (shared bank) which order of it the seed reads."""
    if s.shared_bank:
        return {"bank": str(bank_folder(out, "shared", bank)), "view_seed": seed}
    return {"bank": str(bank_folder(out, seed)), "view_seed": None}


def static_item(s: StudySettings, out: Path, seed: int, size: int, bank: Path | None = None) -> dict[str, Any]:
    base = s.practice.model_dump(mode="json") | {"seed": seed, "data": s.data}
    # periodic val evaluations only matter where a round can be added (they would double a static run's cost)
    settings = base | {"initial_size": size, "max_rounds": 0, "branch_out": False, "track_val": False}
    return {"seed": seed, "data": s.data, **bank_item(s, out, seed, bank), "threads": s.threads,
            "report_tune": s.report_tune, "strategy": "static", "size": size, "settings": settings,
            "path": str(out / "runs" / f"static-n{size}-s{seed}")}


def plan_runs(s: StudySettings, out: Path, bank: Path | None = None) -> list[dict[str, Any]]:
    """The dynamic runs (DP, dynamic-vanilla, generate-then-prune): plain data, so they travel to Ray.

    DP's growth is not capped by the static grid: rounds are limited only by `practice.max_rounds`
    and by the budget (patience, and no rounds in the cool-down)."""
    p = s.practice
    items = []
    for seed in range(s.seeds):
        base = p.model_dump(mode="json") | {"seed": seed, "data": s.data}
        common = {"seed": seed, "data": s.data, **bank_item(s, out, seed, bank),
                  "threads": s.threads, "report_tune": s.report_tune,
                  # that static run is the round-1 branch-out: not trained twice
                  "branch_start": not static_covers_start(s)}
        if "dp" in s.strategies:
            items.append(common | {"strategy": "dp", "size": None, "settings": base,
                                   "path": str(out / "runs" / f"dp-s{seed}")})
        if "vanilla" in s.strategies:
            items.append(common | {"strategy": "vanilla", "size": None, "settings": base | {"omega": 0.0},
                                   "path": str(out / "runs" / f"vanilla-s{seed}")})
        if "prune" in s.strategies:
            items.append(common | {"strategy": "prune", "size": None,
                                   "settings": base | {"ratio": s.prune_ratio, "prune_at": s.prune_at},
                                   "path": str(out / "runs" / f"prune-s{seed}")})
    return items


def static_covers_start(s: StudySettings) -> bool:
    """Whether the static runs include the start size N. A dynamic run's round-1 branch-out trains
    its first N images (the same class-balanced prefix of the same stream), from the same seed, with
    no data added, to the same budget: step for step the static run at N (val evaluations draw no
    random numbers), so the study copies that run's point instead of training it again."""
    return s.static_sizes is None or s.practice.initial_size in s.static_sizes


def copy_start_points(s: StudySettings, results: list[dict[str, Any]]) -> None:
    """Give each dynamic run (DP, dynamic-vanilla) without its round-1 branch-out the point of the
    static run at N with its seed (see `static_covers_start`), marked with where it came from."""
    start = s.practice.initial_size
    static = {r["seed"]: r for r in results if r["strategy"] == "static" and r.get("size") == start}
    for r in results:
        if r["strategy"] not in ("dp", "vanilla") or not r.get("rounds") or r["seed"] not in static:
            continue
        if any(p["kind"] == "branch" and p["size"] == start for p in r["points"]):
            continue  # a run that trained its own
        final = next(p for p in static[r["seed"]]["points"] if p["kind"] == "final")
        copied = {k: v for k, v in final.items() if k.endswith("_accuracy")}
        r["points"] = sorted(r["points"] + [{"kind": "branch", "round": 1, "size": start, "rounds": 0,
                                             "copied_from": static[r["seed"]]["path"], **copied}],
                             key=lambda p: p["size"])


# ---------------------------------------------------------------- phase 1: vanilla banks

def prune_need(s: StudySettings, num_classes: int) -> int:
    p = s.practice
    if "prune" not in s.strategies:
        return 0
    return p.initial_size + math.ceil(s.prune_ratio * p.add_size / num_classes) * num_classes


def bank_capacity(s: StudySettings, num_classes: int) -> int:
    """The shared bank's size: the largest static size, start set or prune candidate set the plan can
    ask for, in whole classes (a seed's random order permutes within each class)."""
    need = max(max(static_grid(s)), s.practice.initial_size, prune_need(s, num_classes))
    return math.ceil(need / num_classes) * num_classes


def seed_view(size: int, num_classes: int, seed: int) -> torch.Tensor:
    """Seed `seed`'s order of a shared class-balanced stream of `size` samples.

    Position i of the stream holds class i mod K; the view keeps that label order and shuffles
    which sample of each class sits where, so every prefix stays class-balanced and two seeds'
    prefixes are different random draws (identical only at the full size)."""
    if size % num_classes:
        raise ConfigError(f"a shared bank of {size} samples is not a whole number of classes ({num_classes})")
    per_class = size // num_classes
    generator = torch.Generator().manual_seed(shard_seed(seed, -1, 0))
    order = torch.empty(size, dtype=torch.long)
    for c in range(num_classes):
        order[c::num_classes] = torch.randperm(per_class, generator=generator) * num_classes + c
    return order


def build_bank(s: StudySettings, out: Path, seed: int | str, data, engine: str, size: int,
               workers: int = 1, bank: Path | None = None) -> Pool:
    """A vanilla stream (`seed` = the seed, or "shared"), grown to at least `size` samples
    (shards bank-000, bank-001, ...), its generation spread over `workers` processes.

    Each shard continues the class-balanced stream where the last one stopped, with its own
    seed, so growing the bank never changes the samples already in it."""
    pool = Pool(bank_folder(out, seed, bank))
    have = len(pool)
    if have >= size:
        return pool
    seed = 0 if isinstance(seed, str) else seed
    generator = s.practice.make_generator(data, engine=engine)
    if engine == "local" and workers > 1:
        generator.executor = get_executor("local", processes=workers)
    k = len(pool.shards())
    labels = balanced_labels(have, size - have, data.num_classes)
    try:
        out_gen = generator(Request(labels=labels, omega=0.0, seed=shard_seed(seed, 0, k), start=have))
    finally:
        if generator.executor is not None:
            generator.executor.close()
    pool.append(f"bank-{k:03d}", out_gen.images, labels, seeds=seed,
                settings={"seconds_per_image": out_gen.seconds / len(labels), "gen_seconds": out_gen.seconds})
    return pool


# ---------------------------------------------------------------- phase 2: one run

class _LazyDiffusion:
    """Opens the diffusion model (once per process, `practicum.diffusion.service.load_model`) only
    when a run first asks for guided samples."""

    def __init__(self, settings: PracticeSettings, data):
        self.settings, self.data, self.generator = settings, data, None

    def __call__(self, request: Request) -> Generation:
        if self.generator is None:
            self.generator = self.settings.make_generator(self.data, engine="local")
        return self.generator(request)


def bank_cost(bank: Pool) -> float:
    """Measured seconds per vanilla image of a bank (over all its shards)."""
    index = bank.index()
    per_shard = index.groupby("shard")["gen_seconds"].first()
    return float(per_shard.sum() / max(1, len(index)))


def bank_stream(item: dict[str, Any], num_classes: int) -> BankGenerator:
    """The run's vanilla stream: its bank, in the seed's own order when the bank is shared."""
    bank = Pool(item["bank"])
    images = bank.images()
    labels = torch.from_numpy(bank.index()["label"].to_numpy().copy())
    if item.get("view_seed") is not None:
        order = seed_view(len(labels), num_classes, item["view_seed"])
        images, labels = images[order], labels[order]
    return BankGenerator(images, labels, bank_cost(bank))


def run_one(item: dict[str, Any]) -> dict[str, Any]:
    """One study run (a top-level function, so it pickles for Ray); returns its result."""
    path = Path(item["path"])
    result = RunDir(path).read_results()
    if result is None:
        with torch_threads(item["threads"]):
            result = _execute(item, path)
        forget_loaded_models()  # a dynamic run's diffusion model: the next run may be a static one
        release_memory()  # a worker process goes on to the next run
    return {"strategy": item["strategy"], "seed": item["seed"], "size": item["size"], "path": str(path),
            "bank": item["bank"], **result}


def _execute(item: dict[str, Any], path: Path) -> dict[str, Any]:
    settings_cls = PruneSettings if item["strategy"] == "prune" else PracticeSettings
    settings = settings_cls.build(item["settings"])
    val, test = settings.load_data("val"), settings.load_data("test")
    vanilla = bank_stream(item, val.num_classes)
    tune = settings.load_data("tune") if item.get("report_tune") else None
    generator = FallbackGenerator(vanilla, _LazyDiffusion(settings, val))
    resume = (path / "config.yaml").exists()
    with RunDir.create(path, settings.to_yaml(), seed=settings.seed, resume=resume,
                       command=f"practicum study ({item['strategy']}, seed {item['seed']})") as run:
        label = f"{item['strategy']} s{item['seed']}" + (f" n{item['size']}" if item["size"] else "")
        if item["strategy"] == "prune":
            result = generate_then_prune(run, settings, generator, val, test, tune=tune, description=label)
        else:
            result = practice(run, settings, generator, val, test, tune=tune, description=label,
                              branch_start=item.get("branch_start", True))
        run.finish()
    return result


# ---------------------------------------------------------------- the study

def default_workers() -> int:
    """Worker processes for the local engine: one per core (the study's runs are one thread each),
    at most 8 (each holds its own copy of the data and models)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


def run_study(out: str | Path, settings: StudySettings, *, engine: str = "local", resume: bool = False,
              overwrite: bool = False, workers: int | None = None, bank: str | Path | None = None) -> dict[str, Any]:
    """The whole study. `workers`: processes for independent runs and bank shards on the local
    engine (None = one per core); results do not depend on it. `bank`: a shared vanilla bank
    folder to use (and grow) instead of `<out>/banks/shared`, so several studies (a sweep, a
    benchmark's variants) draw on one bank; its fingerprint is a recorded input."""
    out = Path(out)
    workers = default_workers() if workers is None else int(workers)
    if not 1 <= workers <= 512:
        raise ConfigError(f"workers must be between 1 and 512, got {workers}", "use 1 (in-process) or one per core")
    if workers > 1 and settings.practice.generator.model in registered_models():
        logger.info("the generator is registered in this process only; running the study in-process")
        workers = 1
    with torch_threads(settings.threads):  # small models: one thread each beats two fighting threads
        return _run_study(out, settings, engine, resume, overwrite, workers, None if bank is None else Path(bank))


def _run_study(out: Path, settings: StudySettings, engine: str, resume: bool, overwrite: bool,
               workers: int, bank: Path | None) -> dict[str, Any]:


    seconds: dict[str, float] = {}
    if bank is not None:  # an outside bank is complete before the run starts, so its fingerprint is final
        if not settings.shared_bank:
            raise ConfigError("a bank folder is only used with shared_bank: true")
        val = settings.practice.load_data("val")
        seconds["bank"] = _grow_banks(settings, out, val, engine, bank_capacity(settings, val.num_classes),
                                      workers, bank)

    inputs = {"--data": data_input(settings.data), "--model": model_input(settings.practice.generator.model),
              "bank": bank}
    with RunDir.create(out, settings.to_yaml(), seed=0, resume=resume, overwrite=overwrite,
                       command=None, inputs=inputs) as run, contextlib.ExitStack() as stack:
        # the study's own events are derived again on a resume (the runs they summarise are kept)
        run.trim_metrics(lambda row: row.get("event") not in ("static_plateau", "phase"))
        val = settings.practice.load_data("val")
        executor = get_executor(engine, processes=workers) if engine == "local" else get_executor(engine)
        if engine == "local":  # its worker processes end with the study
            stack.callback(executor.close)
        seconds.setdefault("bank", 0.0)
        if settings.shared_bank:
            seconds["bank"] += _grow_banks(settings, out, val, engine, bank_capacity(settings, val.num_classes),
                                           workers, bank)

        # Static first, size by size: the grid stops (and the target is fixed) from static alone. With
        # worker processes and a shared bank nothing waits on that: the whole grid goes out at once
        # with the dynamic runs spread through it (a size past the stop is run but ignored), so no
        # worker idles while the grid decides, and the long dynamic runs mostly follow one another
        # on one worker while the other takes the static runs (one diffusion model in memory).
        parallel = workers > 1 and engine == "local" and settings.shared_bank
        dynamic = plan_runs(settings, out, bank)
        dynamic_results: list[dict[str, Any]] | None = None
        results, grid, plateau = [], static_grid(settings), None
        seconds["static"] = seconds["dynamic"] = 0.0
        i = 0
        while i < len(grid) and plateau is None:
            batch = grid[i:] if parallel else grid[i:i + 1]
            if not settings.shared_bank:
                seconds["bank"] += _grow_banks(settings, out, val, engine, batch[-1], workers)
            started = time.perf_counter()
            items = [static_item(settings, out, seed, size, bank) for size in batch for seed in range(settings.seeds)]
            extra = dynamic if parallel and dynamic_results is None else []
            order, queue = interleave(extra, len(items)), extra + items
            finished = executor.map(run_one, [queue[k] for k in order],
                                    description="static n=" + ", ".join(map(str, batch)))
            done = [None] * len(order)  # back to extra + items
            for position, k in enumerate(order):
                done[k] = finished[position]
            seconds["static" if not extra else "dynamic"] += time.perf_counter() - started
            if extra:
                dynamic_results, done = done[:len(extra)], done[len(extra):]
            for k, size in enumerate(batch):
                results += done[k * settings.seeds:(k + 1) * settings.seeds]
                j = i + k
                if settings.static_sizes is None and j > 0:
                    by_seed = analysis.per_seed(_points(results), "static", "val_accuracy")
                    if plateau_reached(by_seed, grid[j - 1], size, len(val.labels)):
                        plateau = {"smaller": grid[j - 1], "larger": size}
                        run.log_metric({"event": "static_plateau", **plateau})
                        break
            i += len(batch)

        if dynamic_results is None:
            if not settings.shared_bank:
                seconds["bank"] += _grow_banks(settings, out, val, engine, max(settings.practice.initial_size,
                                                                              prune_need(settings, val.num_classes)),
                                               workers)
            started = time.perf_counter()
            dynamic_results = executor.map(run_one, dynamic, description="dynamic runs")
            seconds["dynamic"] += time.perf_counter() - started
        results += dynamic_results
        copy_start_points(settings, results)
        run.log_metric({"event": "phase", "phase": "runs", "seconds": seconds})

        started = time.perf_counter()
        summary = summarize(settings, results, out)
        # where the grid stopped: the 1-SE rule on val (a plateau), or its cap (still rising)
        summary["static_plateau"] = plateau
        seconds["analysis"] = time.perf_counter() - started
        summary["seconds"].update(phases=seconds)
        summary["peak_memory_mb"] = peak_memory_mb()
        run.write_results(summary)
        write_study_report(out, settings, summary, results)
        seconds["report"] = time.perf_counter() - started - seconds["analysis"]
        summary["seconds"]["phases"] = seconds
        run.write_results(summary)
        run.finish(peak_memory_mb=summary["peak_memory_mb"])
    return summary


def interleave(dynamic: list, statics: int) -> list[int]:
    """The order to submit `dynamic + statics` items in (as indices into that list): each dynamic run
    followed by an equal share of the static runs, so that with two workers one works through the
    dynamic runs and the other the static ones (the queue is first in, first out)."""
    order, share = [], math.ceil(statics / max(1, len(dynamic)))
    for d in range(len(dynamic)):
        order += [d] + [len(dynamic) + k for k in range(d * share, min(statics, (d + 1) * share))]
    return order + [len(dynamic) + k for k in range(len(dynamic) * share, statics)]


def _grow_banks(settings: StudySettings, out: Path, val, engine: str, size: int, workers: int,
                bank: Path | None = None) -> float:
    started = time.perf_counter()
    for seed in (["shared"] if settings.shared_bank else range(settings.seeds)):
        build_bank(settings, out, seed, val, engine, size, workers, bank)
    forget_loaded_models()  # the driver holds no model or images while the runs go on
    release_memory()
    return time.perf_counter() - started


def _points(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"strategy": r["strategy"], "seed": r["seed"], **p} for r in results for p in r["points"]]


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024.0, 1)


def summarize(settings: StudySettings, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Every number of the study, under the conventions of `practicum.practice.analysis`."""
    points = _points(results)
    start = settings.practice.initial_size
    grid = analysis.shared_grid(points, "static", tuple(settings.strategies))
    strategies: dict[str, Any] = {}
    family = None
    for name in settings.strategies:  # static first: its law's family is shared by all strategies
        by_seed = analysis.per_seed(points, name)
        runs = [r for r in results if r["strategy"] == name]
        law, why = analysis.fit_law(points, name, family or "auto")
        if name == "static" and law is not None:
            family = law.family_
        strategies[name] = {
            "sizes": sorted({n for c in by_seed.values() for n in c}),
            "per_seed": {str(seed): {str(n): acc for n, acc in sorted(v.items())} for seed, v in sorted(by_seed.items())},
            "grid": {str(n): v for n, v in analysis.grid_curve(points, name, grid).items()},
            "mean": {str(n): v["mean"] for n, v in analysis.grid_curve(points, name, grid).items()},
            "seconds": {k: sum(r["seconds"].get(k, 0.0) for r in runs)
                        for k in ("generate", "train", "eval", "branches", "score")},
            "rounds": [r.get("rounds") for r in runs] if name in ("dp", "vanilla") else None,
            "fit": ({"family": law.family_, "params": {k: float(v) for k, v in law.params_.items()},
                     "rmsle": float(getattr(law, "rmsle_", float("nan")))} if law is not None else {"error": why}),
        }
    summary: dict[str, Any] = {"strategies": strategies, "seeds": list(range(settings.seeds)), "grid": grid,
                               "start_size": start, "test_split": settings.data + ":test", "points": points,
                               "conventions": CONVENTIONS,
                               "runs": [{"strategy": r["strategy"], "seed": r["seed"], "path": r["path"],
                                         "bank": r.get("bank"), "rounds": r.get("rounds"),
                                         "pool_size": r.get("pool_size")}
                                        for r in results]}
    if "dp" in settings.strategies:
        mult = analysis.measured_multiplier(points, "static", "dp")
        summary["data_multiplier"] = mult["multiplier"]
        summary["data_multiplier_ci"] = mult["ci"]
        summary["data_multiplier_detail"] = mult
        summary["data_multiplier_fit"] = analysis.fitted_multiplier(points, "static", "dp")
        summary["dp_gain_equal_size"] = analysis.paired_gain(points, "static", "dp", start_size=start, grid=grid)
        if "vanilla" in settings.strategies:
            summary["dp_vs_vanilla_equal_size"] = analysis.paired_gain(points, "vanilla", "dp", start_size=start,
                                                                       grid=grid)
            summary["vanilla_multiplier"] = analysis.measured_multiplier(points, "static", "vanilla")
        if "prune" in settings.strategies:
            summary["dp_vs_prune"] = _dp_vs_prune(settings, points, results)
    summary["seconds"] = {name: strategies[name]["seconds"] for name in settings.strategies}
    return summary


CONVENTIONS = ("Per seed, then over seeds. Curves are read on a shared log-size grid inside each seed's measured "
               "range (no extrapolation). Target: static's best mean test accuracy over the grid (size n*), fixed "
               "before DP is compared; each seed's target is its own static accuracy at n*. Multiplier per seed = "
               "n* / the DP size reaching that target; a seed where DP never reaches it is censored (DP needs more "
               "than its largest pool), never scored 0. Over seeds: geometric mean with a t interval on the log, "
               "only with >= 5 seeds and no censoring. Gains: paired per seed, above the start size (equal by "
               "construction), t intervals with >= 5 seeds. Fitted multiplier: scaling.data_multiplier with one "
               "law family for both (chosen on static) and its interval (each curve's leave-one-seed-out "
               "jackknife), with >= 5 seeds.")


def _dp_vs_prune(settings: StudySettings, points: list[dict], results: list[dict]) -> dict[str, Any]:
    """Generate-then-prune at N + P against DP at the same size: accuracy and generation cost."""
    p = settings.practice
    size = p.initial_size + p.add_size
    prune = analysis.per_seed(points, "prune")
    dp = analysis.per_seed(points, "dp")
    seeds = sorted(s for s in set(prune) & set(dp) if size in dp[s])
    per_image = _vanilla_cost(results)
    guided = _guided_cost(results)
    out = {"size": size, "seeds": seeds,
           "prune_accuracy": _mean([prune[s][size] for s in seeds if size in prune[s]]),
           "dp_accuracy": _mean([dp[s][size] for s in seeds]),
           "vanilla_seconds_per_image": per_image, "guided_seconds_per_image": guided,
           "prune_gen_seconds": None if per_image is None else (p.initial_size + settings.prune_ratio * p.add_size) * per_image,
           "dp_gen_seconds": None if (per_image is None or guided is None) else p.initial_size * per_image + p.add_size * guided}
    if out["prune_gen_seconds"] and out["dp_gen_seconds"]:
        out["prune_over_dp_cost"] = out["prune_gen_seconds"] / out["dp_gen_seconds"]
    return out


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _vanilla_cost(results: list[dict]) -> float | None:
    """Measured seconds per vanilla image of the bank the runs drew on."""
    for r in results:
        bank = Path(r["bank"]) if r.get("bank") else Path(r["path"]).parent.parent / "banks" / f"seed-{r['seed']}"
        if (bank / "index.parquet").exists():
            return bank_cost(Pool(bank))
    return None


def _guided_cost(results: list[dict]) -> float | None:
    """Measured seconds per guided image, from the DP runs' pools (rounds >= 1)."""
    total, count = 0.0, 0
    for r in results:
        if r["strategy"] != "dp":
            continue
        index = Pool(Path(r["path"]) / "pool").index()
        rounds = index[index["round"] >= 1]
        for _, group in rounds.groupby("round"):
            total += float(group["gen_seconds"].iloc[0])
            count += len(group)
    if count == 0:
        logger.info("no guided rounds were generated; guided cost unknown")
        return None
    return total / count
