"""`practicum study`: Deliberate Practice against static generation, measured on real held-out data.

For each seed:
1. a vanilla bank: the largest static set, drawn once from the generator (class-balanced by
   position). Static sets are its prefixes, DP's start set is its first N, dynamic-vanilla
   rounds are its next slices and generate-then-prune candidates too: vanilla data is generated
   once and its per-image cost is charged to every run that uses it;
2. independent runs, through `executor.map` (local or Ray): static at every size, DP (with
   branch-outs), dynamic-vanilla (ω = 0, with branch-outs) and generate-then-prune, all with
   the same iteration budget, learner and validation split;
3. the analysis: mean curves, the data multiplier with a bootstrap CI over seeds, paired gains
   at equal size, fitted scaling laws, compute accounting, figures, `report.html`, `summary.json`.

Every run is its own run directory under `runs/` and resumes on its own; a finished run is read
back, so `--resume` after a kill only redoes what was not finished.
"""

from __future__ import annotations

import math
import resource
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from practicum.config import Settings
from practicum.data import RunDir
from practicum.data.pool import Pool
from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError
from practicum.log import echo, logger
from practicum.practice import analysis
from practicum.practice.baselines import PruneSettings, generate_then_prune
from practicum.practice.generate import (BankGenerator, DiffusionGenerator, FallbackGenerator, Generation, Request,
                                         balanced_labels)
from practicum.practice.loop import practice
from practicum.practice.settings import PracticeSettings

STRATEGIES = ("static", "dp", "vanilla", "prune")
LABELS = {"static": "static (all up front)", "dp": "Deliberate Practice", "vanilla": "dynamic-vanilla (ω=0)",
          "prune": "generate-then-prune"}


def _default_practice() -> PracticeSettings:
    # PracticeSettings' defaults are the ones tuned on the validation split with the built-in
    # model (docs/benchmarks.md, Deliberate Practice): cnn width 16, 700 iterations of batch 32,
    # N = P = 40, ω = 0.1, T_init = 1, τ = 160 samples, DDIM 10 steps guided every 3rd.
    return PracticeSettings()


class StudySettings(Settings):
    data: str = Field("digits", description="real data: val drives patience, test is reported")
    seeds: int = Field(3, ge=1, description="runs per strategy (seeds 0..seeds-1)")
    static_sizes: list[int] = Field(default_factory=lambda: [40, 80, 160, 320, 640])
    strategies: list[str] = Field(default_factory=lambda: list(STRATEGIES))
    practice: PracticeSettings = Field(default_factory=_default_practice,
                                       description="the shared run settings (learner, budget, DP loop)")
    prune_ratio: float = Field(4.0, ge=1.0)
    prune_at: float = Field(0.34, gt=0, lt=1)
    threads: int = Field(1, ge=1, description="torch threads per run (tiny models run best on one)")
    n_boot: int = Field(1000, ge=0)


QUICK = {"seeds": 2, "static_sizes": [30, 60, 120, 240, 480], "strategies": ["static", "dp"],
         "practice": {"initial_size": 30, "add_size": 30, "eval_every": 120, "train": {"steps": 400}}}


def study_settings(values: dict[str, Any] | None = None, quick: bool = False, **overrides: Any) -> StudySettings:
    """Defaults, then --quick, then the user's values (a YAML mapping), then CLI overrides."""
    merged = _merge(_merge(StudySettings().model_dump(mode="json"), QUICK if quick else {}), values or {})
    settings = StudySettings.build(merged, **overrides)
    unknown = set(settings.strategies) - set(STRATEGIES)
    if unknown or "static" not in settings.strategies:
        raise ConfigError(f"strategies must include 'static' and come from {STRATEGIES} (got {settings.strategies})")
    if min(settings.static_sizes) < 1:
        raise ConfigError("static sizes must be positive")
    return settings


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ---------------------------------------------------------------- the plan

def bank_size(s: StudySettings, num_classes: int) -> int:
    """How many vanilla samples a seed needs: the largest static set, or N + the prune candidates."""
    p = s.practice
    candidates = math.ceil(s.prune_ratio * p.add_size / num_classes) * num_classes
    need_prune = p.initial_size + candidates if "prune" in s.strategies else 0
    return max(max(s.static_sizes), p.initial_size, need_prune)


def plan_runs(s: StudySettings, out: Path) -> list[dict[str, Any]]:
    """One item per independent run (all plain data, so they travel to Ray workers)."""
    p = s.practice
    max_rounds = max(0, (max(s.static_sizes) - p.initial_size) // p.add_size)
    if p.max_rounds is not None:
        max_rounds = min(max_rounds, p.max_rounds)
    items = []
    for seed in range(s.seeds):
        base = p.model_dump(mode="json") | {"seed": seed, "data": s.data}
        common = {"seed": seed, "data": s.data, "bank": str(out / "banks" / f"seed-{seed}"),
                  "threads": s.threads}
        for size in s.static_sizes:
            settings = base | {"initial_size": size, "max_rounds": 0, "branch_out": False}
            items.append(common | {"strategy": "static", "size": size, "settings": settings,
                                   "path": str(out / "runs" / f"static-n{size}-s{seed}")})
        if "dp" in s.strategies:
            items.append(common | {"strategy": "dp", "size": None, "settings": base | {"max_rounds": max_rounds},
                                   "path": str(out / "runs" / f"dp-s{seed}")})
        if "vanilla" in s.strategies:
            items.append(common | {"strategy": "vanilla", "size": None,
                                   "settings": base | {"omega": 0.0, "max_rounds": max_rounds},
                                   "path": str(out / "runs" / f"vanilla-s{seed}")})
        if "prune" in s.strategies:
            items.append(common | {"strategy": "prune", "size": None,
                                   "settings": base | {"ratio": s.prune_ratio, "prune_at": s.prune_at},
                                   "path": str(out / "runs" / f"prune-s{seed}")})
    return items


# ---------------------------------------------------------------- phase 1: vanilla banks

def build_bank(s: StudySettings, out: Path, seed: int, data, engine: str) -> Pool:
    """The seed's vanilla stream (generated once; a resumed study finds it on disk)."""
    pool = Pool(out / "banks" / f"seed-{seed}")
    num_classes = data.num_classes
    size = bank_size(s, num_classes)
    if pool.has_shard("bank") and len(pool) >= size:
        return pool
    if pool.has_shard("bank"):
        raise ConfigError(f"{pool.path} holds {len(pool)} samples but this study needs {size}",
                          "use --overwrite (the sizes changed)")
    generator = s.practice.make_generator(data, engine=engine)
    labels = balanced_labels(0, size, num_classes)
    out_gen = generator(Request(labels=labels, omega=0.0, seed=shard_seed(seed, 0), start=0))
    pool.append("bank", out_gen.images, labels, seeds=seed,
                settings={"seconds_per_image": out_gen.seconds / size, "gen_seconds": out_gen.seconds})
    return pool


# ---------------------------------------------------------------- phase 2: one run

_GUIDED: dict[str, DiffusionGenerator] = {}


class _LazyDiffusion:
    """Loads the diffusion model only when a run first asks for guided samples."""

    def __init__(self, settings: PracticeSettings, data):
        self.settings, self.data = settings, data

    def __call__(self, request: Request) -> Generation:
        key = self.settings.generator.model_dump_json() + self.settings.device
        if key not in _GUIDED:
            _GUIDED[key] = self.settings.make_generator(self.data, engine="local")
        return _GUIDED[key](request)


def run_one(item: dict[str, Any]) -> dict[str, Any]:
    """One study run (a top-level function, so it pickles for Ray); returns its result."""
    path = Path(item["path"])
    if (path / "result.json").exists():
        result = RunDir(path).read_json("result.json")
    else:
        previous = torch.get_num_threads()
        torch.set_num_threads(item["threads"])
        try:
            result = _execute(item, path)
        finally:
            torch.set_num_threads(previous)
    return {"strategy": item["strategy"], "seed": item["seed"], "path": str(path), **result}


def _execute(item: dict[str, Any], path: Path) -> dict[str, Any]:
    bank = Pool(item["bank"])
    index = bank.index()
    per_image = float(index["seconds_per_image"].iloc[0])
    vanilla = BankGenerator(bank.images(["bank"]), torch.from_numpy(index["label"].to_numpy().copy()), per_image)
    settings_cls = PruneSettings if item["strategy"] == "prune" else PracticeSettings
    settings = settings_cls.build(item["settings"])
    val, test = settings.load_data("val"), settings.load_data("test")
    generator = FallbackGenerator(vanilla, _LazyDiffusion(settings, val))
    resume = (path / "config.yaml").exists()
    with RunDir.create(path, settings.to_yaml(), seed=settings.seed, resume=resume,
                       command=f"practicum study ({item['strategy']}, seed {item['seed']})") as run:
        label = f"{item['strategy']} s{item['seed']}" + (f" n{item['size']}" if item["size"] else "")
        if item["strategy"] == "prune":
            result = generate_then_prune(run, settings, generator, val, test, description=label)
        else:
            result = practice(run, settings, generator, val, test, description=label)
        run.finish()
    return result


# ---------------------------------------------------------------- the study

def run_study(out: str | Path, settings: StudySettings, *, engine: str = "local", resume: bool = False,
              overwrite: bool = False) -> dict[str, Any]:
    out = Path(out)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)  # small models: one thread each beats two fighting threads
    try:
        return _run_study(out, settings, engine, resume, overwrite)
    finally:
        torch.set_num_threads(previous_threads)


def _run_study(out: Path, settings: StudySettings, engine: str, resume: bool, overwrite: bool) -> dict[str, Any]:
    from practicum.practice.study_report import write_study_report

    seconds: dict[str, float] = {}
    with RunDir.create(out, settings.to_yaml(), seed=0, resume=resume, overwrite=overwrite,
                       command=None) as run:
        if overwrite:
            import shutil

            for sub in ("banks", "runs", "figures"):
                shutil.rmtree(out / sub, ignore_errors=True)
        started = time.perf_counter()
        val = settings.practice.model_copy(update={"data": settings.data}).load_data("val")
        for seed in range(settings.seeds):
            build_bank(settings, out, seed, val, engine)
        seconds["bank"] = time.perf_counter() - started
        run.log_metric({"event": "phase", "phase": "bank", "seconds": seconds["bank"]})

        started = time.perf_counter()
        items = plan_runs(settings, out)
        results = get_executor(engine).map(run_one, items, description="study runs")
        seconds["runs"] = time.perf_counter() - started
        run.log_metric({"event": "phase", "phase": "runs", "seconds": seconds["runs"]})

        started = time.perf_counter()
        summary = summarize(settings, results, out)
        seconds["analysis"] = time.perf_counter() - started
        summary["seconds"].update(phases=seconds)
        summary["peak_memory_mb"] = peak_memory_mb()
        run.write_json("summary.json", summary)
        write_study_report(out, settings, summary, results)
        seconds["report"] = time.perf_counter() - started - seconds["analysis"]
        summary["seconds"]["phases"] = seconds
        run.write_json("summary.json", summary)
        run.finish(peak_memory_mb=summary["peak_memory_mb"])
    return summary


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024.0, 1)


def summarize(settings: StudySettings, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    points = [{"strategy": r["strategy"], "seed": r["seed"], **p} for r in results for p in r["points"]]
    strategies: dict[str, Any] = {}
    for name in settings.strategies:
        by_seed = analysis.per_seed(points, name)
        curve = analysis.mean_curve(points, name)
        runs = [r for r in results if r["strategy"] == name]
        strategies[name] = {
            "sizes": sorted(curve),
            "per_seed": {str(seed): {str(n): acc for n, acc in sorted(v.items())} for seed, v in sorted(by_seed.items())},
            "mean": {str(n): acc for n, acc in curve.items()},
            "seconds": {k: sum(r["seconds"].get(k, 0.0) for r in runs)
                        for k in ("generate", "train", "eval", "branches", "score")},
            "rounds": [r.get("rounds") for r in runs] if name in ("dp", "vanilla") else None,
        }
    fits = {}
    for name in settings.strategies:
        law, why = analysis.fit_law(points, name)
        fits[name] = {"family": law.family_, "params": {k: float(v) for k, v in law.params_.items()},
                      "rmsle": float(getattr(law, "rmsle_", float("nan")))} if law is not None else {"error": why}
        strategies[name]["fit"] = fits[name]

    summary: dict[str, Any] = {"strategies": strategies, "seeds": list(range(settings.seeds)),
                               "test_split": settings.data + ":test", "points": points,
                               "runs": [{"strategy": r["strategy"], "seed": r["seed"], "path": r["path"],
                                         "rounds": r.get("rounds"), "pool_size": r.get("pool_size")}
                                        for r in results]}
    if "dp" in settings.strategies:
        mult = analysis.data_multiplier(points, "static", "dp", n_boot=settings.n_boot)
        summary["data_multiplier"] = mult["multiplier"]
        summary["data_multiplier_ci"] = mult["ci"]
        summary["data_multiplier_detail"] = mult
        summary["data_multiplier_fit"] = analysis.fitted_multiplier(points, "static", "dp",
                                                                    n_boot=min(200, settings.n_boot))
        summary["dp_gain_equal_size"] = analysis.paired_gain(points, "static", "dp", n_boot=settings.n_boot)
        if "vanilla" in settings.strategies:
            summary["dp_vs_vanilla_equal_size"] = analysis.paired_gain(points, "vanilla", "dp", n_boot=settings.n_boot)
            summary["vanilla_multiplier"] = analysis.data_multiplier(points, "static", "vanilla",
                                                                     n_boot=settings.n_boot)["multiplier"]
        if "prune" in settings.strategies:
            summary["dp_vs_prune"] = _dp_vs_prune(settings, points, results)
    summary["seconds"] = {name: strategies[name]["seconds"] for name in settings.strategies}
    return summary


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
    for r in results:
        bank = Path(r["path"]).parent.parent / "banks" / f"seed-{r['seed']}"
        if (bank / "index.parquet").exists():
            return float(Pool(bank).index()["seconds_per_image"].iloc[0])
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


def print_summary(summary: dict[str, Any], out: Path) -> None:
    """The readable table at the end of a study."""
    strategies = summary["strategies"]
    sizes = sorted({int(n) for s in strategies.values() for n in s["mean"]})
    names = list(strategies)
    header = f"{'size':>6} | " + " | ".join(f"{LABELS.get(n, n)[:22]:>22}" for n in names)
    echo("")
    echo("test accuracy on real held-out digits (mean over seeds)")
    echo(header)
    echo("-" * len(header))
    for n in sizes:
        cells = []
        for name in names:
            acc = strategies[name]["mean"].get(str(n))
            k = sum(1 for v in strategies[name]["per_seed"].values() if str(n) in v)
            cells.append(f"{'':>22}" if acc is None else f"{100 * acc:>17.1f}% ({k})")
        echo(f"{n:>6} | " + " | ".join(cells))
    echo("")
    if "data_multiplier" in summary:
        d = summary["data_multiplier_detail"]
        ci = summary["data_multiplier_ci"]
        if summary["data_multiplier"] is None:
            echo(f"data multiplier: DP did not reach static's best ({100 * d['target']:.1f}% at n={d['static_size']}) "
                 "within the sizes measured")
        else:
            lo_text = "unbounded" if ci is None or ci[0] is None else f"{ci[0]:.2f}"
            ci_text = (f" ({d.get('ci_note') or 'no interval'})" if ci is None
                       else f" (95% CI {lo_text}-{ci[1]:.2f} over seeds)")
            echo(f"data multiplier: {summary['data_multiplier']:.2f}x{ci_text} - DP reaches static's best "
                 f"{100 * d['target']:.1f}% (n={d['static_size']}) with n={d['dp_size']:.0f}")
        gains = summary.get("dp_gain_equal_size", {})
        if gains:
            echo("DP - static at equal size: " + ", ".join(
                f"n={n}: {100 * g['mean']:+.1f} pts" for n, g in gains.items()))
        vs = summary.get("dp_vs_vanilla_equal_size", {})
        if vs:
            echo("DP - dynamic-vanilla at equal size: " + ", ".join(
                f"n={n}: {100 * g['mean']:+.1f} pts" for n, g in vs.items()))
        pr = summary.get("dp_vs_prune")
        if pr and pr.get("prune_accuracy") is not None and pr.get("dp_accuracy") is not None:
            cost = pr.get("prune_over_dp_cost")
            echo(f"at n={pr['size']}: DP {100 * pr['dp_accuracy']:.1f}% vs generate-then-prune "
                 f"{100 * pr['prune_accuracy']:.1f}%" + ("" if cost is None else
                                                          f"; prune costs {cost:.2f}x DP's generation time"))
    phases = summary["seconds"].get("phases", {})
    if phases:
        echo("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items())
             + f"; peak memory {summary.get('peak_memory_mb', 0):.0f} MiB")
    echo(f"report: {out / 'report.html'}")
