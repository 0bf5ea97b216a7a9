"""Coverage of the nominal-95 % intervals practicum prints, on synthetic curves of known truth.

Each curve is drawn from a known M2 law y = eps + beta·x^c (eps in [0.02, 0.10], c in
[-0.7, -0.3], y(x_min) in [0.3, 0.6]) at 8 doubling sizes 100..12,800, measured once per seed
with realistic noise: y = law(x)·(1 + e_seed + e_point), e_seed ~ N(0, 1 %) shared by a seed's
runs, e_point ~ N(0, 2 %) (so the mean curve is the law). A second strategy B follows
law(k·x), k in [1.5, 3], so its data multiplier over A is exactly k at any target.
Seed structures: 1, 3, 5 and 10 seeds (curves split evenly). Both curves are fitted with the
true family (the intervals assume the chosen family), bootstrapped as practicum does
(`choose_unit`: whole seeds with >= 5 seeds, points otherwise), and we count how often the
printed interval holds the truth:
- prediction: y at x = 4·x_max (an extrapolation);
- x_needed: data for the target law(2·x_max) (truth 2·x_max);
- multiplier: x_A/x_B at the target law_A(x_max) (truth k).

    python benchmarks/scaling_coverage.py --curves 200     # a few minutes on one core
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

from practicum.scaling.bootstrap import seed_structure  # noqa: E402
from practicum.scaling.compare import ratio_interval  # noqa: E402
from practicum.scaling.law import ScalingLaw  # noqa: E402

SIZES = 100.0 * 2.0 ** np.arange(8)
STRUCTURES = (1, 3, 5, 10)
LEVEL = 0.95


def draw_truth(rng) -> dict:
    eps = rng.uniform(0.02, 0.10)
    c = rng.uniform(-0.7, -0.3)
    y0 = rng.uniform(0.3, 0.6)
    beta = (y0 - eps) / SIZES[0] ** c
    return {"eps": eps, "beta": beta, "c": c, "k": rng.uniform(1.5, 3.0)}


def law_value(truth, x):
    return truth["eps"] + truth["beta"] * np.asarray(x, dtype=float) ** truth["c"]


def measure(truth, scale, n_seeds, rng, seed_sd=0.01, point_sd=0.02):
    x = np.repeat(SIZES, n_seeds)
    seeds = np.tile(np.arange(n_seeds), SIZES.size)
    seed_effect = rng.normal(0, seed_sd, n_seeds)[seeds]
    y = law_value(truth, scale * x) * (1 + seed_effect + rng.normal(0, point_sd, x.size))
    return x, np.clip(y, 1e-4, 1.0), seeds


def one_curve(truth, n_seeds, rng, n_boot, family) -> dict:
    xa, ya, sa = measure(truth, 1.0, n_seeds, rng)
    xb, yb, sb = measure(truth, truth["k"], n_seeds, rng)
    labels = None if n_seeds == 1 else sa
    law_a = ScalingLaw(family, metric="error", warn=False).fit(xa, ya, seeds=labels)
    law_b = ScalingLaw(family, metric="error", warn=False).fit(xb, yb, seeds=None if n_seeds == 1 else sb)
    boot_a = law_a.bootstrap(n_boot, seed=0)
    boot_b = law_b.bootstrap(n_boot, seed=1)
    x_ext = 4 * SIZES[-1]
    lo, hi = boot_a.predict_ci([x_ext], LEVEL)
    y_true = float(law_value(truth, x_ext))
    target = float(law_value(truth, 2 * SIZES[-1]))
    inv = boot_a.invert_ci(target, LEVEL)
    t_mult = float(law_value(truth, SIZES[-1]))
    need_a = boot_a.quantity(lambda law: law.invert(t_mult))
    need_b = boot_b.quantity(lambda law: law.invert(t_mult))
    m = min(need_a.size, need_b.size)
    ci, info = ratio_interval(need_a[:m], need_b[:m], LEVEL)
    return {
        "unit": boot_a.by,
        "prediction": bool(lo[0] <= y_true <= hi[0]), "prediction_width": float((hi[0] - lo[0]) / y_true),
        "x_needed": bool(inv["low"] <= 2 * SIZES[-1] <= inv["high"]) if np.isfinite(inv["low"]) else False,
        "x_needed_width": float(inv["high"] / inv["low"]) if np.isfinite(inv["low"]) and inv["low"] > 0 else None,
        "multiplier": bool(ci is not None and ci[0] <= truth["k"] <= ci[1]),
        "multiplier_width": float(ci[1] / ci[0]) if ci is not None and ci[0] > 0 and np.isfinite(ci[1]) else None,
        "unreached_b": info["unreached_b"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=200, help="total, split evenly over the seed structures")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--family", default="M2", help="the family fitted (the truth is M2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_coverage.json"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(args.seed)
    per = max(1, args.curves // len(STRUCTURES))
    started = time.time()
    rows = []
    for n_seeds in STRUCTURES:
        for i in range(per):
            truth = draw_truth(rng)
            try:
                row = one_curve(truth, n_seeds, rng, args.n_boot, args.family)
            except Exception as exc:  # a failed fit counts as a miss, never silently dropped
                row = {"unit": None, "prediction": False, "x_needed": False, "multiplier": False,
                       "error": f"{type(exc).__name__}: {exc}"}
            row["n_seeds"] = n_seeds
            rows.append(row)
            print(f"[{n_seeds} seeds {i + 1}/{per}] pred {row['prediction']} x {row['x_needed']} "
                  f"mult {row['multiplier']}", file=sys.stderr, flush=True)
    table = {}
    for n_seeds in STRUCTURES:
        sub = [r for r in rows if r["n_seeds"] == n_seeds]
        entry = {"structure": seed_structure(n_seeds), "curves": len(sub), "unit": sub[0]["unit"],
                 "failed_fits": sum(1 for r in sub if "error" in r)}
        for q in ("prediction", "x_needed", "multiplier"):
            cov = float(np.mean([r[q] for r in sub]))
            se = float(np.sqrt(cov * (1 - cov) / len(sub))) if sub else float("nan")
            widths = [r.get(f"{q}_width") for r in sub if r.get(f"{q}_width") is not None]
            entry[q] = {"coverage": cov, "se": se, "passes_93_97": bool(0.93 <= cov <= 0.97),
                        "median_width": float(np.median(widths)) if widths else None}
        table[n_seeds] = entry
    print(f"\n{'seeds':>5} {'unit':>7} {'curves':>6} {'prediction':>11} {'x needed':>9} {'multiplier':>11}")
    for n_seeds, e in table.items():
        print(f"{n_seeds:>5} {str(e['unit']):>7} {e['curves']:>6} {e['prediction']['coverage']:>11.3f} "
              f"{e['x_needed']['coverage']:>9.3f} {e['multiplier']['coverage']:>11.3f}")
    result = {"benchmark": "scaling_coverage", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()}-core CPU dev box, shared",
              "command": "python benchmarks/scaling_coverage.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "wall_seconds": time.time() - started, "level": LEVEL, "family": args.family,
              "n_boot": args.n_boot, "table": table, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
