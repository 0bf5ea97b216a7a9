"""pow4's offset on the Alabdulmohsin et al. curves: pow4 and `auto`, all 92 curves.

Only pow4 is refitted: its held-out RMSLE on each curve's own prefixes (what `auto` ranks) and its
predictions of the held-out rows when fitted on every fitting row. The other candidates' entries
come from the cache of `scaling_auto_study.py` (same protocol), so `auto` here is that study's
"argmin geometric mean" rule, i.e. `auto`'s own choice. Run it on the code before a change to pow4
and after, then compare the two JSONs:

    python benchmarks/scaling_pow4_offset.py --out benchmarks/results/scaling_pow4_offset_after.json
    python benchmarks/scaling_pow4_offset.py --compare before.json after.json
    python benchmarks/scaling_pow4_offset.py --max-curves 1 --out /tmp/smoke.json   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from scaling_auto_study import ranked  # noqa: E402
from scaling_real import DOMAINS, load_curves  # noqa: E402

from practicum.errors import FitError  # noqa: E402
from practicum.scaling.law import ScalingLaw, check_curve, loss_space, rmsle  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "scaling_auto_study_cache.json"


def pow4_record(curve: dict, cached: dict) -> dict:
    """pow4 refitted on one curve; auto's choice with pow4's new prefix scores among the cached ones."""
    metric = curve["metric"]
    x, y, w, _ = check_curve(curve["x_fit"], curve["y_fit"], metric=metric)
    table = ScalingLaw("auto", metric=metric, warn=False)._prefix_table(x, y, w, ["pow4"])
    truth = loss_space(curve["y_test"], metric)
    try:
        law = ScalingLaw("pow4", metric=metric, warn=False).fit(x, y)
        pred = loss_space(law.predict(curve["x_test"]), metric)
        offset = float(law.theta_[3] / (x.min() / law.x_scale_))  # d in units of the first point
    except FitError:
        pred, offset = np.full(truth.shape, np.nan), math.nan
    held = rmsle(pred, truth) if np.all(np.isfinite(pred)) else math.inf
    rec = dict(cached, prefix={**cached["prefix"], "pow4": table["pow4"]},
               pred={**cached["pred"], "pow4": pred.tolist()}, heldout={**cached["heldout"], "pow4": held})
    chosen = ranked(rec)[0][0]
    return {"domain": curve["domain"], "name": curve["name"], "pow4": held, "pow4_offset_over_xmin": offset,
            "pow4_prefix": table["pow4"], "auto_chosen": chosen, "auto": rec["heldout"][chosen]}


def summary(rows) -> dict:
    out = {}
    for domain in DOMAINS:
        sub = [r for r in rows if r["domain"] == domain]
        if sub:
            out[domain] = {"curves": len(sub), "pow4": float(np.mean([r["pow4"] for r in sub])),
                           "auto": float(np.mean([r["auto"] for r in sub])),
                           "auto_picks_pow4": sum(r["auto_chosen"] == "pow4" for r in sub)}
    return out


def compare(before_path: str, after_path: str) -> int:
    before = {r["name"]: r for r in json.loads(Path(before_path).read_text())["per_curve"]}
    after = json.loads(Path(after_path).read_text())
    sb, sa = summary(list(before.values())), after["summary"]
    print(f"{'domain':<6}{'curves':>7}{'pow4 before':>13}{'after':>9}{'auto before':>13}{'after':>9}")
    for d in sa:
        print(f"{d:<6}{sa[d]['curves']:>7}{sb[d]['pow4']:>13.5f}{sa[d]['pow4']:>9.5f}"
              f"{sb[d]['auto']:>13.5f}{sa[d]['auto']:>9.5f}")
    print("\ncurves where pow4 or auto changed (RMSLE before -> after; d/x_min; auto's choice):")
    for r in after["per_curve"]:
        b = before[r["name"]]
        if abs(r["pow4"] - b["pow4"]) > 1e-6 or r["auto_chosen"] != b["auto_chosen"]:
            print(f"  {r['name']}: pow4 {b['pow4']:.5f} -> {r['pow4']:.5f} (d/x_min {b['pow4_offset_over_xmin']:.3f}"
                  f" -> {r['pow4_offset_over_xmin']:.3f}); auto {b['auto_chosen']} {b['auto']:.5f} -> "
                  f"{r['auto_chosen']} {r['auto']:.5f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-curves", type=int, default=None, help="per domain (a smoke run)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_pow4_offset.json"))
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    warnings.simplefilter("ignore")
    cached = {r["name"]: r for r in json.loads(CACHE.read_text())["records"]}
    curves = load_curves()
    if args.max_curves:
        curves = [c for d in DOMAINS for c in [c for c in curves if c["domain"] == d][: args.max_curves]]
    started = time.process_time()
    rows = [pow4_record(c, cached[c["name"]]) for c in curves]
    result = {"benchmark": "scaling_pow4_offset", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/scaling_pow4_offset.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu_seconds": time.process_time() - started, "summary": summary(rows), "per_curve": rows}
    for d, s in result["summary"].items():
        print(f"{d}: {s['curves']} curves, pow4 {s['pow4']:.5f}, auto {s['auto']:.5f} (auto picks pow4 on "
              f"{s['auto_picks_pow4']})")
    print(f"{result['cpu_seconds']:.1f} CPU s")
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
