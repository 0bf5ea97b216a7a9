"""Fit time per curve and family (synthetic curves of three lengths), bootstrap time, and the
Chinchilla fit (full 4,500-start grid vs varpro).

    python benchmarks/scaling_fit_time.py            # a few minutes on the shared 2-core box
    python benchmarks/scaling_fit_time.py --quick    # fewer repeats, no full Chinchilla grid
"""

from __future__ import annotations

import argparse
import json
import math
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

from practicum.scaling import ChinchillaLaw, families, fit, fit_chinchilla  # noqa: E402

SHAPES = {
    # DP / selection studies: 5 sizes x 3 seeds
    "short (5 sizes x 3 seeds)": np.repeat(100 * 2.0 ** np.arange(5), 3),
    # an LCDB curve: 17 anchors 16 … 4096
    "lcdb (17 anchors)": 16 * 2 ** (np.arange(17) / 2),
    # a long benchmark curve (IC-like): 60 sizes over 3 decades
    "long (60 sizes)": np.geomspace(1e6, 1e9, 60),
}


def curve(x, rng):
    u = x / x.min()
    return np.clip((0.05 + 0.6 * u ** -0.35) * (1 + 0.02 * rng.standard_normal(x.size)), 1e-3, 0.999)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_fit_time.json"))
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    names = families("curve") + ["auto"]
    table: dict[str, dict[str, float]] = {}
    for shape, x in SHAPES.items():
        table[shape] = {}
        for name in names:
            times, failures = [], 0
            for r in range(repeats):
                y = curve(x, np.random.default_rng(r))
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fit(x, y, name, metric="error", seed=r)
                except Exception:  # noqa: BLE001 — a failure is counted, the timing still recorded
                    failures += 1
                times.append(time.perf_counter() - start)
            table[shape][name] = {"median_seconds": float(np.median(times)), "failures": failures}
        print(f"\n{shape}")
        for name, row in sorted(table[shape].items(), key=lambda kv: kv[1]["median_seconds"]):
            print(f"  {name:<11} {row['median_seconds'] * 1000:9.1f} ms  failures {row['failures']}")
    # bootstrap: 200 refits of an M2 law on the short curve
    x = SHAPES["short (5 sizes x 3 seeds)"]
    law = fit(x, curve(x, np.random.default_rng(0)), "M2", seeds=np.tile([0, 1, 2], 5))
    start = time.perf_counter()
    law.bootstrap(200, seed=0)
    boot_seconds = time.perf_counter() - start
    print(f"\nbootstrap, 200 refits of M2 on the short curve: {boot_seconds:.2f} s")
    # Chinchilla
    truth = ChinchillaLaw(E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
                          alpha=0.33917084, beta=0.2849083)
    N, D = np.meshgrid(np.geomspace(4e7, 1.6e10, 6), np.geomspace(5e9, 5e11, 6))
    N, D = N.ravel(), D.ravel()
    L = truth.predict(N, D) * (1 + 0.01 * np.random.default_rng(0).standard_normal(N.size))
    chin = {}
    for label, kwargs in [("varpro", {"method": "varpro"}), ("grid, best 100 starts", {"max_starts": 100})] + (
            [] if args.quick else [("grid, all 4500 starts", {})]):
        start = time.perf_counter()
        got = fit_chinchilla(N, D, L, warn=False, **kwargs)
        chin[label] = {"seconds": time.perf_counter() - start, "params": got.params_,
                       "objective": got.objective_}
        print(f"chinchilla {label}: {chin[label]['seconds']:.2f} s  " +
              " ".join(f"{k}={v:.4g}" for k, v in got.params_.items()))
    result = {"benchmark": "scaling_fit_time", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()}-core CPU dev box, shared",
              "command": "python benchmarks/scaling_fit_time.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "repeats": repeats, "per_shape": table, "bootstrap_200_M2_seconds": boot_seconds, "chinchilla": chin}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
