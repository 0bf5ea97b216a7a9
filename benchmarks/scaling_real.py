"""Extrapolation on the real learning curves of Alabdulmohsin, Neyshabur & Zhai (NeurIPS 2022).

Data: ../shared/data/revisiting-scaling-laws/ (google-research/google-research,
revisiting_neural_scaling_laws/data, commit 9853680; CC BY 4.0 — cite the paper and the repo).
Protocol (the paper's): per curve, fit on the Training == 1 rows, predict the Training == 0
rows, score RMSLE = sqrt(mean((log ŷ − log y)²)) on the held-out rows. Reports per domain
(IC, NMT, LM, BB) and family: mean RMSLE, median RMSLE, mean rank, failure rate, fit time per
curve; `auto` is scored like a family (it chooses on the fitting rows' own prefixes only).

    python benchmarks/scaling_real.py                 # all 92 curves (a few minutes)
    python benchmarks/scaling_real.py --max-curves 3  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from practicum.scaling.evaluate import extrapolate, mean_ranks, significance  # noqa: E402
from practicum.scaling.families import DEFAULT_FAMILIES  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "revisiting-scaling-laws"
FAMILIES = list(DEFAULT_FAMILIES) + ["M1", "M3", "auto"]
DOMAINS = ("IC", "NMT", "LM", "BB")


def load_curves(data_dir: Path = DATA) -> list[dict]:
    """Every benchmark curve as {domain, name, metric, x_fit, y_fit, x_test, y_test}."""
    frames = [pd.read_csv(data_dir / name) for name in ("benchmark.vision.csv", "benchmark.lang.csv")]
    df = pd.concat(frames, ignore_index=True).drop_duplicates()  # LM blocks appear four times
    curves = []
    for (domain, task, model), block in df.groupby(["Domain", "Task", "Model"], sort=True):
        block = block.sort_values("Seen Examples", kind="stable")
        fit_rows, test_rows = block[block["Training"] == 1], block[block["Training"] == 0]
        curves.append({
            "domain": domain, "name": f"{domain}/{task}/{model}",
            "metric": "error" if domain == "IC" else "loss",
            "x_fit": fit_rows["Seen Examples"].to_numpy(float), "y_fit": fit_rows["Loss"].to_numpy(float),
            "x_test": test_rows["Seen Examples"].to_numpy(float), "y_test": test_rows["Loss"].to_numpy(float),
        })
    return curves


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--max-curves", type=int, default=None, help="per domain")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_real.json"))
    args = parser.parse_args(argv)
    families = args.families.split(",")
    domains = args.domains.split(",")
    curves = [c for c in load_curves() if c["domain"] in domains]
    if args.max_curves:
        curves = [c for d in domains for c in [c for c in curves if c["domain"] == d][: args.max_curves]]
    started = time.time()
    per_curve = []
    for i, curve in enumerate(curves):
        scores = extrapolate(curve["x_fit"], curve["y_fit"], curve["x_test"], curve["y_test"], families,
                             metric=curve["metric"])
        per_curve.append({"domain": curve["domain"], "name": curve["name"], "n_fit": int(curve["x_fit"].size),
                          "n_test": int(curve["x_test"].size), "scores": scores})
        print(f"[{i + 1}/{len(curves)}] {curve['name']}: auto→{scores['auto'].get('chosen')} "
              f"auto {scores['auto']['rmsle']:.4f} last1 {scores['last1']['rmsle']:.4f} "
              f"M4 {scores.get('M4', {}).get('rmsle', float('nan')):.4f}", file=sys.stderr, flush=True)
    summary = {}
    for domain in domains:
        rows = [c["scores"] for c in per_curve if c["domain"] == domain]
        if not rows:
            continue
        ranks = mean_ranks(rows)
        summary[domain] = {}
        for name in families + (["last1"] if "last1" not in families else []):
            vals = np.array([r[name]["rmsle"] for r in rows], dtype=float)
            ok = np.isfinite(vals)
            summary[domain][name] = {
                "curves": len(rows),
                "mean_rmsle": float(np.mean(vals[ok])) if ok.any() else float("nan"),
                "median_rmsle": float(np.median(vals[ok])) if ok.any() else float("nan"),
                "mean_rank": ranks[name],
                "failure_rate": float(1 - ok.mean()),
                "fit_seconds_per_curve": float(np.mean([r[name]["fit_seconds"] for r in rows])),
                "best_on": int(sum(1 for r in rows if r[name]["rmsle"] == min(
                    r[f]["rmsle"] for f in families if f not in ("auto",)))),
            }
    tests = {domain: significance([c["scores"] for c in per_curve if c["domain"] == domain],
                                  families + (["last1"] if "last1" not in families else []))
             for domain in summary}
    # the table
    for domain, table in summary.items():
        print(f"\n{domain} ({next(iter(table.values()))['curves']} curves)")
        print(f"{'family':<10} {'mean RMSLE':>11} {'median':>9} {'mean rank':>10} {'fail':>6} {'s/curve':>8}")
        for name, row in sorted(table.items(), key=lambda kv: kv[1]["mean_rank"]):
            print(f"{name:<10} {row['mean_rmsle']:>11.4g} {row['median_rmsle']:>9.4g} {row['mean_rank']:>10.2f} "
                  f"{row['failure_rate']:>6.2f} {row['fit_seconds_per_curve']:>8.3f}")
    for domain, t in tests.items():
        if "wilcoxon_holm_vs_auto" in t:
            vs = t["wilcoxon_holm_vs_auto"].get("last1", {})
            print(f"{domain}: Friedman p={t['friedman']['p_value']:.2g}; auto vs last1 Wilcoxon-Holm "
                  f"p={vs.get('p_holm', float('nan')):.2g}, auto better on {vs.get('reference_better_on')} "
                  f"of {t['n_curves']} curves")
    verdict = {d: bool(t["auto"]["mean_rmsle"] < t["last1"]["mean_rmsle"]) for d, t in summary.items() if "auto" in t}
    print("\nauto beats last1 on mean RMSLE:", verdict)
    result = {
        "benchmark": "scaling_real", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()}-core CPU dev box, shared",
        "command": "python benchmarks/scaling_real.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "wall_seconds": time.time() - started, "families": families, "summary": summary,
        "auto_beats_last1": verdict, "significance": tests, "per_curve": per_curve,
        "data": "Alabdulmohsin, Neyshabur, Zhai 2022 (arXiv 2209.06640), google-research/google-research "
                "revisiting_neural_scaling_laws/data, CC BY 4.0",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
