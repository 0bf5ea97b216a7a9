"""`practicum theory`: every theory check as a stage of one resumable run.

Stages compute numbers only and write them to `stages/<name>.json`; the figures, the summary
and the HTML report are redrawn from those files (so a resumed run skips finished stages and
the plots are reproducible from the folder alone). Monte-Carlo work goes through the executor
with one seed per trial.

| stage       | what it checks                                                                  |
|-------------|---------------------------------------------------------------------------------|
| reference   | Theorem 1 vs Monte-Carlo at the spec's table points (d = 200, λ = 1e-2, ρ = 0.8) |
| rules       | error vs kept size per rule (DP Fig. 3), theory curves with simulation points   |
| regime      | which rule wins vs data abundance n/d and kept fraction p, with MC spot checks  |
| descent     | multiple descent vs p (DP Fig. 7), peak at p = φ = d/n                          |
| corollary   | Corollary 1 (λ → 0) vs Theorem 1 at λ = 1e-4                                    |
| sorscher    | Sorscher et al.'s max-margin table (N = 100)                                    |
| dimension   | intrinsic dimension (synthetic 5-D manifold; digits) and α ≈ c/D on digits     |
| binning     | the binning estimator's log–log slope for d = 1, 2, 4 vs n^(−2/(2+d))           |
| composition | digits mixtures: shared exponent, per-mixture intercepts, F-tests               |
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import Field, field_validator
from threadpoolctl import threadpool_limits

from practicum.config import Settings
from practicum.engine import ENGINES
from practicum.limits import SeedValue
from practicum.log import progress_bar
from practicum.scaling.theory import bounds, composition, intrinsic_dim, learning_curve, nonparametric
from practicum.scaling.theory.closed_form import (
    Rule,
    corollary_error,
    fraction_for_threshold,
    theorem_error,
)
from practicum.scaling.theory.simulation import simulate_points, sorscher_point

STAGES = ("reference", "rules", "regime", "descent", "corollary", "sorscher", "dimension", "binning", "composition")
COMPARE_RULES = ("keep-hard", "keep-easy", "random")

# Spec §8.2 reference table (Theorem 1, d = 200, λ = 1e-2, ρ = 0.8) and §8.1 (Sorscher, N = 100).
REFERENCE_TABLE = {
    ("keep-hard", 0.5): {100: 0.430, 400: 0.366, 1600: 0.132, 6400: 0.065},
    ("keep-easy", 1.5): {100: 0.381, 400: 0.301, 1600: 0.252, 6400: 0.194},
    ("none", None): {100: 0.339, 400: 0.203, 1600: 0.088, 6400: 0.043},
}
SORSCHER_TABLE = [  # (α_tot, f, θ) → random, keep-hard, keep-easy
    (2, 0.5, 0.0, (0.272, 0.314, 0.174)),
    (2, 0.2, 0.0, (0.348, 0.466, 0.217)),
    (20, 0.5, 0.0, (0.048, 0.022, 0.028)),
    (20, 0.2, 0.0, (0.111, 0.023, 0.046)),
    (20, 0.1, 0.3, (None, 0.398, 0.116)),
]


class TheorySettings(Settings):
    """Settings of `practicum theory`."""

    quick: bool = Field(False, description="small dimensions and few seeds: finishes in well under a minute")
    seed: SeedValue = 0
    seeds: int | None = Field(None, ge=1, le=10_000, description="Monte-Carlo pools per point at the largest sizes "
                                                      "(None: 5, or 3 with --quick); small sizes get more")
    lam: float = Field(1e-2, gt=0, description="ridge λ of the reference, rules and regime stages")
    rho: float = Field(0.8, gt=-1, lt=1, description="ρ of the reference table")
    engine: str = "local"
    stages: list[str] = Field(default_factory=lambda: list(STAGES))

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; use one of {', '.join(ENGINES)}")
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if s not in STAGES]
        if bad:
            raise ValueError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}")
        return [s for s in STAGES if s in value]  # canonical order

    def plan(self) -> dict[str, Any]:
        """The concrete sizes of every stage (recorded in summary.json)."""
        q = self.quick
        return {
            "seeds": self.seeds or (3 if q else 5),
            "reference_sizes": [100, 400, 1600] if q else [100, 400, 1600, 6400],
            "rules_d": 96 if q else 512,
            "rules_panels": [[0.999, 0.5], [0.9, 0.2]],
            "rules_sim_multiples": [0.5, 2, 8] if q else [0.5, 2, 8, 32],
            "regime_d": 60 if q else 200,
            "regime_rhos": [0.999, 0.9],
            "regime_grid": [24, 19] if q else [48, 37],
            "regime_spot_n_over_d": [0.5, 8] if q else [0.5, 4, 32],
            "regime_spot_p": [0.2, 0.7] if q else [0.2, 0.5, 0.8],
            "descent_d": 100 if q else 350,
            "descent_n_over_d": [2.0, 4.0],
            "descent_rho": 0.9,
            "descent_lam": 1e-3,
            "descent_sim_p": [0.15, 0.35, 0.65, 0.9] if q else [0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.95],
            "sorscher_reps": 2 if q else 5,
            "dimension_repeats": 3 if q else 8,
            "manifold_points": 1000 if q else 3000,
            "binning_repeats": 2 if q else 6,
            "binning_ks": {1: [6, 10, 16, 24], 2: [5, 7, 9, 11], 4: [3, 4, 5, 6]} if q else
                          {1: list(range(6, 41, 2)), 2: list(range(5, 19)), 4: list(range(3, 9))},
            "composition_repeats": 2 if q else 6,
            "composition_sizes": [40, 80, 160, 320] if q else [40, 70, 120, 200, 350, 600],
        }


def _trial_counts(sizes, base: int, reference: float) -> list[int]:
    """More pools for small sizes (cheap, noisy), so every point costs about the same."""
    return [int(base * min(8, max(1, round(reference / s)))) for s in sizes]


# ---------------------------------------------------------------- stages


def stage_reference(s: TheorySettings, plan: dict) -> dict:
    d, lam, rho = 200, s.lam, s.rho
    sizes = plan["reference_sizes"]
    points, meta = [], []
    for (name, threshold), table in REFERENCE_TABLE.items():
        p = 1.0 if threshold is None else fraction_for_threshold(name, threshold)
        for n in sizes:
            points.append(dict(rule=name, p=p, rho=rho, d=d, n=n, lam=lam))
            meta.append((name, threshold, p, n, table.get(n)))
    counts = _trial_counts([pt["n"] for pt in points], plan["seeds"], 1600)
    mcs = simulate_points(points, seeds=counts, seed=s.seed, engine=s.engine, description="reference table MC")
    rows = []
    for (name, threshold, p, n, spec), mc in zip(meta, mcs):
        theory = theorem_error(Rule(name, p), rho, d, n, lam)
        rows.append({"rule": name, "threshold": threshold, "p": p, "n": n, "theorem": theory, "spec_value": spec,
                     "mc_mean": mc.mean, "mc_ci_low": mc.ci_low, "mc_ci_high": mc.ci_high, "mc_seeds": len(mc.errors),
                     "abs_error": abs(mc.mean - theory)})
    return {"d": d, "lam": lam, "rho": rho, "rows": rows,
            "max_abs_error": max(r["abs_error"] for r in rows),
            "max_abs_vs_spec": max(abs(r["theorem"] - r["spec_value"]) for r in rows if r["spec_value"] is not None)}


def stage_rules(s: TheorySettings, plan: dict) -> dict:
    d, lam = plan["rules_d"], s.lam
    panels = []
    points, meta = [], []
    for rho, p in plan["rules_panels"]:
        kept = np.geomspace(d / 4, 64 * d, 40)
        curves = {name: [theorem_error(Rule(name, p), rho, d, m / p, lam) for m in kept] for name in COMPARE_RULES}
        curves["none"] = [theorem_error(Rule("none"), rho, d, m, lam) for m in kept]
        best, best_p = pareto_curve(rho, d, kept, lam)
        panels.append({"rho": rho, "p": p, "kept": kept.tolist(), "curves": curves, "pareto": best,
                       "pareto_p": best_p, "sim": []})
        for mult in plan["rules_sim_multiples"]:
            m = int(round(mult * d))
            for name in COMPARE_RULES:
                points.append(dict(rule=name, p=p, rho=rho, d=d, n=int(round(m / p)), lam=lam))
                meta.append((len(panels) - 1, name, m))
    counts = _trial_counts([pt["n"] for pt in points], plan["seeds"], 2 * d / 0.2)
    mcs = simulate_points(points, seeds=counts, seed=s.seed, engine=s.engine, description="rules MC")
    errors = []
    for (i, name, m), pt, mc in zip(meta, points, mcs):
        theory = theorem_error(Rule(name, pt["p"]), pt["rho"], d, pt["n"], lam)
        panels[i]["sim"].append({"rule": name, "kept": m, "n": pt["n"], "theorem": theory, "mc_mean": mc.mean,
                                 "mc_ci_low": mc.ci_low, "mc_ci_high": mc.ci_high})
        errors.append(abs(mc.mean - theory))
    return {"d": d, "lam": lam, "panels": panels, "max_abs_error": max(errors)}


def pareto_curve(rho: float, d: int, kept, lam: float, fractions=np.linspace(0.05, 1.0, 39)):
    """Sorscher's Pareto-optimal pruning: for each kept size m, the best rule (hard or easy) and
    kept fraction p, drawing the pool n = m/p as large as needed. Returns (errors, chosen p)."""
    errors, chosen = [], []
    for m in kept:
        best = min((theorem_error(Rule(name, p), rho, d, m / p, lam), p) for name in ("keep-hard", "keep-easy")
                   for p in fractions)
        errors.append(best[0])
        chosen.append(float(best[1]))
    return errors, chosen


def stage_regime(s: TheorySettings, plan: dict) -> dict:
    d, lam = plan["regime_d"], s.lam
    nx, npp = plan["regime_grid"]
    ratios = np.geomspace(0.1, 100, nx)
    fractions = np.linspace(0.05, 0.95, npp)
    maps = []
    with progress_bar("regime map (theory)", len(plan["regime_rhos"]) * nx * npp) as advance:
        for rho in plan["regime_rhos"]:
            winner = np.zeros((npp, nx), dtype=int)
            margin = np.zeros((npp, nx))
            for i, p in enumerate(fractions):
                for j, r in enumerate(ratios):
                    errs = [theorem_error(Rule(name, p), rho, d, r * d, lam) for name in COMPARE_RULES]
                    order = np.argsort(errs)
                    winner[i, j] = int(order[0])
                    margin[i, j] = errs[order[1]] - errs[order[0]]
                    advance()
            maps.append({"rho": rho, "winner": winner.tolist(), "margin": margin.tolist()})
    points, meta = [], []
    for k, rho in enumerate(plan["regime_rhos"]):
        for r in plan["regime_spot_n_over_d"]:
            for p in plan["regime_spot_p"]:
                for name in COMPARE_RULES:
                    points.append(dict(rule=name, p=p, rho=rho, d=d, n=int(round(r * d)), lam=lam))
                    meta.append((k, r, p, name))
    counts = _trial_counts([pt["n"] for pt in points], plan["seeds"], 8 * d)
    mcs = simulate_points(points, seeds=counts, seed=s.seed, engine=s.engine, description="regime spot checks MC")
    spots = {}
    for (k, r, p, name), pt, mc in zip(meta, points, mcs):
        spot = spots.setdefault((k, r, p), {"rho": plan["regime_rhos"][k], "n_over_d": r, "p": p, "mc": {},
                                            "theorem": {}})
        spot["mc"][name] = mc.mean
        spot["theorem"][name] = theorem_error(Rule(name, p), pt["rho"], d, pt["n"], lam)
    spot_list = []
    for spot in spots.values():
        spot["mc_winner"] = min(spot["mc"], key=spot["mc"].get)
        spot["theorem_winner"] = min(spot["theorem"], key=spot["theorem"].get)
        spot_list.append(spot)
    agree = float(np.mean([sp["mc_winner"] == sp["theorem_winner"] for sp in spot_list]))
    return {"d": d, "lam": lam, "rules": list(COMPARE_RULES), "n_over_d": ratios.tolist(),
            "p": fractions.tolist(), "maps": maps, "spots": spot_list, "winner_agreement": agree}


def stage_descent(s: TheorySettings, plan: dict) -> dict:
    d, rho, lam = plan["descent_d"], plan["descent_rho"], plan["descent_lam"]
    fractions = np.linspace(0.02, 1.0, 99)
    panels, points, meta = [], [], []
    for ratio in plan["descent_n_over_d"]:
        n = int(round(ratio * d))
        panel = {"n_over_d": ratio, "n": n, "peak_p": d / n, "p": fractions.tolist(), "theorem": {}, "limit": {},
                 "sim": []}
        for name in COMPARE_RULES:
            panel["theorem"][name] = [theorem_error(Rule(name, p), rho, d, n, lam) for p in fractions]
            panel["limit"][name] = [corollary_error(Rule(name, p), rho, d, n) for p in fractions]
            for p in plan["descent_sim_p"]:
                points.append(dict(rule=name, p=p, rho=rho, d=d, n=n, lam=lam))
                meta.append((len(panels), name, p))
        panels.append(panel)
    mcs = simulate_points(points, seeds=plan["seeds"] * 2, seed=s.seed, engine=s.engine,
                          description="multiple descent MC")
    errors = []
    for (i, name, p), pt, mc in zip(meta, points, mcs):
        theory = theorem_error(Rule(name, p), rho, d, pt["n"], lam)
        panels[i]["sim"].append({"rule": name, "p": p, "theorem": theory, "mc_mean": mc.mean, "mc_ci_low": mc.ci_low,
                                 "mc_ci_high": mc.ci_high})
        errors.append(abs(mc.mean - theory))
    return {"d": d, "rho": rho, "lam": lam, "panels": panels, "max_abs_error": max(errors)}


def stage_corollary(s: TheorySettings, plan: dict) -> dict:
    gaps, gaps_away = [], []
    rows = []
    for name in ("keep-hard", "keep-easy", "random", "none"):
        for p in ([1.0] if name == "none" else [0.2, 0.5, 0.8]):
            for rho in (0.5, 0.9, 0.999):
                for ratio in (0.5, 1.0, 2.0, 4.0, 16.0):
                    phi = 1.0 / ratio
                    rule = Rule(name, p)
                    gap = abs(theorem_error(rule, rho, 350, 350 * ratio, 1e-4) - corollary_error(rule, rho, 350,
                                                                                                 350 * ratio))
                    gaps.append(gap)
                    if abs(rule.p - phi) > 0.1:
                        gaps_away.append(gap)
                    rows.append({"rule": name, "p": rule.p, "rho": rho, "n_over_d": ratio, "gap": gap})
    return {"lam": 1e-4, "max_gap": max(gaps), "max_gap_away_from_peak": max(gaps_away), "rows": rows}


def stage_sorscher(s: TheorySettings, plan: dict) -> dict:
    points, meta = [], []
    for alpha_tot, f, theta, spec in SORSCHER_TABLE:
        for name, value in zip(("random", "keep-hard", "keep-easy"), spec):
            if value is None:
                continue
            points.append(sorscher_point(alpha_tot, f, name, theta=theta))
            meta.append((alpha_tot, f, theta, name, value))
    mcs = simulate_points(points, seeds=plan["sorscher_reps"], seed=s.seed, engine=s.engine,
                          description="Sorscher max-margin MC")
    rows = [{"alpha_tot": a, "f": f, "theta": th, "rule": name, "spec": value, "mc_mean": mc.mean,
             "mc_ci_low": mc.ci_low, "mc_ci_high": mc.ci_high} for (a, f, th, name, value), mc in zip(meta, mcs)]
    return {"N": 100, "rows": rows, "max_abs_vs_spec": max(abs(r["mc_mean"] - r["spec"]) for r in rows)}


def stage_dimension(s: TheorySettings, plan: dict) -> dict:
    x = intrinsic_dim.curved_manifold(plan["manifold_points"], 5, 64, seed=s.seed)
    synthetic = {"true": 5, "ambient": 64, "twonn": intrinsic_dim.twonn(x), "mle": intrinsic_dim.levina_bickel(x)}
    with progress_bar("digits: dimension and exponent", 1) as advance:
        checks = learning_curve.dimension_exponent_check(components=(), repeats=plan["dimension_repeats"],
                                                         seed=s.seed, progress=advance)
    check = checks[0]
    return {"synthetic": synthetic, "digits": check.as_dict(),
            "references": {k: v / check.dimension for k, v in learning_curve.REFERENCE_CONSTANTS.items()}}


def stage_binning(s: TheorySettings, plan: dict) -> dict:
    out = []
    with progress_bar("binning estimator rates", 3) as advance:
        for d in (1, 2, 4):
            m = nonparametric.measure_rate(d, plan["binning_ks"][d], repeats=plan["binning_repeats"], seed=s.seed)
            out.append(m.as_dict())
            advance()
    return {"measured": "integrated squared error at the bias-variance-optimal bin width (n = k^(2+d))",
            "rates": out, "lecture_rate": {d: -nonparametric.rate(d, "lecture") for d in (1, 2, 4)},
            "bounds_examples": {
                "finite_class_bound_m1000_k1e6": bounds.finite_class_bound(1000, 1e6),
                "finite_class_samples_excess0.05_k1e6": bounds.finite_class_samples(0.05, 1e6),
                "density_mse_bound_n1e4_beta2": bounds.density_mse_bound(1e4, 2.0),
                "density_samples_mse1e-3_beta2": bounds.density_samples(1e-3, 2.0)}}


def stage_composition(s: TheorySettings, plan: dict) -> dict:
    mixtures = {"balanced": [1.0] * 10, "skewed 0-4": [3.0] * 5 + [1.0] * 5}
    with progress_bar("digits mixtures (1-NN)", 1) as advance:
        labels, n, y = composition.digits_mixture_curves(mixtures, plan["composition_sizes"],
                                                         repeats=plan["composition_repeats"], seed=s.seed)
        advance()
    result = composition.fit_composition(labels, n, y)
    return {"mixtures": mixtures, "rows": {"mixture": labels.tolist(), "n": n.tolist(), "error": y.tolist()},
            "fit": result.as_dict()}


STAGE_FUNCTIONS = {
    "reference": stage_reference, "rules": stage_rules, "regime": stage_regime, "descent": stage_descent,
    "corollary": stage_corollary, "sorscher": stage_sorscher, "dimension": stage_dimension,
    "binning": stage_binning, "composition": stage_composition,
}


def run_stages(settings: TheorySettings, run) -> dict[str, dict]:
    """Compute (or, on resume, reload) every requested stage; each is saved as soon as it ends."""
    plan = settings.plan()
    results = {}
    for name in settings.stages:
        path = f"stages/{name}.json"
        saved = run.read_json(path)
        if saved is not None:
            results[name] = saved
            continue
        started = time.perf_counter()
        with threadpool_limits(limits=1):  # see simulation.run_trial: one BLAS thread per worker
            data = STAGE_FUNCTIONS[name](settings, plan)
        data["seconds"] = round(time.perf_counter() - started, 3)
        run.sub("stages")
        run.write_json(path, data)
        results[name] = run.read_json(path)  # the JSON form, identical to what a resume would see
        run.log_metric({"event": "stage", "stage": name, **{k: v for k, v in data.items()
                                                             if isinstance(v, (int, float, str))}})
    return results


def summarise(settings: TheorySettings, results: dict[str, dict]) -> dict:
    checked = [results[k]["max_abs_error"] for k in ("reference", "rules", "descent") if k in results]
    summary = {"settings": settings.model_dump(mode="json"), "plan": settings.plan(),
               "theorem_vs_simulation_max_abs_error": max(checked) if checked else None,
               "theorem_vs_simulation_by_stage": {k: results[k]["max_abs_error"]
                                                   for k in ("reference", "rules", "descent") if k in results}}
    summary.update(results)
    return summary


