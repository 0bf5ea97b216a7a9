"""`auto` before vs after issue 15, side by side in one run, on the Alabdulmohsin et al. curves.

The "before" package is the scaling code at a git revision (default 7ca5cca, the commit issue 15
started from), extracted with `git archive` into a temporary folder and imported in a
subprocess; "after" is this worktree, in another subprocess, on the same curves, one after the
other, single-threaded. Per curve: wall seconds of `ScalingLaw("auto").fit` on the fitting rows
and the RMSLE on the held-out rows (the benchmark's protocol), plus M4 and last1 for reference.

    python benchmarks/scaling_auto_speed.py --per-domain 5

Each fit runs `--repeats` times (default 3) and the fastest counts: single fits on the shared box moved
by up to ±50 % between runs (the "before" code's mean time per curve by 1.4× between two sessions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = r'''
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2])
warnings.simplefilter("ignore")
import practicum.scaling.law as L
assert L.__file__.startswith(sys.argv[1]), L.__file__
from practicum.scaling.law import ScalingLaw, loss_space, rmsle
from scaling_real import load_curves
per, fams, repeats = int(sys.argv[3]), sys.argv[4].split(","), int(sys.argv[5])
curves = load_curves()
for d in ("IC", "NMT", "LM", "BB"):
    for c in [c for c in curves if c["domain"] == d][:per]:
        row = {"domain": d, "name": c["name"]}
        for f in fams:
            times = []
            for _ in range(repeats):  # the fastest of the repeats: the fit's own cost, not the host's noise
                t = time.perf_counter()
                try:
                    law = ScalingLaw(f, metric=c["metric"], warn=False).fit(c["x_fit"], c["y_fit"], u_check=c["x_test"])
                    r = rmsle(loss_space(law.predict(c["x_test"]), c["metric"]), loss_space(c["y_test"], c["metric"]))
                    chosen = law.family_
                except Exception as exc:
                    r, chosen = float("inf"), "failed: " + type(exc).__name__
                times.append(time.perf_counter() - t)
            row[f] = {"rmsle": r, "seconds": min(times), "seconds_each": times, "chosen": chosen}
        print(json.dumps(row), flush=True)
'''


def run(package_root: str, per: int, families: str, repeats: int = 1) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", WORKER, package_root, str(ROOT / "benchmarks"), str(per), families,
                          str(repeats)],
                         capture_output=True, text=True, env=env, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=5)
    parser.add_argument("--before", default="7ca5cca", help="git revision of the 'before' code")
    parser.add_argument("--families", default="auto,M4,last1")
    parser.add_argument("--repeats", type=int, default=3, help="fits per curve; the fastest is kept (host noise "
                        "moved single fits by ±50 %%)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_auto_speed.json"))
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "practicum"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        before = run(tmp, args.per_domain, args.families, args.repeats)
    after = run(str(ROOT), args.per_domain, args.families, args.repeats)
    fams = args.families.split(",")
    summary = {}
    for domain in ("IC", "NMT", "LM", "BB", "all"):
        pick = lambda rows: [r for r in rows if domain in ("all", r["domain"])]  # noqa: E731
        b, a = pick(before), pick(after)
        if not a:
            continue
        entry = {"curves": len(a)}
        for label, rows in (("before", b), ("after", a)):
            for f in fams:
                vals = np.array([r[f]["rmsle"] for r in rows], dtype=float)
                entry[f"{label}_{f}_mean_rmsle"] = float(np.mean(vals[np.isfinite(vals)]))
                entry[f"{label}_{f}_seconds_per_curve"] = float(np.mean([r[f]["seconds"] for r in rows]))
        entry["auto_speedup"] = entry["before_auto_seconds_per_curve"] / entry["after_auto_seconds_per_curve"]
        summary[domain] = entry
    print(f"{'domain':<6} {'n':>3} {'auto s before':>13} {'after':>7} {'speed-up':>8} {'RMSLE before':>12} "
          f"{'after':>8} {'M4 after':>9} {'last1':>8}")
    for d, e in summary.items():
        print(f"{d:<6} {e['curves']:>3} {e['before_auto_seconds_per_curve']:>13.2f} {e['after_auto_seconds_per_curve']:>7.2f} "
              f"{e['auto_speedup']:>8.1f} {e['before_auto_mean_rmsle']:>12.4f} {e['after_auto_mean_rmsle']:>8.4f} "
              f"{e.get('after_M4_mean_rmsle', float('nan')):>9.4f} {e.get('after_last1_mean_rmsle', float('nan')):>8.4f}")
    result = {"benchmark": "scaling_auto_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/scaling_auto_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "before_revision": args.before, "wall_seconds": time.time() - started, "summary": summary,
              "before": before, "after": after}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
