"""Entropy guidance on the built-in model: cost per image and entropy gained.

Part 1 — cost. One batch (`--batch` digits, class-balanced, fixed seed) drawn with the built-in
model's default sampler (50 DDIM steps, CFG) unguided, then with latent entropy guidance
(ω = 0.05) every step or every 5 steps, with the gradient through the full path (denoiser +
learner) or the learner only. Time per image, the ratio to unguided (the DP paper reports
1.82× on an H100; the target here is ≤ 1.5× at the default, every 5 steps through the full
path) and the mean entropy of the guide on the final samples. Unguided is timed before and
after the guided runs, and the whole sequence is repeated `--repeats` times. Because the box
is shared (wall time depends on the other jobs), the ratios use the process CPU time at one
torch thread — the work done — and the fastest repeat of each setting; wall times are kept in
the JSON.

Part 2 — entropy vs ω at the default setting (every 5 steps, full path): the guide's mean
entropy on the final samples, and the accuracy of an independent real-data classifier on them
(how often the digit still looks like its label — too much guidance should hurt).

The guide is the generate command's default: `train_classifier(digits train, steps=600, seed=0)`;
the independent judge is trained with seed 1 and 1000 steps.

    python benchmarks/diffusion_guidance.py              # recorded in docs/benchmarks.md
    python benchmarks/diffusion_guidance.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import atomic_write_json, load_digits  # noqa: E402
from practicum.diffusion import EntropyGuidance, sample  # noqa: E402
from practicum.diffusion.builtin import BUILTIN_SIDECAR, BUILTIN_WEIGHTS, load_builtin, sampling_defaults  # noqa: E402
from practicum.diffusion.guidance import entropy_from_logits  # noqa: E402
from practicum.learn import train_classifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "diffusion_guidance.json"


def run(den, labels, guide, judge, *, omega, every, through, seed, defaults):
    terms = [] if omega is None else [EntropyGuidance(guide, omega, every=every, through=through)]
    start, cpu_start = time.perf_counter(), time.process_time()
    out = sample(den, labels, guidance=terms, seed=seed, **defaults)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    with torch.no_grad():
        entropy = float(entropy_from_logits(guide(out.images)).mean())
        judged = float((judge(out.images).argmax(1) == labels).float().mean())
    return {"omega": omega or 0.0, "every": every, "through": through, "seconds_per_image": seconds / len(labels),
            "cpu_seconds_per_image": cpu / len(labels),
            "mean_entropy": entropy, "judge_accuracy": judged, "retries": out.retries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--omegas", type=float, nargs="+",
                        default=[-0.05, 0.0, 0.01, 0.03, 0.05, 0.07, 0.1, 0.2, 0.4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", nargs="+", default=["cost", "curve"], choices=["cost", "curve"],
                        help="what to measure; a part left out keeps its previous result in --out")
    parser.add_argument("--quick", action="store_true", help="small batch, few steps (smoke run)")
    parser.add_argument("--weights", type=Path, default=BUILTIN_WEIGHTS)
    parser.add_argument("--sidecar", type=Path, default=BUILTIN_SIDECAR)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    den = load_builtin(args.weights, args.sidecar)
    defaults = sampling_defaults(den)
    if args.quick:
        args.batch, defaults["steps"], args.omegas = 20, 10, [0.0, 0.05, 0.2]
    train = load_digits("train")
    guide = train_classifier(train, steps=600, seed=0).guide_model()
    judge = train_classifier(train, steps=1000, seed=1).guide_model()
    labels = torch.arange(args.batch) % 10

    common = dict(seed=args.seed, defaults=defaults)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    settings = [(None, 1, "-"), (0.05, 1, "full"), (0.05, 1, "learner"), (0.05, 5, "full"), (0.05, 5, "learner")]
    if "cost" in args.parts:
        runs: dict[tuple, list[dict]] = {}
        for _ in range(args.repeats):
            for omega, every, through in settings + [settings[0]]:
                row = run(den, labels, guide, judge, omega=omega, every=every, through=through, **common)
                runs.setdefault((omega, every, through), []).append(row)
        cost = []
        for key in settings:
            best = dict(min(runs[key], key=lambda r: r["cpu_seconds_per_image"]))
            best["wall_seconds_per_image_all"] = [r["seconds_per_image"] for r in runs[key]]
            best["cpu_seconds_per_image_all"] = [r["cpu_seconds_per_image"] for r in runs[key]]
            cost.append(best)
        for row in cost:
            row["cost_ratio"] = row["cpu_seconds_per_image"] / cost[0]["cpu_seconds_per_image"]
            row["entropy_gain"] = row["mean_entropy"] - cost[0]["mean_entropy"]
    else:
        cost = previous["cost"]
    if "curve" in args.parts:
        curve = [run(den, labels, guide, judge, omega=w, every=5, through="full", **common) for w in args.omegas]
    else:
        curve = previous["omega_curve"]

    print(f"cost (batch {args.batch}, {defaults['steps']} steps, cfg {defaults['cfg_scale']}):")
    print(f"{'guidance':<28} {'cpu ms/img':>10} {'ratio':>6} {'entropy':>8} {'gain':>7} {'judge':>6}")
    for row in cost:
        name = "unguided" if row["through"] == "-" else f"w=0.05 every {row['every']} {row['through']}"
        print(f"{name:<28} {row['cpu_seconds_per_image'] * 1e3:>10.1f} {row['cost_ratio']:>6.2f} "
              f"{row['mean_entropy']:>8.4f} {row['entropy_gain']:>+7.4f} {row['judge_accuracy']:>6.2f}")
    print("entropy vs omega (every 5, full):")
    print(f"{'omega':>6} {'entropy':>8} {'judge acc':>10}")
    for row in curve:
        print(f"{row['omega']:>6.2f} {row['mean_entropy']:>8.4f} {row['judge_accuracy']:>10.3f}")
    atomic_write_json(args.out, {
        "benchmark": "diffusion_guidance", "cost": cost, "omega_curve": curve, "sampling": defaults,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": "2-core CPU dev box, shared", "python": platform.python_version(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
