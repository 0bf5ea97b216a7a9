"""The work behind `practicum fit` and `practicum compare` (kept out of commands.py so the CLI
starts fast).

`practicum fit` validates the whole CSV and the settings first (no output on bad input), then
opens the run directory, fits each curve through the executor (one item per curve, each with
its own seed from `shard_seed`), logs each finished curve to metrics.jsonl (so `--resume`
skips it), and finally writes `fit.json` and `fit.png` atomically.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import field_validator

from practicum.config import Settings
from practicum.errors import ConfigError, DataError, FitError
from practicum.log import echo

PLOT_POINTS = 120


class FitSettings(Settings):
    curves: str
    family: str = "auto"
    metric: str = "error"
    extrapolate_to: list[float] = []
    target: Optional[float] = None
    holdout_frac: Optional[float] = None
    n_boot: int = 200
    level: float = 0.95
    seed: int = 0
    engine: str = "local"

    @field_validator("holdout_frac")
    @classmethod
    def _frac(cls, v):
        if v is not None and not 0 < v < 1:
            raise ValueError("must lie strictly between 0 and 1")
        return v

    @field_validator("level")
    @classmethod
    def _level(cls, v):
        if not 0 < v < 1:
            raise ValueError("must lie strictly between 0 and 1")
        return v

    @field_validator("n_boot")
    @classmethod
    def _nboot(cls, v):
        if v < 0:
            raise ValueError("must be >= 0")
        return v


class CompareSettings(Settings):
    curve_a: str
    curve_b: str
    family: str = "auto"
    metric: str = "error"
    target: Optional[float] = None
    curve: Optional[str] = None
    n_boot: int = 200
    seed: int = 0


def _check_family(name: str, metric: str) -> None:
    from practicum.scaling.families import get_family
    from practicum.scaling.law import METRICS

    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}", f"use one of {', '.join(METRICS)}")
    if name != "auto":
        fam = get_family(name)
        if fam.kind != "curve":
            raise ConfigError(f"{fam.name} is not a law of one curve", "use auto or a single-curve family")


def _min_points(family: str) -> int:
    from practicum.scaling.families import get_family

    return 2 if family == "auto" else get_family(family).min_points


def _check_extrapolations(values: list[float]) -> None:
    for v in values:
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"--extrapolate-to {v:g} is not a positive size", "give data sizes > 0")


# ---------------------------------------------------------------- one curve (executor item)

def fit_one(item: dict[str, Any]) -> dict[str, Any]:
    """Fit one curve and compute everything fit.json reports about it. Top-level: picklable."""
    from practicum.scaling._threads import single_thread_blas
    from practicum.scaling.evaluate import prefix_split
    from practicum.scaling.law import ScalingLaw, loss_space, rmsle

    x, y = np.asarray(item["x"], dtype=float), np.asarray(item["y"], dtype=float)
    seeds = None if item["seeds"] is None else np.asarray(item["seeds"])
    metric, level = item["metric"], item["level"]
    result: dict[str, Any] = {"curve": item["name"]}
    fit_mask = np.ones(x.size, dtype=bool)
    if item["holdout_frac"] is not None:
        fit_mask = prefix_split(x, item["holdout_frac"])
    with warnings.catch_warnings(record=True) as caught, single_thread_blas():
        warnings.simplefilter("always")
        law = ScalingLaw(item["family"], metric=metric, seed=item["seed"]).fit(
            x[fit_mask], y[fit_mask], seeds=None if seeds is None else seeds[fit_mask])
        result.update(law.to_dict())
        result["warnings"] = sorted({str(w.message) for w in caught} | set(law.warnings_))
        if not fit_mask.all():
            held_x, held_y = x[~fit_mask], y[~fit_mask]
            pred = law.predict(held_x)
            last = held_x == held_x.max()
            result["holdout"] = {
                "fraction": item["holdout_frac"], "n_fit": int(fit_mask.sum()), "n_heldout": int((~fit_mask).sum()),
                "rmsle": rmsle(loss_space(pred, metric), loss_space(held_y, metric)),
                "last_abs_error": float(np.mean(np.abs(pred[last] - held_y[last]))),
            }
        boot = law.bootstrap(item["n_boot"], seed=item["seed"]) if item["n_boot"] > 0 else None
        if boot is not None:
            result["bootstrap"] = boot.to_dict(level)
        preds = []
        for xe in item["extrapolate_to"]:
            entry: dict[str, Any] = {"x": xe, "prediction": float(law.predict([xe])[0])}
            if boot is not None:
                lo, hi = boot.predict_ci([xe], level)
                entry["ci"] = [float(lo[0]), float(hi[0])]
            preds.append(entry)
        result["extrapolations"] = preds
        if item["target"] is not None:
            entry = {"target": item["target"]}
            try:
                entry["x_needed"] = law.invert(item["target"])
            except FitError as exc:
                entry["x_needed"] = None
                entry["note"] = exc.problem
            if boot is not None:
                entry["ci"] = boot.invert_ci(item["target"], level)
            result["target"] = entry
        top = max([float(x.max())] + list(item["extrapolate_to"]))
        grid = np.geomspace(float(x.min()), top, PLOT_POINTS)
        band = {"x": grid.tolist(), "fit": law.predict(grid).tolist()}
        if boot is not None and boot.n_ok:
            lo, hi = boot.predict_ci(grid, level)
            band.update(low=lo.tolist(), high=hi.tolist())
        result["curve_data"] = {"x": x.tolist(), "y": y.tolist(), "fitted": fit_mask.tolist()}
        result["band"] = band
    return result


# ---------------------------------------------------------------- plots

def _plot(results: list[dict[str, Any]], path: Path, metric: str, title: str) -> None:
    from practicum.report import new_figure, save_figure

    fig, ax = new_figure(7.0, 4.5)
    colors = [f"C{i % 10}" for i in range(len(results))]
    for res, color in zip(results, colors):
        data, band = res["curve_data"], res["band"]
        x, y, fitted = (np.asarray(data[k]) for k in ("x", "y", "fitted"))
        ax.scatter(x[fitted], y[fitted], color=color, s=18, zorder=3)
        if (~fitted).any():
            ax.scatter(x[~fitted], y[~fitted], facecolors="none", edgecolors=color, s=24, zorder=3)
        gx, gy = np.asarray(band["x"]), np.asarray(band["fit"], dtype=float)
        ok = np.isfinite(gy) & (gy > 0)
        ax.plot(gx[ok], gy[ok], color=color, lw=1.5, label=f"{res['curve']} ({res['family']})")
        if "low" in band:
            lo, hi = np.asarray(band["low"], dtype=float), np.asarray(band["high"], dtype=float)
            okb = np.isfinite(lo) & np.isfinite(hi) & (lo > 0)
            ax.fill_between(gx[okb], lo[okb], hi[okb], color=color, alpha=0.18, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("data size x")
    ax.set_ylabel(metric)
    ax.set_title(title)
    if len(results) <= 12:
        ax.legend(fontsize=7)
    save_figure(fig, path)


# ---------------------------------------------------------------- practicum fit

def run_fit(settings: FitSettings, out: Path, *, resume: bool = False, overwrite: bool = False) -> list[dict]:
    from practicum.data import RunDir
    from practicum.engine import get_executor, shard_seed
    from practicum.scaling.io import read_curves

    # Everything is validated before the run directory exists: bad input leaves no output.
    _check_family(settings.family, settings.metric)
    _check_extrapolations(settings.extrapolate_to)
    curves = read_curves(settings.curves, metric=settings.metric)
    need = _min_points(settings.family)
    for c in curves:
        distinct = np.unique(c.x).size
        if settings.holdout_frac is not None:
            if distinct < 3:
                raise DataError(f"curve {c.name!r} has {distinct} distinct sizes; a hold-out needs 3",
                                "drop --holdout-frac or add sizes")
        if distinct < need:
            raise FitError(f"curve {c.name!r} has {distinct} distinct sizes but {settings.family} needs {need}",
                           "add sizes or choose a family with fewer parameters")
    executor = get_executor(settings.engine)
    with RunDir.create(out, settings.to_yaml(), seed=settings.seed, command="fit", resume=resume,
                       overwrite=overwrite, inputs={"the curves CSV": settings.curves}) as run:
        done = {row["result"]["curve"]: row["result"] for row in run.metrics("curve")} if resume else {}
        items = [dict(name=c.name, x=c.x.tolist(), y=c.y.tolist(),
                      seeds=None if c.seeds is None else c.seeds.tolist(), family=settings.family,
                      metric=settings.metric, holdout_frac=settings.holdout_frac, n_boot=settings.n_boot,
                      level=settings.level, extrapolate_to=settings.extrapolate_to, target=settings.target,
                      seed=shard_seed(settings.seed, 0, i) % (2 ** 32))
                 for i, c in enumerate(curves) if c.name not in done]
        for _, result in executor.imap(fit_one, items, description="fitting curves"):  # logged as each finishes
            run.log_metric({"event": "curve", "result": result})
            done[result["curve"]] = result
        results = [done[c.name] for c in curves]
        run.write_json("fit.json", {"settings": settings.model_dump(), "curves": results})
        _plot(results, run.sub("figures") / "fit.png", settings.metric, Path(settings.curves).name)
        run.finish(curves=len(results))
    for res in results:
        line = f"{res['curve']}: {res['family']} " + " ".join(f"{k}={v:.4g}" for k, v in res["params"].items())
        line += f"  R2={res['diagnostics']['r2']:.4f} RMSLE={res['diagnostics']['rmsle']:.3g}"
        if "holdout" in res:
            line += f"  holdout RMSLE={res['holdout']['rmsle']:.3g}"
        for e in res["extrapolations"]:
            ci = f" [{e['ci'][0]:.4g}, {e['ci'][1]:.4g}]" if "ci" in e else ""
            line += f"  y({e['x']:g})={e['prediction']:.4g}{ci}"
        if "target" in res and res["target"].get("x_needed") is not None:
            line += f"  x({res['target']['target']:g})={res['target']['x_needed']:.4g}"
        echo(line)
    echo(f"wrote {Path(out) / 'fit.json'} and {Path(out) / 'figures' / 'fit.png'}")
    return results


# ---------------------------------------------------------------- practicum compare

def _one_curve(path: str, metric: str, name: Optional[str]):
    from practicum.scaling.io import read_curves

    curves = read_curves(path, metric=metric)
    if name is not None:
        match = [c for c in curves if c.name == name]
        if not match:
            raise DataError(f"{path} has no curve {name!r}", f"its curves: {', '.join(c.name for c in curves)}")
        return match[0]
    if len(curves) > 1:
        raise DataError(f"{path} holds {len(curves)} curves", "pick one with --curve NAME")
    return curves[0]


def run_compare(settings: CompareSettings, out: Path, *, resume: bool = False, overwrite: bool = False) -> dict:
    from practicum.data import RunDir
    from practicum.scaling._threads import single_thread_blas
    from practicum.scaling.compare import data_multiplier

    _check_family(settings.family, settings.metric)
    a = _one_curve(settings.curve_a, settings.metric, settings.curve)
    b = _one_curve(settings.curve_b, settings.metric, settings.curve)
    need = _min_points(settings.family)
    for label, c in (("A", a), ("B", b)):
        if np.unique(c.x).size < need:
            raise FitError(f"curve {label} has {np.unique(c.x).size} distinct sizes but {settings.family} needs "
                           f"{need}", "add sizes or choose a family with fewer parameters")
    with RunDir.create(out, settings.to_yaml(), seed=settings.seed, command="compare", resume=resume,
                       overwrite=overwrite, inputs={"curve A's CSV": settings.curve_a,
                                                    "curve B's CSV": settings.curve_b}) as run:
        payload = run.read_json("compare.json") if resume else None
        if payload is None:
            with warnings.catch_warnings(), single_thread_blas():
                warnings.simplefilter("ignore")
                res = data_multiplier(a.x, a.y, b.x, b.y, seeds_a=a.seeds, seeds_b=b.seeds, target=settings.target,
                                      metric=settings.metric, family=settings.family, n_boot=settings.n_boot,
                                      seed=settings.seed)
            payload = {"settings": settings.model_dump(), **res.to_dict(), "summary": res.summary()}
            run.log_metric({"event": "compare", "multiplier": res.multiplier, "ci": list(res.ci),
                            "crossover": res.crossover})
            run.write_json("compare.json", payload)
            _plot_compare(a, b, res, run.sub("figures") / "compare.png", settings.metric)
        run.finish()
    echo(payload["summary"])
    echo(f"wrote {Path(out) / 'compare.json'}")
    return payload


def _plot_compare(a, b, res, path: Path, metric: str) -> None:
    from practicum.report import new_figure, save_figure

    fig, ax = new_figure(6.5, 4.2)
    top = max(a.x.max(), b.x.max(), res.x_a, res.x_b)
    grid = np.geomspace(min(a.x.min(), b.x.min()), top, PLOT_POINTS)
    for label, c, law, color in (("A", a, res.law_a, "C0"), ("B", b, res.law_b, "C1")):
        ax.scatter(c.x, c.y, color=color, s=18, zorder=3)
        pred = law.predict(grid)
        ok = np.isfinite(pred) & (pred > 0)
        ax.plot(grid[ok], pred[ok], color=color, label=f"{label}: {law.family_}")
    ax.axhline(res.target, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("data size x")
    ax.set_ylabel(metric)
    ax.set_title(f"B needs {res.multiplier:.3g}x less data")
    ax.legend(fontsize=8)
    save_figure(fig, path)
