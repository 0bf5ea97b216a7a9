"""Benchmark: the theory checks of `practicum theory` at full size, with wall times.

    python benchmarks/theory.py [--quick] [--seeds N] [--out benchmarks/results/theory.json]

Prints one table row per checked claim (the measured value, the target and whether it holds)
and one per stage with its wall time, and writes both to JSON. Single-threaded BLAS (as in the
command), so timings on a shared 2-core box are comparable between runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import threadpool_limits  # noqa: E402

from practicum.data import atomic_write_json  # noqa: E402
from practicum.scaling.theory.study import STAGE_FUNCTIONS, TheorySettings, summarise  # noqa: E402


def claims(summary: dict) -> list[dict]:
    """(claim, measured, target, holds) rows."""
    rows = []

    def add(claim, measured, target, holds):
        rows.append({"claim": claim, "measured": measured, "target": target, "holds": bool(holds)})

    ref = summary.get("reference")
    if ref:
        add("Theorem 1 reproduces the spec table (max |Δ|)", ref["max_abs_vs_spec"], "< 6e-4 (3-digit rounding)",
            ref["max_abs_vs_spec"] < 6e-4)
        add("Theorem 1 vs Monte-Carlo at the spec points (max |Δ|)", ref["max_abs_error"], "< 0.01",
            ref["max_abs_error"] < 0.01)
    for key, label in (("rules", "rules (Fig. 3) points"), ("descent", "multiple-descent points")):
        if key in summary:
            add(f"Theorem 1 vs Monte-Carlo, {label} (max |Δ|)", summary[key]["max_abs_error"], "< 0.02",
                summary[key]["max_abs_error"] < 0.02)
    if "corollary" in summary:
        c = summary["corollary"]
        add("Corollary 1 vs Theorem 1 at λ=1e-4, |p − d/n| > 0.1", c["max_gap_away_from_peak"], "< 0.002",
            c["max_gap_away_from_peak"] < 0.002)
    if "regime" in summary:
        add("regime map: MC winner = theorem winner (spot checks)", summary["regime"]["winner_agreement"], "≥ 0.8",
            summary["regime"]["winner_agreement"] >= 0.8)
    if "sorscher" in summary:
        s = summary["sorscher"]
        add("Sorscher max-margin table (max |Δ| vs paper)", s["max_abs_vs_spec"], "< 0.03 (paper: 5 reps)",
            s["max_abs_vs_spec"] < 0.03)
    if "dimension" in summary:
        syn = summary["dimension"]["synthetic"]
        worst = max(abs(syn["twonn"] - 5) / 5, abs(syn["mle"] - 5) / 5)
        add("ID estimators on a 5-D manifold in 64-D (max rel. error)", worst, "< 0.10", worst < 0.10)
        dig = summary["dimension"]["digits"]
        add("digits: α·D (Bahri et al.: c ≈ 4 for smooth models)", dig["implied_c"],
            "reported, qualitative", True)
    if "binning" in summary:
        for r in summary["binning"]["rates"]:
            add(f"binning slope d={r['d']} vs −2/(2+d) = {r['documented_slope']:.3f}", r["measured_slope"],
                "|Δ| < 0.05", r["abs_gap"] < 0.05)
    if "composition" in summary:
        f = summary["composition"]["fit"]
        add("digits mixtures: slope F-test p (shared exponent)", f["slope_p"], "≥ 0.05", f["slope_p"] >= 0.05)
        add("digits mixtures: intercept F-test p", f["intercept_p"], "< 0.05", f["intercept_p"] < 0.05)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/theory.json"))
    args = parser.parse_args()
    settings = TheorySettings(quick=args.quick, seeds=args.seeds)
    plan = settings.plan()
    results, timings = {}, []
    for name in settings.stages:
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            results[name] = json.loads(json.dumps(STAGE_FUNCTIONS[name](settings, plan), default=float))
        timings.append({"stage": name, "seconds": round(time.perf_counter() - started, 2)})
        print(f"{name:12s} {timings[-1]['seconds']:8.2f} s", flush=True)
    summary = summarise(settings, results)
    rows = claims(summary)
    print()
    print(f"{'claim':70s} {'measured':>10s}  target")
    for r in rows:
        measured = f"{r['measured']:.4f}" if isinstance(r["measured"], float) else str(r["measured"])
        print(f"{r['claim']:70s} {measured:>10s}  {r['target']}{'' if r['holds'] else '   <-- FAILS'}")
    print(f"\ntotal {sum(t['seconds'] for t in timings):.1f} s")
    atomic_write_json(args.out, {
        "benchmark": "theory", "command": " ".join(["python", *sys.argv]),
        "machine": "2-core CPU dev box, shared", "host": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
        "claims": rows, "timings": timings,
        "theorem_vs_simulation_max_abs_error": summary["theorem_vs_simulation_max_abs_error"],
        "digits": summary.get("dimension", {}).get("digits"),
        "binning": summary.get("binning", {}).get("rates"),
        "composition": summary.get("composition", {}).get("fit"),
        "reference_rows": summary.get("reference", {}).get("rows"),
        "sorscher_rows": summary.get("sorscher", {}).get("rows"),
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
