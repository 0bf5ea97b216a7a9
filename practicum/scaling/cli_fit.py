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
from pydantic import Field, field_validator

from practicum.config import Settings
from practicum.data import RunDir
from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError, DataError, FitError
from practicum.files import read_json
from practicum.limits import SeedValue
from practicum.log import echo
from practicum.scaling._threads import single_thread_blas
from practicum.scaling.bootstrap import calibration_note, choose_unit, interval_ok, made_at, n_seed_labels
from practicum.scaling.compare import data_multiplier
from practicum.scaling.evaluate import prefix_split
from practicum.scaling.families import get_family
from practicum.scaling.io import read_curves
from practicum.scaling.law import METRICS, ScalingLaw, loss_space, rmsle

PLOT_POINTS = 120


MAX_BOOT = 10_000  # bootstrap refits: beyond this the intervals no longer change
MAX_LEVEL = 0.999  # the tails of a 0.999 interval already rest on the 5 most extreme of 10,000 refits


class FitSettings(Settings):
    curves: str
    family: str = "auto"
    metric: str = "error"
    extrapolate_to: list[float] = []
    target: Optional[float] = None
    holdout_frac: Optional[float] = None
    n_boot: int = Field(200, ge=0, le=MAX_BOOT)
    level: float = 0.95
    seed: SeedValue = 0
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
        if not 0 < v <= MAX_LEVEL:
            raise ValueError(f"must lie in (0, {MAX_LEVEL}]: a higher level needs more refits than a run can do")
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
    curve_a_name: Optional[str] = None
    curve_b_name: Optional[str] = None
    n_boot: int = Field(200, ge=0, le=MAX_BOOT)
    seed: SeedValue = 0


def _check_family(name: str, metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}", f"use one of {', '.join(METRICS)}")
    if name != "auto":
        fam = get_family(name)
        if fam.kind != "curve":
            raise ConfigError(f"{fam.name} is not a law of one curve", "use auto or a single-curve family")


def _min_points(family: str) -> int:
    return 2 if family == "auto" else get_family(family).min_points


def _check_extrapolations(values: list[float]) -> None:
    for v in values:
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"--extrapolate-to {v:g} is not a positive size", "give data sizes > 0")


# ---------------------------------------------------------------- one curve (executor item)

def fit_one(item: dict[str, Any]) -> dict[str, Any]:
    """Fit one curve and compute everything fit.json reports about it. Top-level: picklable."""
    x, y = np.asarray(item["x"], dtype=float), np.asarray(item["y"], dtype=float)
    seeds = None if item["seeds"] is None else np.asarray(item["seeds"])
    metric, level = item["metric"], item["level"]
    result: dict[str, Any] = {"curve": item["name"]}
    fit_mask = np.ones(x.size, dtype=bool)
    if item["holdout_frac"] is not None:
        fit_mask = prefix_split(x, item["holdout_frac"])
    fit_seeds = None if seeds is None else seeds[fit_mask]
    n_sizes, n_fit_sizes = np.unique(x).size, np.unique(x[fit_mask]).size
    with warnings.catch_warnings(record=True) as caught, single_thread_blas():
        warnings.simplefilter("always")
        law = ScalingLaw(item["family"], metric=metric, seed=item["seed"]).fit(x[fit_mask], y[fit_mask],
                                                                             seeds=fit_seeds)
        result.update(law.to_dict())
        result["warnings"] = sorted({str(w.message) for w in caught} | set(law.warnings_))
        result["fitted_on"] = ("all sizes" if fit_mask.all() else
                               f"the first {n_fit_sizes} of {n_sizes} sizes (x <= {x[fit_mask].max():g}); every "
                               "number reported comes from this prefix fit, the rest are held out")
        if not fit_mask.all():
            held_x, held_y = x[~fit_mask], y[~fit_mask]
            pred = law.predict(held_x)
            last = held_x == held_x.max()
            result["holdout"] = {
                "fraction": item["holdout_frac"], "n_fit": int(fit_mask.sum()), "n_heldout": int((~fit_mask).sum()),
                "rmsle": rmsle(loss_space(pred, metric), loss_space(held_y, metric)),
                "last_abs_error": float(np.mean(np.abs(pred[last] - held_y[last]))),
            }
        n_seeds = n_seed_labels(fit_seeds)
        boot = law.bootstrap(item["n_boot"], seed=item["seed"]) if item["n_boot"] > 0 else None
        if boot is not None:
            result["bootstrap"] = boot.to_dict(level)
            result["interval_note"] = boot.note()
        else:
            result["interval_note"] = "no bootstrap (--n-boot 0): no intervals"
        unit = choose_unit(fit_seeds)
        families = (law.family_, "auto") if law.family == "auto" else law.family_
        pred_ok, pred_why = interval_ok("prediction", n_seeds, unit, level, families)
        inv_ok, inv_why = interval_ok("x_needed", n_seeds, unit, level, families)
        preds = []
        for xe in item["extrapolate_to"]:
            value = float(law.predict([xe])[0])
            entry: dict[str, Any] = {"x": xe, "prediction": value, "in_range": bool(law.in_range([value])[0])}
            if boot is not None and pred_ok:
                lo, hi = boot.predict_ci([xe], made_at("prediction", n_seeds, unit, level))
                entry["ci"] = [float(lo[0]), float(hi[0])]
            elif boot is not None:
                entry["ci_withheld"] = pred_why
            preds.append(entry)
        result["extrapolations"] = preds
        if item["target"] is not None:
            entry = {"target": item["target"]}
            try:
                entry["x_needed"] = law.invert(item["target"])
            except FitError as exc:
                entry["x_needed"] = None
                entry["note"] = exc.problem
            if boot is not None and inv_ok:
                entry["ci"] = boot.invert_ci(item["target"], made_at("x_needed", n_seeds, unit, level))
                note = calibration_note("x_needed", n_seeds, unit, level)
                if note:
                    entry["ci_note"] = note
            elif boot is not None:
                entry["ci_withheld"] = inv_why
            result["target"] = entry
        if law.auto_ranked_:
            result["model_spread"] = _model_spread(law, x[fit_mask], y[fit_mask], fit_seeds, item)
        top = max([float(x.max())] + list(item["extrapolate_to"]))
        if result.get("target", {}).get("x_needed"):
            top = max(top, min(float(result["target"]["x_needed"]), 1e6 * float(x.max())))
        grid = np.geomspace(float(x.min()), top, PLOT_POINTS)
        band = {"x": grid.tolist(), "fit": law.predict(grid).tolist()}
        if boot is not None and boot.n_ok and pred_ok:
            lo, hi = boot.predict_ci(grid, made_at("prediction", n_seeds, unit, level))
            band.update(low=lo.tolist(), high=hi.tolist(),
                        label=f"{level:.0%} confidence band of the mean curve ("
                              f"{'seed jackknife-t' if boot.by == 'seeds' else 'bootstrap over points'}; "
                              f"assumes {law.family_})")
        result["curve_data"] = {"x": x.tolist(), "y": y.tolist(), "fitted": fit_mask.tolist()}
        result["band"] = band
    return result


def _model_spread(law, x, y, seeds, item, top: int = 3) -> dict[str, Any]:
    """For auto: the best `top` candidates refitted on the same data, and the range of their
    answers — the uncertainty the chosen family's bootstrap interval does not include."""
    rows = []
    for name in law.auto_ranked_[:top]:
        try:
            other = law if name == law.family_ else ScalingLaw(name, metric=law.metric, warn=False).fit(
                x, y, seeds=seeds)
        except FitError:
            continue
        row = {"family": name, "predictions": [float(other.predict([xe])[0]) for xe in item["extrapolate_to"]]}
        if item["target"] is not None:
            try:
                row["x_needed"] = other.invert(item["target"])
            except FitError:
                row["x_needed"] = None
        rows.append(row)
    spread: dict[str, Any] = {"families": [r["family"] for r in rows], "per_family": rows}
    spread["predictions"] = [[min(r["predictions"][i] for r in rows), max(r["predictions"][i] for r in rows)]
                             for i in range(len(item["extrapolate_to"]))] if rows else []
    needs = [r.get("x_needed") for r in rows]
    if item["target"] is not None and needs:
        finite = [v for v in needs if v is not None]
        spread["x_needed"] = [min(finite), max(finite)] if finite else None
        spread["x_needed_unreached_by"] = [r["family"] for r in rows if r.get("x_needed") is None]
    return spread


# ---------------------------------------------------------------- plots

def _plot(results: list[dict[str, Any]], path: Path, metric: str, title: str) -> None:
    """Data (filled: fitted, hollow: held out), the fit, its confidence band of the mean curve,
    the last observed x (dotted), the target (dashed) and the x needed for it (dash-dot)."""
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    fig, ax = new_figure(7.0, 4.5)
    colors = [f"C{i % 10}" for i in range(len(results))]
    band_label = None
    for res, color in zip(results, colors):
        data, band = res["curve_data"], res["band"]
        x, y, fitted = (np.asarray(data[k]) for k in ("x", "y", "fitted"))
        ax.scatter(x[fitted], y[fitted], color=color, s=18, zorder=3)
        if (~fitted).any():
            ax.scatter(x[~fitted], y[~fitted], facecolors="none", edgecolors=color, s=28, zorder=3,
                       label=f"{res['curve']}: held out")
        gx, gy = np.asarray(band["x"]), np.asarray(band["fit"], dtype=float)
        ok = np.isfinite(gy) & (gy > 0)
        ax.plot(gx[ok], gy[ok], color=color, lw=1.5, label=f"{res['curve']} ({res['family']})")
        if "low" in band:
            lo, hi = np.asarray(band["low"], dtype=float), np.asarray(band["high"], dtype=float)
            okb = np.isfinite(lo) & np.isfinite(hi) & (lo > 0)
            ax.fill_between(gx[okb], lo[okb], hi[okb], color=color, alpha=0.18, lw=0)
            band_label = band.get("label", "confidence band of the mean curve")
        ax.axvline(float(x[fitted].max()), color=color, ls=":", lw=1)
        target = res.get("target")
        if target is not None:
            ax.axhline(target["target"], color="grey", ls="--", lw=1)
            if target.get("x_needed"):
                ax.axvline(target["x_needed"], color=color, ls="-.", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("data size x  (dotted: last fitted x; dashed: target; dash-dot: x needed)")
    ax.set_ylabel(metric)
    ax.set_title(title if band_label is None else f"{title}\nshaded: {band_label}", fontsize=8)
    if len(results) <= 12:
        ax.legend(fontsize=7)
    save_figure(fig, path)


# ---------------------------------------------------------------- practicum fit

def run_fit(settings: FitSettings, out: Path, *, resume: bool = False, overwrite: bool = False) -> list[dict]:
    # Everything is validated before the run directory exists: bad input leaves no output.
    _check_family(settings.family, settings.metric)
    _check_extrapolations(settings.extrapolate_to)
    curves = read_curves(settings.curves, metric=settings.metric)
    need = _min_points(settings.family)
    for c in curves:
        distinct = np.unique(c.x).size
        if not np.any(c.y):
            raise DataError(f"curve {c.name!r} is all zeros: no law of a falling {settings.metric} describes it",
                            "check the y column")
        if settings.holdout_frac is not None:
            if distinct < 3:
                raise DataError(f"curve {c.name!r} has {distinct} distinct sizes; a hold-out needs 3",
                                "drop --holdout-frac or add sizes")
            fitted = int(round(settings.holdout_frac * distinct))
            if not 2 <= fitted <= distinct - 1:
                raise ConfigError(f"--holdout-frac {settings.holdout_frac:g} of curve {c.name!r}'s {distinct} sizes "
                                  f"fits {fitted}; a hold-out fits 2 to {distinct - 1} of them",
                                  f"give a fraction between {2 / distinct:.2g} and {(distinct - 1) / distinct:.2g}")
        if distinct < 3:
            echo(f"warning: curve {c.name!r} has {distinct} distinct sizes: a 2-parameter law passes through "
                 "them exactly, so its R2 = 1 says nothing")
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
        echo(_fit_line(res))
    echo(f"wrote {Path(out) / 'fit.json'} and {Path(out) / 'figures' / 'fit.png'}")
    return results


def _fmt_params(res: dict) -> str:
    """Parameters for x in the user's units (natural), or the fitted ones with their x unit."""
    if res.get("natural_params") is not None:
        return " ".join(f"{k}={v:.4g}" for k, v in res["natural_params"].items())
    return (" ".join(f"{k}={v:.4g}" for k, v in res["params"].items())
            + f" (for x/{res['x_scale']:.4g})")


def _fit_line(res: dict) -> str:
    line = f"{res['curve']}: {res['family']} [{res.get('metric_formula', res['formula'])}] {_fmt_params(res)}"
    line += f"  R2={res['diagnostics']['r2']:.4f} RMSLE={res['diagnostics']['rmsle']:.3g}"
    if res.get("fitted_on", "all sizes") != "all sizes":
        line += f"\n  fitted on {res['fitted_on']}"
    if "holdout" in res:
        line += f"; holdout RMSLE={res['holdout']['rmsle']:.3g}"
    for e in res["extrapolations"]:
        ci = f" [{e['ci'][0]:.4g}, {e['ci'][1]:.4g}]" if "ci" in e else ""
        flag = "" if e.get("in_range", True) else " (OUTSIDE the metric's valid range)"
        line += f"\n  y({e['x']:g}) = {e['prediction']:.4g}{ci}{flag}"
    if "target" in res:
        t = res["target"]
        if t.get("x_needed") is not None:
            ci = t.get("ci")
            ci_text = (f" [{ci['low']:.4g}, {ci['high']:.4g}]" if ci and np.isfinite(ci["low"]) else "")
            line += f"\n  x needed for {t['target']:g} = {t['x_needed']:.4g}{ci_text}"
            line += f" ({t['ci_note']})" if ci_text and t.get("ci_note") else ""
        else:
            line += f"\n  x needed for {t['target']:g}: never ({t.get('note', '')})"
    spread = res.get("model_spread")
    if spread and len(spread["families"]) > 1:
        parts = [f"y({e['x']:g}) {lo:.4g}..{hi:.4g}" for e, (lo, hi) in zip(res["extrapolations"],
                                                                              spread["predictions"])]
        if spread.get("x_needed"):
            parts.append(f"x needed {spread['x_needed'][0]:.4g}..{spread['x_needed'][1]:.4g}")
        if parts:
            line += f"\n  spread over the best auto candidates ({', '.join(spread['families'])}): " + "; ".join(parts)
    withheld = {e.get("ci_withheld") for e in res["extrapolations"]} | {res.get("target", {}).get("ci_withheld")}
    withheld.discard(None)
    line += f"\n  intervals: {res['interval_note']}" if res["extrapolations"] or "target" in res else ""
    for why in sorted(withheld):
        line += f"\n  some intervals {why}"
    for w in res.get("warnings", []):
        if "outside its valid range" in w or "does not fit" in w:
            line += f"\n  warning: {w}"
    return line


# ---------------------------------------------------------------- practicum compare

def _one_curve(path: str, metric: str, name: Optional[str]):
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
    _check_family(settings.family, settings.metric)
    # --curve picks the same name in both files; --curve-a / --curve-b pick in one file each
    a = _one_curve(settings.curve_a, settings.metric, settings.curve_a_name or settings.curve)
    b = _one_curve(settings.curve_b, settings.metric, settings.curve_b_name or settings.curve)
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
            run.log_metric({"event": "compare", "multiplier": res.multiplier, "ci": None if res.ci is None else list(res.ci),
                            "crossover": res.crossover})
            run.write_json("compare.json", payload)
            _plot_compare(a, b, res, run.sub("figures") / "compare.png", settings.metric)
        run.finish()
    echo(payload["summary"])
    echo(f"wrote {Path(out) / 'compare.json'}")
    return payload


def _plot_compare(a, b, res, path: Path, metric: str) -> None:
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    fig, ax = new_figure(6.5, 4.2)
    top = max(a.x.max(), b.x.max(), res.x_a, res.x_b)
    grid = np.geomspace(min(a.x.min(), b.x.min()), top, PLOT_POINTS)
    for label, c, law, color in (("A", a, res.law_a, "C0"), ("B", b, res.law_b, "C1")):
        ax.scatter(c.x, c.y, color=color, s=18, zorder=3)
        pred = law.predict(grid)
        ok = np.isfinite(pred) & (pred > 0)
        ax.plot(grid[ok], pred[ok], color=color, label=f"{label}: {law.family_}")
        ax.axvline(float(c.x.max()), color=color, ls=":", lw=1)
    ax.axhline(res.target, color="grey", ls="--", lw=1, label="target")
    ax.axvline(res.x_a, color="C0", ls="-.", lw=1)
    ax.axvline(res.x_b, color="C1", ls="-.", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("data size x")
    ax.set_ylabel(metric)
    ax.set_title(res.wording())
    ax.legend(fontsize=8)
    save_figure(fig, path)


# ---------------------------------------------------------------- practicum predict

def load_law(path: Path, curve: Optional[str] = None):
    """The saved law of one curve from fit.json (or a single `ScalingLaw.to_dict()` JSON)."""
    data = read_json(path, DataError, "pass the fit.json written by practicum fit")
    entries = data.get("curves", [data]) if isinstance(data, dict) else []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DataError(f"{path}: 'curves' must be a list of laws", "pass the fit.json written by practicum fit")
    if curve is not None:
        entries = [e for e in entries if e.get("curve") == curve]
        if not entries:
            raise DataError(f"{path} has no curve {curve!r}", "check --curve against the names in fit.json")
    if len(entries) != 1:
        names = ", ".join(str(e.get("curve")) for e in entries)
        raise DataError(f"{path} holds {len(entries)} laws", f"pick one with --curve NAME ({names})")
    try:
        return ScalingLaw.from_dict(entries[0])
    except DataError as exc:
        raise DataError(f"{path}: {exc.problem}", exc.fix) from None


def run_predict(path: Path, xs: list[float], *, curve: Optional[str] = None, target: Optional[float] = None) -> dict:
    _check_extrapolations(list(xs))
    law = load_law(path, curve)
    out: dict[str, Any] = {"family": law.family_, "metric": law.metric, "predictions": []}
    echo(f"{law.family_} [{law.metric_formula}]; fitted on x in {law.x_[0]:.4g}..{law.x_[1]:.4g}")
    if not law.fits_data_:
        echo("warning: this law did not fit its data (R2 < 0); its predictions are not usable")
    for xe in xs:
        value = float(law.predict([xe])[0])
        if not math.isfinite(value):
            raise DataError(f"the law in {path} predicts {value} at x = {xe:g}",
                            "refit it with practicum fit; its parameters are unusable")
        ok = bool(law.in_range([value])[0])
        out["predictions"].append({"x": xe, "prediction": value, "in_range": ok})
        flag = "" if ok else f" (OUTSIDE the valid range {law.valid_range_text()})"
        beyond = f" ({xe / law.x_[1]:.3g}x beyond the largest fitted size)" if xe > law.x_[1] else ""
        echo(f"y({xe:g}) = {value:.4g}{flag}{beyond}")
    if target is not None:
        try:
            need = law.invert(target)
            echo(f"x needed for {target:g} = {need:.4g}")
        except FitError as exc:
            need = None
            echo(f"x needed for {target:g}: never ({exc.problem})")
        out["x_needed"] = need
    echo("no interval: a saved law keeps no bootstrap; run practicum fit with --extrapolate-to/--target for one")
    return out
