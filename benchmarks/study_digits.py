"""Deliberate Practice vs static generation on the built-in digits: the measured study.

    python benchmarks/study_digits.py                      # the default study, 5 seeds
    python benchmarks/study_digits.py --quick              # the README's `practicum study --quick`
    python benchmarks/study_digits.py --sweep 0.02,0.05,0.1,0.2   # plus an omega sweep (DP only)

Runs `practicum study` in-process (wall time and peak memory measured), then optionally an ω
sweep that reuses the study's vanilla banks and static runs and adds DP runs per ω. The sweep is
judged on the VALIDATION split only (the multiplier computed from val accuracies); test numbers
are reported for the study's own setting. Prints a table and writes
benchmarks/results/study_digits[_quick].json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from practicum.data import RunDir  # noqa: E402


def val_view(points):
    return [dict(p, test_accuracy=p["val_accuracy"]) for p in points]


def sweep(out: Path, settings, omegas: list[float], base_results: list[dict]) -> list[dict]:
    """DP runs at other ω values, sharing the study's banks and static runs; judged on val."""
    from practicum.practice import analysis
    from practicum.practice.study import plan_runs, run_one

    dp_items = [i for i in plan_runs(settings, out) if i["strategy"] == "dp"]
    statics = [p | {"strategy": r["strategy"], "seed": r["seed"]} for r in base_results
               if r["strategy"] == "static" for p in r["points"]]
    vanilla = [p | {"strategy": r["strategy"], "seed": r["seed"]} for r in base_results
               if r["strategy"] == "vanilla" for p in r["points"]]
    rows = []
    for omega in omegas:
        items = [i | {"settings": i["settings"] | {"omega": omega},
                      "path": str(Path(i["path"]).with_name(Path(i["path"]).name.replace("dp-", f"dp-w{omega}-")))}
                 for i in dp_items]
        started = time.perf_counter()
        results = [run_one(i) for i in items]
        dp_points = [p | {"strategy": "dp", "seed": r["seed"]} for r in results for p in r["points"]]
        val_points = val_view(statics + dp_points)
        mult = analysis.measured_multiplier(val_points)
        gain = analysis.paired_gain(val_points, "static", "dp")
        # Test-side numbers of the same runs: for reporting the ω that validation picked, never for choosing.
        test_points = statics + dp_points
        test_mult = analysis.measured_multiplier(test_points)
        rows.append({"omega": omega, "val_multiplier": mult["multiplier"], "val_multiplier_ci": mult["ci"],
                     "val_target": mult["target"], "val_dp_size": mult["dp_size"],
                     "val_gain_equal_size": {n: g["mean"] for n, g in gain.items()},
                     "rounds": [r["rounds"] for r in results], "seconds": time.perf_counter() - started,
                     "test_multiplier": test_mult["multiplier"], "test_multiplier_ci": test_mult["ci"],
                     "test_multiplier_fit": analysis.fitted_multiplier(test_points),
                     "test_gain_equal_size": analysis.paired_gain(test_points, "static", "dp"),
                     "test_dp_curve": analysis.mean_curve(test_points, "dp"),
                     "test_gain_vs_vanilla": analysis.paired_gain(vanilla + dp_points, "vanilla", "dp")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--sweep", type=str, default="", help="comma-separated omega values (val only)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--set", type=str, default="{}", help="JSON overrides of the study settings")
    parser.add_argument("--name", type=str, default=None, help="results file name (default by mode)")
    args = parser.parse_args()

    from practicum.practice import analysis
    from practicum.practice.study import print_summary, run_study, study_settings

    name = args.name or ("study_digits_quick" if args.quick else "study_digits")
    out = args.out or ROOT / "runs" / f"bench-{name}"
    settings = study_settings(json.loads(args.set), quick=args.quick, seeds=args.seeds, data="digits")
    started = time.perf_counter()
    summary = run_study(out, settings, resume=args.resume, overwrite=not args.resume)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_summary(summary, out)

    results = [RunDir(r["path"]).read_results() | r for r in summary["runs"]]
    val_points = val_view(summary["points"])
    record = {
        "benchmark": name, "machine": "2-core CPU dev box, shared", "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(), "command": " ".join(["python", *sys.argv]),
        "wall_seconds": wall, "peak_memory_mb": peak, "settings": settings.model_dump(mode="json"),
        "test": {k: summary.get(k) for k in ("data_multiplier", "data_multiplier_ci", "dp_gain_equal_size",
                                             "dp_vs_vanilla_equal_size", "vanilla_multiplier", "dp_vs_prune",
                                             "data_multiplier_fit")},
        "val": {"data_multiplier": analysis.measured_multiplier(val_points),
                "dp_gain_equal_size": analysis.paired_gain(val_points, "static", "dp")},
        "curves_test": {s: v["mean"] for s, v in summary["strategies"].items()},
        "curves_val": {s: analysis.mean_curve(val_points, s) for s in summary["strategies"]},
        "rounds": {s: v["rounds"] for s, v in summary["strategies"].items() if v.get("rounds")},
        "seconds": summary["seconds"],
    }
    if args.sweep:
        record["omega_sweep_val"] = sweep(Path(out), settings, [float(w) for w in args.sweep.split(",")], results)
        print("\nomega sweep (validation split only)")
        print(f"{'omega':>7} {'val mult':>9} {'rounds':>16} {'gain by size (val, points)'}")
        for row in record["omega_sweep_val"]:
            m = "-" if row["val_multiplier"] is None else f"{row['val_multiplier']:.2f}"
            gains = ", ".join(f"{n}:{100 * g:+.1f}" for n, g in row["val_gain_equal_size"].items())
            print(f"{row['omega']:>7} {m:>9} {str(row['rounds']):>16} {gains}")
    print(f"\nwall {wall:.0f} s, peak memory {peak:.0f} MiB")
    target = ROOT / "benchmarks" / "results" / f"{name}.json"
    if args.resume and target.exists():  # a resumed study re-reads finished runs: keep the first run's timings
        old = json.loads(target.read_text())
        record["first_run"] = old.get("first_run") or {k: old.get(k) for k in ("wall_seconds", "peak_memory_mb",
                                                                                 "seconds", "command", "date")}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2, default=float) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
