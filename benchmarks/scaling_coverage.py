"""Coverage of the nominal-95 % intervals practicum prints, on synthetic curves of known truth.

Truths (`--truth`), at 8 doubling sizes 100..12,800, y(100) in [0.3, 0.6]:
- M2: y = eps + beta·x^c, eps in [0.02, 0.10], c in [-0.7, -0.3] (the family fitted by default);
- bnsl: a one-break BNSL a + b·x^-c0·(1 + (x/d)^(1/f))^(-c1·f) that steepens inside the range
  (a in [0.02, 0.08], c0 in [0.15, 0.35], c1 in [0.2, 0.5], d in [400, 6400], f in [0.3, 1]);
- M4: (y - eps)/(eps0 - y)^alpha = beta·x^c (eps in [0.02, 0.08], eps0 = 0.9, alpha in [0.5, 1.5],
  c in [-0.8, -0.4]).
Each seed's runs are measured as y = law(x)·(1 + e_seed + e_point), e_seed ~ N(0, 1 %) shared by a
seed's runs, e_point ~ N(0, 2 %), so the mean curve is the law; `--noise grows` multiplies both
by sqrt(y(100)/law(x)) (noise that grows as y shrinks: 2-3x at the largest size). A second
strategy B follows law(k·x), k in [1.5, 3], so its data multiplier over A is exactly k.
Seed structures (`--structures`): 1, 3, 5, 10 seeds, `--per-structure` curves each. Both curves
are fitted with `--family` (the truth's family unless it says otherwise; `auto` chooses per
curve pair with practicum's shared ranking) and the intervals made as practicum makes them
(`choose_unit`: a percentile point bootstrap for one seed, the leave-one-seed-out jackknife-t for
two or more). We count how often the printed interval holds the truth:
- prediction: y at x = 4·x_max (an extrapolation);
- x_needed: data for the target law(2·x_max) (truth 2·x_max);
- multiplier: x_A/x_B at the target law_A(x_max) (truth k).
Widths: y interval / truth, x_needed high/low, multiplier high/low (medians).

    python benchmarks/scaling_coverage.py --structures 3,5,10 --per-structure 400   # minutes
    python benchmarks/scaling_coverage.py --structures 1 --per-structure 400        # ~15 min (bootstrap)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from practicum.scaling.bootstrap import choose_unit, made_at, seed_structure  # noqa: E402
from practicum.scaling.compare import multiplier_interval  # noqa: E402
from practicum.scaling.families import bnsl_value, m4_solve  # noqa: E402
from practicum.scaling.law import ScalingLaw, rank_shared  # noqa: E402

SIZES = 100.0 * 2.0 ** np.arange(8)
LEVEL = 0.95


def draw_truth(kind: str, rng) -> dict:
    y0 = rng.uniform(0.3, 0.6)
    k = rng.uniform(1.5, 3.0)
    if kind == "M2":
        eps, c = rng.uniform(0.02, 0.10), rng.uniform(-0.7, -0.3)
        return {"kind": kind, "eps": eps, "beta": (y0 - eps) / SIZES[0] ** c, "c": c, "k": k}
    if kind == "bnsl":
        truth = {"kind": kind, "a": rng.uniform(0.02, 0.08), "b": 1.0, "c0": rng.uniform(0.15, 0.35),
                 "c1": rng.uniform(0.2, 0.5), "d": float(np.exp(rng.uniform(np.log(400), np.log(6400)))),
                 "f": rng.uniform(0.3, 1.0), "k": k}
        truth["b"] = (y0 - truth["a"]) / (law_value(truth, SIZES[0]) - truth["a"])
        return truth
    if kind == "M4":
        eps, alpha, c = rng.uniform(0.02, 0.08), rng.uniform(0.5, 1.5), rng.uniform(-0.8, -0.4)
        eps0 = 0.9
        beta = (y0 - eps) / (eps0 - y0) ** alpha / SIZES[0] ** c  # so that law(100) = y0
        return {"kind": kind, "eps": eps, "eps0": eps0, "alpha": alpha, "beta": beta, "c": c, "k": k}
    raise ValueError(kind)


def law_value(truth, x):
    x = np.asarray(x, dtype=float)
    if truth["kind"] == "M2":
        return truth["eps"] + truth["beta"] * x ** truth["c"]
    if truth["kind"] == "bnsl":
        return bnsl_value(x, truth["a"], truth["b"], truth["c0"], truth["c1"], truth["d"], truth["f"])
    return m4_solve(x, truth["eps"], truth["eps0"], truth["alpha"], truth["beta"], truth["c"])


def measure(truth, scale, n_seeds, rng, noise, seed_sd=0.01, point_sd=0.02):
    x = np.repeat(SIZES, n_seeds)
    seeds = np.tile(np.arange(n_seeds), SIZES.size)
    mean = law_value(truth, scale * x)
    grow = np.sqrt(law_value(truth, SIZES[0]) / mean) if noise == "grows" else 1.0
    seed_effect = rng.normal(0, seed_sd, n_seeds)[seeds]
    y = mean * (1 + grow * (seed_effect + rng.normal(0, point_sd, x.size)))
    return x, np.clip(y, 1e-4, 1.0), seeds


def covered_at(boot_a, boot_b, law_a, law_b, truth, level) -> dict:
    """Does each printed interval, made at nominal `level`, hold the truth?"""
    x_ext = 4 * SIZES[-1]
    lo, hi = boot_a.predict_ci([x_ext], level)
    inv = boot_a.invert_ci(float(law_value(truth, 2 * SIZES[-1])), level)
    t_mult = float(law_value(truth, SIZES[-1]))
    try:
        ci, _ = multiplier_interval(boot_a, boot_b, t_mult, law_a.invert(t_mult), law_b.invert(t_mult), level)
    except Exception:
        ci = None
    return {"prediction": bool(lo[0] <= float(law_value(truth, x_ext)) <= hi[0]),
            "x_needed": bool(np.isfinite(inv["low"]) and inv["low"] <= 2 * SIZES[-1] <= inv["high"]),
            "multiplier": bool(ci is not None and (ci[0] is None or ci[0] <= truth["k"])
                               and (ci[1] is None or truth["k"] <= ci[1]))}


def one_curve(truth, n_seeds, rng, n_boot, family, noise, levels=()) -> dict:
    xa, ya, sa = measure(truth, 1.0, n_seeds, rng, noise)
    xb, yb, sb = measure(truth, truth["k"], n_seeds, rng, noise)
    labels_a, labels_b = (None, None) if n_seeds == 1 else (sa, sb)
    chosen = family
    if family == "auto":  # one family for both curves, as compare chooses it
        chosen = rank_shared([(xa, ya), (xb, yb)], metric="error")[0]
    law_a = ScalingLaw(chosen, metric="error", warn=False).fit(xa, ya, seeds=labels_a)
    law_b = ScalingLaw(chosen, metric="error", warn=False).fit(xb, yb, seeds=labels_b)
    boot_a = law_a.bootstrap(n_boot, seed=0)
    boot_b = law_b.bootstrap(n_boot, seed=1)
    x_ext = 4 * SIZES[-1]
    # each interval made as practicum prints it: at its calibrated nominal level where it has one
    lo, hi = boot_a.predict_ci([x_ext], made_at("prediction", n_seeds, boot_a.by, LEVEL))
    y_true = float(law_value(truth, x_ext))
    target = float(law_value(truth, 2 * SIZES[-1]))
    inv = boot_a.invert_ci(target, made_at("x_needed", n_seeds, boot_a.by, LEVEL))
    t_mult = float(law_value(truth, SIZES[-1]))
    try:
        need_a, need_b = law_a.invert(t_mult), law_b.invert(t_mult)
        ci, _ = multiplier_interval(boot_a, boot_b, t_mult, need_a, need_b,
                                    made_at("multiplier", n_seeds, boot_a.by, LEVEL))
    except Exception:  # the point fit never reaches the target: no interval, a miss
        ci = None
    bounded = ci is not None and ci[0] is not None and ci[1] is not None
    return {
        "unit": boot_a.by, "family": chosen,
        "prediction": bool(lo[0] <= y_true <= hi[0]), "prediction_width": float((hi[0] - lo[0]) / y_true)
        if np.isfinite(hi[0] - lo[0]) else None,
        "x_needed": bool(inv["low"] <= 2 * SIZES[-1] <= inv["high"]) if np.isfinite(inv["low"]) else False,
        "x_needed_width": float(inv["high"] / inv["low"]) if np.isfinite(inv["low"]) and inv["low"] > 0
        and np.isfinite(inv["high"]) else None,
        "multiplier": bool(ci is not None and (ci[0] is None or ci[0] <= truth["k"])
                           and (ci[1] is None or truth["k"] <= ci[1])),
        "multiplier_width": float(ci[1] / ci[0]) if bounded and ci[0] > 0 else None,
        # coverage of the same intervals made at other nominal levels (for calibrating the level)
        "at_level": {str(v): covered_at(boot_a, boot_b, law_a, law_b, truth, v) for v in levels},
    }


def summarise(rows, structures) -> dict:
    table = {}
    for n_seeds in structures:
        sub = [r for r in rows if r["n_seeds"] == n_seeds]
        entry = {"structure": seed_structure(n_seeds), "curves": len(sub),
                 "unit": choose_unit(None if n_seeds == 1 else np.arange(n_seeds)),
                 "failed_fits": sum(1 for r in sub if "error" in r)}
        families = [r.get("family") for r in sub if r.get("family")]
        if families:
            names, counts = np.unique(families, return_counts=True)
            entry["families"] = {str(n): int(c) for n, c in zip(names, counts)}
        for q in ("prediction", "x_needed", "multiplier"):
            cov = float(np.mean([r[q] for r in sub]))
            se = float(np.sqrt(cov * (1 - cov) / len(sub))) if sub else float("nan")
            widths = [r[f"{q}_width"] for r in sub if r.get(f"{q}_width") is not None]
            entry[q] = {"coverage": cov, "se": se, "passes_93_97": bool(0.93 <= cov <= 0.97),
                        "median_width": float(np.median(widths)) if widths else None,
                        "no_width": len(sub) - len(widths)}
            levels = sorted({v for r in sub for v in r.get("at_level", {})}, key=float)
            if levels:  # a failed curve counts as a miss at every level
                entry[q]["coverage_at_level"] = {v: float(np.mean([r.get("at_level", {}).get(v, {}).get(q, False)
                                                                   for r in sub])) for v in levels}
        table[n_seeds] = entry
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", choices=("M2", "bnsl", "M4"), default="M2")
    parser.add_argument("--family", default=None, help="the family fitted (default: the truth's; or auto)")
    parser.add_argument("--noise", choices=("flat", "grows"), default="flat")
    parser.add_argument("--structures", default="1,3,5,10", help="seed counts, comma-separated")
    parser.add_argument("--per-structure", type=int, default=100, help="curve pairs per seed structure")
    parser.add_argument("--n-boot", type=int, default=200, help="point-bootstrap refits (one-seed curves)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", default="", help="also count coverage of the intervals made at these "
                        "nominal levels, comma-separated (to calibrate a level; see bootstrap.CALIBRATED_LEVEL)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    levels = [float(v) for v in args.levels.split(",") if v]
    family = args.family or args.truth
    structures = [int(s) for s in args.structures.split(",")]
    warnings.simplefilter("ignore")
    started = time.time()
    rows = []
    for n_seeds in structures:
        # one stream per structure: a structure's curves do not depend on which others run
        rng = np.random.default_rng([args.seed, n_seeds])
        for i in range(args.per_structure):
            truth = draw_truth(args.truth, rng)
            try:
                row = one_curve(truth, n_seeds, rng, args.n_boot, family, args.noise, levels)
            except Exception as exc:  # a failed fit counts as a miss, never silently dropped
                row = {"unit": None, "prediction": False, "x_needed": False, "multiplier": False,
                       "error": f"{type(exc).__name__}: {exc}"}
            row["n_seeds"] = n_seeds
            rows.append(row)
            if (i + 1) % 50 == 0:
                print(f"[{n_seeds} seeds {i + 1}/{args.per_structure}] {time.time() - started:.0f} s",
                      file=sys.stderr, flush=True)
    table = summarise(rows, structures)
    print(f"truth {args.truth}, fitted {family}, noise {args.noise}")
    print(f"{'seeds':>5} {'unit':>7} {'curves':>6} {'prediction':>17} {'x needed':>17} {'multiplier':>17}")
    for n_seeds, e in table.items():
        cells = [f"{e[q]['coverage']:.3f} ({e[q]['median_width'] or float('nan'):.3g})"
                 for q in ("prediction", "x_needed", "multiplier")]
        print(f"{n_seeds:>5} {str(e['unit']):>7} {e['curves']:>6} " + " ".join(f"{c:>17}" for c in cells))
        for v in map(str, levels):
            print(f"{'':>5} {'at ' + v:>14} " + " ".join(f"{e[q]['coverage_at_level'][v]:>17.3f}"
                                                         for q in ("prediction", "x_needed", "multiplier")))
    name = f"scaling_coverage_{args.truth}_{family}_{args.noise}_{'-'.join(map(str, structures))}.json"
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / name
    result = {"benchmark": "scaling_coverage", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()}-core CPU dev box, shared",
              "command": "python benchmarks/scaling_coverage.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "wall_seconds": time.time() - started, "level": LEVEL, "truth": args.truth, "family": family,
              "noise": args.noise, "n_boot": args.n_boot, "table": table, "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
