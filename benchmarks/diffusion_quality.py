"""Quality of the built-in digits generator, measured (not assumed).

For each CFG scale, the built-in model draws `--per-class` digits per class (≈ the size of the
real train split) and we report:

- CAS (classification accuracy score): a classifier trained on the generated digits only,
  tested on the real **test** split;
- fidelity: a classifier trained on the real train split, evaluated on the generated digits
  (does the digit look like its label?);
- the real-data reference: the same classifier trained on real train, tested on real test;
- memorisation check: mean distance from each generated digit to its nearest real train digit,
  next to the same quantity for the real test digits (a copy of the train set would give 0).

All classifiers are `practicum.learn.train_classifier(arch="cnn", steps=--clf-steps, seed=0)`.

    python benchmarks/diffusion_quality.py                     # recorded in docs/benchmarks.md
    python benchmarks/diffusion_quality.py --per-class 20 --cfg 2 --steps 20   # quick
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import Dataset, atomic_write_json, load_digits  # noqa: E402
from practicum.diffusion import sample  # noqa: E402
from practicum.diffusion.builtin import BUILTIN_SIDECAR, BUILTIN_WEIGHTS, load_builtin  # noqa: E402
from practicum.learn import train_classifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "diffusion_quality.json"


def generate(den, per_class: int, cfg: float, steps: int, seed: int) -> tuple[Dataset, float]:
    labels = torch.arange(10).repeat_interleave(per_class)
    start = time.perf_counter()
    out = sample(den, labels, steps=steps, cfg_scale=cfg, seed=seed, batch_size=500)
    seconds = time.perf_counter() - start
    quantised = torch.round((out.images + 1) * 8) / 8 - 1  # the real digits have 17 grey levels
    ids = np.array([f"gen-{i:05d}" for i in range(len(labels))])
    return Dataset(quantised, labels, ids, tuple(str(c) for c in range(10))), seconds


def nearest_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over a of the L2 distance to the nearest row of b (images flattened)."""
    return float(torch.cdist(a.flatten(1), b.flatten(1)).min(dim=1).values.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=99)
    parser.add_argument("--cfg", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--clf-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", type=Path, default=BUILTIN_WEIGHTS)
    parser.add_argument("--sidecar", type=Path, default=BUILTIN_SIDECAR)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    den = load_builtin(args.weights, args.sidecar)
    train, test = load_digits("train"), load_digits("test")
    real = train_classifier(train, steps=args.clf_steps, seed=0)
    reference = real.evaluate(test)["accuracy"]
    rows = []
    for cfg in args.cfg:
        data, seconds = generate(den, args.per_class, cfg, args.steps, args.seed)
        cas = train_classifier(data, steps=args.clf_steps, seed=0).evaluate(test)["accuracy"]
        fidelity = real.evaluate(data)["accuracy"]
        rows.append({"cfg_scale": cfg, "cfg_lambda": cfg - 1, "n_generated": len(data), "cas": cas,
                     "fidelity": fidelity, "nn_dist_generated_to_train": nearest_distance(data.images, train.images),
                     "seconds_per_image": seconds / len(data)})
    result = {
        "benchmark": "diffusion_quality",
        "real_train_to_real_test_accuracy": reference,
        "nn_dist_test_to_train": nearest_distance(test.images, train.images),
        "rows": rows,
        "settings": vars(args) | {"weights": str(args.weights), "sidecar": str(args.sidecar), "out": str(args.out)},
        "sidecar": json.loads(Path(args.sidecar).read_text()).get("command"),
        "machine": "2-core CPU dev box, shared",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    print(f"real train -> real test accuracy: {reference:.3f}; "
          f"nearest-train distance of real test digits: {result['nn_dist_test_to_train']:.3f}")
    print(f"{'cfg s':>6} {'CAS':>6} {'fidelity':>9} {'nn-dist':>8} {'s/img':>7}")
    for r in rows:
        print(f"{r['cfg_scale']:>6.1f} {r['cas']:>6.3f} {r['fidelity']:>9.3f} {r['nn_dist_generated_to_train']:>8.3f} "
              f"{r['seconds_per_image']:>7.4f}")
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
