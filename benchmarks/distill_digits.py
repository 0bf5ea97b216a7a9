"""MGD³ on the built-in digits: tune λ and t_stop on the tune split, then measure every method.

Phase 1 (the tune split only): IPC 10, `mgd3` (and `unguided` as the reference) over a λ grid at
t_stop = S/2, then a t_stop grid at the best λ; the setting with the best tune-split accuracy
(mean over the tuning seeds) is kept. The test split is not touched in this phase.
Phase 2 (test): IPC 1, 10, 50 × random-real, kmeans-nearest-real, unguided, mode-no-stop, mgd3,
over ≥ 3 seeds, with the tuned λ and t_stop.

Each configuration is one `practicum distill` run directory under --out (resumable: rerunning
the script continues where it stopped). Prints the tables and writes
benchmarks/results/distill_digits.json.

    python benchmarks/distill_digits.py                 # the full benchmark
    python benchmarks/distill_digits.py --quick         # a smoke run (tiny budget)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import atomic_write_json  # noqa: E402
from practicum.distill.methods import METHODS  # noqa: E402
from practicum.distill.pipeline import DistillSettings, print_summary, run_distill  # noqa: E402
from practicum.distill.protocol import StudentSettings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "distill_digits.json"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def run(settings: DistillSettings, out: Path) -> dict:
    return run_distill(settings, out, resume=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-distill"))
    parser.add_argument("--ipcs", type=_ints, default=[1, 10, 50])
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    parser.add_argument("--tune-seeds", type=_ints, default=[0, 1])
    parser.add_argument("--lams", type=_floats, default=[0.03, 0.1, 0.3, 1.0])
    parser.add_argument("--t-stops", type=_ints, default=[10, 35],
                        help="t_stop values tried after λ; λ is tuned at the paper's t_stop = S/2 (25 of 50)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--model", default="builtin", help="builtin or a local diffusers folder")
    parser.add_argument("--epoch-scale", type=_floats, default=None,
                        help="per IPC (same order as --ipcs); default 1 for IPC ≤ 10, 0.25 above")
    parser.add_argument("--tune-epoch-scale", type=float, default=0.5)
    parser.add_argument("--lam", type=float, default=None, help="skip tuning: use this λ")
    parser.add_argument("--t-stop", type=int, default=None, help="skip tuning: use this t_stop")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.ipcs, args.seeds, args.tune_seeds, args.lams, args.t_stops = [1, 10], [0, 1, 2], [0], [0.1, 0.3], []
        args.steps, args.tune_epoch_scale = 10, 0.02
    scales = args.epoch_scale or [(1.0 if ipc <= 10 else 0.25) for ipc in args.ipcs]
    if args.quick:
        scales = [0.02 for _ in args.ipcs]
    # digits keep MGD³'s own protocol B (students width 32), as before issue 13; tuning uses the tune split
    base = DistillSettings(data="digits", steps=args.steps, model=args.model, t_stop=args.steps // 2)
    started = time.time()
    report: dict = {"machine": "2-core CPU dev box, shared", "date": time.strftime("%Y-%m-%d"),
                    "command": "python " + " ".join(sys.argv), "python": platform.python_version()}

    # ---- phase 1: tune λ, then t_stop, on the tune split
    lam, t_stop = args.lam, args.t_stop
    tuning = []
    if lam is None or t_stop is None:
        student = StudentSettings(protocol="B", width=32, epoch_scale=args.tune_epoch_scale, students=1)

        def tune(lam_value: float, t_value: int, methods: list[str]) -> dict:
            settings = base.model_copy(update={"ipc": 10, "methods": methods, "seeds": args.tune_seeds,
                                               "lam": lam_value, "t_stop": t_value, "eval_split": "tune",
                                               "student": student, "metric_spaces": ["cosine"]})
            summary = run(settings, args.out / f"tune-lam{lam_value}-t{t_value}")
            rows = []
            for method, m in summary["methods"].items():
                guided = method != "unguided"  # λ and t_stop do not apply to the unguided sampler
                rows.append({"method": method, "lam": lam_value if guided else None,
                             "t_stop": t_value if guided else None, "tune_best": m["accuracy_mean"],
                             "tune_last": m["last_accuracy_mean"], "diversity_cosine": m["diversity_cosine"],
                             "representativeness_cosine": m["representativeness_cosine"]})
            tuning.extend(rows)
            return next(r for r in rows if r["method"] == "mgd3")

        half = args.steps // 2
        reference = tune(args.lams[0], half, ["unguided", "mgd3"])
        best = reference
        for value in args.lams[1:]:
            row = tune(value, half, ["mgd3"])
            if row["tune_best"] > best["tune_best"]:
                best = row
        for value in args.t_stops:
            row = tune(best["lam"], value, ["mgd3"])
            if row["tune_best"] > best["tune_best"]:
                best = row
        lam = best["lam"] if lam is None else lam
        t_stop = best["t_stop"] if t_stop is None else t_stop
        print(f"\ntuning on the tune split (IPC 10, seeds {args.tune_seeds}, epoch scale {args.tune_epoch_scale})")
        print(f"{'method':<10}{'lam':>6}{'t_stop':>8}{'tune best':>10}{'tune last':>10}{'div cos':>9}{'repr cos':>9}")
        for r in tuning:
            lam_text = "-" if r["lam"] is None else r["lam"]
            t_text = "-" if r["t_stop"] is None else r["t_stop"]
            print(f"{r['method']:<10}{lam_text:>6}{t_text:>8}{100 * r['tune_best']:>10.1f}"
                  f"{100 * r['tune_last']:>10.1f}{r['diversity_cosine']:>9.3f}{r['representativeness_cosine']:>9.3f}")
        print(f"chosen: lam={lam} t_stop={t_stop}")
    report["tuning"] = tuning
    report["chosen"] = {"lam": lam, "t_stop": t_stop}

    # ---- phase 2: every method, every IPC, on test
    report["ipc"] = {}
    for ipc, scale in zip(args.ipcs, scales):
        settings = base.model_copy(update={"ipc": ipc, "methods": list(METHODS), "seeds": args.seeds, "lam": lam,
                                           "t_stop": t_stop, "student": StudentSettings(protocol="B", width=32, epoch_scale=scale,
                                                                             students=1)})
        summary = run(settings, args.out / f"ipc{ipc}")
        print()
        print_summary(summary)
        report["ipc"][str(ipc)] = {"epoch_scale": scale, **summary}
        report["invocation_seconds"] = time.time() - started  # resumed runs skip finished work
        atomic_write_json(RESULTS if not args.quick else RESULTS.with_name("distill_digits_quick.json"), report)
    print(f"\nwrote {RESULTS if not args.quick else RESULTS.with_name('distill_digits_quick.json')} "
          f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
