"""Quality of a built-in (or your own) generator, measured against real held-out data.

    python benchmarks/diffusion_quality.py --model fashion          # the defaults are the run in docs/benchmarks.md
    python benchmarks/diffusion_quality.py --model digits
    python benchmarks/diffusion_quality.py --model runs/my-gen --data npz:own.npz
    python benchmarks/diffusion_quality.py --model fashion --per-class 50 --cfg 2 --quick   # smoke run

Measured, for each CFG scale s, on `--per-class` class-balanced samples:

- **CAS** (classification accuracy score): one fixed CNN recipe (`train_classifier(arch="cnn",
  steps=--clf-steps, seed=0)`) trained only on generated images, accuracy on the real **test** split;
  the same recipe on the real train split is the **ceiling** (all of it, and a class-balanced
  subset the size of the generated set).
- **fidelity**: a separate real-data **judge** (a CNN of `--judge-width`, its own seed, `--judge-steps`)
  classifies the generated images: does each look like its label?
- **Fréchet distance** and **precision / recall** (k-NN manifolds, k = 3, Kynkäänniemi et al. 2019)
  between generated images and real test images in the judge's penultimate features, each the mean
  over `--draws` subsets of min(2,000, set sizes) rows of both sets with the 2.5–97.5 % range (both
  statistics depend on the sample size, so all are taken at one size); real tune vs real test gives
  the floor. Accuracies carry a percentile-bootstrap interval over the test rows.
- Which split chose what: the CFG scale is chosen by CAS on the **tune** split; test is reported.
- cost: seconds per image at 50 and 10 DDIM steps with CFG, and peak memory of sampling and of
  training (each measured in a fresh subprocess: peak RSS).
- a sample grid per CFG scale (`benchmarks/results/diffusion_quality_<model>_s<cfg>.png`).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import Dataset, atomic_write_json, load_source  # noqa: E402
from practicum.diffusion import load_denoiser, sample  # noqa: E402
from practicum.diffusion.builtin import builtin_for, read_sidecar, sampling_defaults  # noqa: E402
from practicum.learn import train_classifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def generate(den, per_class: int, cfg: float, steps: int, seed: int, levels: int | None) -> tuple[Dataset, float]:
    labels = torch.arange(den.num_classes).repeat_interleave(per_class)
    start = time.perf_counter()
    out = sample(den, labels, steps=steps, cfg_scale=cfg, seed=seed, batch_size=250)
    seconds = time.perf_counter() - start
    images = out.images
    if levels:  # store like the real data (uint8 or 17 grey levels), so the classifier sees no tell-tale
        images = torch.round((images + 1) * (levels / 2)) / (levels / 2) - 1
    ids = np.array([f"gen-{i:05d}" for i in range(len(labels))])
    return Dataset(images, labels, ids, den.class_names), seconds


def accuracy_ci(learner, data: Dataset, boot: int, rng) -> dict:
    correct = (learner.logits(data.images).argmax(1) == data.labels).numpy().astype(float)
    means = [correct[rng.integers(0, len(correct), len(correct))].mean() for _ in range(boot)]
    return {"accuracy": float(correct.mean()), "ci95": [float(np.quantile(means, 0.025)),
                                                         float(np.quantile(means, 0.975))]}


def features(judge, images: torch.Tensor) -> np.ndarray:
    net = judge.guide_model()
    with torch.no_grad():
        return torch.cat([net.features(images[i:i + 1000]) for i in range(0, len(images), 1000)]).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Share of fake rows inside the real k-NN manifold (precision) and of real rows inside the fake one (recall)."""
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    radius_r = torch.cdist(r, r).kthvalue(k + 1, dim=1).values  # +1: each row is its own nearest neighbour
    radius_f = torch.cdist(f, f).kthvalue(k + 1, dim=1).values
    cross = torch.cdist(f, r)  # (fake, real)
    precision = (cross <= radius_r[None, :]).any(dim=1).double().mean()
    recall = (cross.T <= radius_f[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def distribution_metrics(real: np.ndarray, fake: np.ndarray, rows: int, draws: int, rng) -> dict:
    """Fréchet distance and precision/recall on `draws` random subsets of `rows` rows of each set.

    Both are biased by the sample size (and k-NN radii break on the duplicate rows a with-replacement
    bootstrap would make), so every number, the floor included, is measured at the same size and
    the interval is the 2.5–97.5 % range over subsets drawn without replacement.
    """
    values = []
    for _ in range(draws):
        r = real[rng.choice(len(real), rows, replace=False)]
        f = fake[rng.choice(len(fake), rows, replace=False)]
        values.append((frechet(r, f), *precision_recall(r, f)))
    values = np.array(values)
    out = {"rows": rows, "draws": draws}
    for i, name in enumerate(("frechet", "precision", "recall")):
        out[name] = float(values[:, i].mean())
        out[f"{name}_ci95"] = [float(np.quantile(values[:, i], 0.025)), float(np.quantile(values[:, i], 0.975))]
    return out


def balanced_subset(data: Dataset, per_class: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), min(per_class, int((labels == c).sum())),
                                      replace=False) for c in range(data.num_classes)])
    return data.subset(np.sort(keep))


def save_grid(images: torch.Tensor, labels: torch.Tensor, classes: int, path: Path, per_row: int = 10) -> None:
    from PIL import Image

    rows = []
    for c in range(classes):
        chosen = images[labels == c][:per_row]
        rows.append(torch.cat(list(chosen[:, 0]), dim=1))
    grid = ((torch.cat(rows, dim=0) + 1) * 127.5).clamp(0, 255).byte().numpy()
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


PEAK_TRAINING = """
import sys
from practicum.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # peak RSS of this process, in kB
"""

PEAK_SAMPLING = """
import sys, torch
torch.set_num_threads(1)
from practicum.diffusion import load_denoiser, sample
den = load_denoiser(sys.argv[1])
sample(den, torch.arange(int(sys.argv[2])) % den.num_classes, steps=int(sys.argv[3]), cfg_scale=2.0, seed=0,
       batch_size=int(sys.argv[2]))
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # peak RSS (ru_maxrss would count the parent's)
"""


def peak_sampling_mib(model: str, batch: int, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_SAMPLING, model, str(batch), str(steps)],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def peak_training_mib(data: str, steps: int = 20) -> float:
    """Peak RSS of `practicum diffusion train` on the data's recipe (it does not grow with the steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", PEAK_TRAINING, "--quiet", "diffusion", "train", "--data", data,
                              "--steps", str(steps), "--threads", "1", "--out", str(Path(tmp) / "run")],
                             check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fashion", help="fashion, digits (the built-ins) or a model folder")
    parser.add_argument("--data", default=None, help="default: the built-in model's own data")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--cfg", type=float, nargs="+", default=[1.5, 2.5, 4.0])  # the recorded run's defaults
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps for the CAS sets")
    parser.add_argument("--clf-steps", type=int, default=500)
    parser.add_argument("--judge-steps", type=int, default=1000)
    parser.add_argument("--judge-width", type=int, default=32)
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples of the accuracies")
    parser.add_argument("--draws", type=int, default=10, help="subsets for Fréchet distance and precision/recall")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="skip the cost and memory measurements")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    data = args.data or (args.model if args.model in ("fashion", "digits") else None)
    if data is None:
        parser.error("--data is needed with a model folder")
    model = builtin_for("builtin", data) if args.model in ("fashion", "digits") else args.model
    name = args.model if args.model in ("fashion", "digits") else Path(args.model).name
    out = args.out or RESULTS / f"diffusion_quality_{name}.json"
    den = load_denoiser(model)
    levels = 16 if data == "digits" else 255
    train, tune, test = (load_source(data, s) for s in ("train", "tune", "test"))
    n_gen = args.per_class * den.num_classes
    t0 = time.perf_counter()
    print(f"[{name}] training the judge ({args.judge_steps} steps) and the CAS recipe on real train ...", flush=True)
    judge = train_classifier(train, steps=args.judge_steps, width=args.judge_width, seed=1)
    ceiling = train_classifier(train, steps=args.clf_steps, seed=0)
    matched = train_classifier(balanced_subset(train, args.per_class, args.seed), steps=args.clf_steps, seed=0)
    real_test_features = features(judge, test.images)
    rows_fd = min(2000, len(tune), len(test), n_gen)
    floor = distribution_metrics(real_test_features, features(judge, tune.images), rows_fd, args.draws, rng)
    reference = {"judge_test": accuracy_ci(judge, test, args.boot, rng),
                 "ceiling_test": accuracy_ci(ceiling, test, args.boot, rng),
                 "ceiling_tune": accuracy_ci(ceiling, tune, args.boot, rng),
                 "matched_size_real_test": accuracy_ci(matched, test, args.boot, rng),
                 "real_tune_vs_real_test": floor}
    rows = []
    for cfg in args.cfg:
        print(f"[{name}] s = {cfg}: sampling {n_gen} images at {args.steps} steps ...", flush=True)
        generated, seconds = generate(den, args.per_class, cfg, args.steps, args.seed, levels)
        save_grid(generated.images, generated.labels, den.num_classes, RESULTS / f"diffusion_quality_{name}_s{cfg:g}.png")
        cas = train_classifier(generated, steps=args.clf_steps, seed=0)
        rows.append({"cfg_scale": cfg, "n_generated": n_gen, "steps": args.steps,
                     "cas_tune": accuracy_ci(cas, tune, args.boot, rng)["accuracy"],
                     "cas_test": accuracy_ci(cas, test, args.boot, rng),
                     "fidelity": accuracy_ci(judge, generated, args.boot, rng),
                     **distribution_metrics(real_test_features, features(judge, generated.images), rows_fd,
                                            args.draws, rng),
                     "seconds_per_image": seconds / n_gen})
    chosen = max(rows, key=lambda r: r["cas_tune"])["cfg_scale"]
    cost = {}
    if not args.quick:
        for steps in (50, 10):
            labels = torch.arange(100) % den.num_classes
            start = time.perf_counter()
            sample(den, labels, steps=steps, cfg_scale=chosen, seed=0, batch_size=100)
            cost[f"seconds_per_image_{steps}_steps"] = (time.perf_counter() - start) / 100
        cost["peak_sampling_mib_batch100_50_steps"] = peak_sampling_mib(model, 100, 50)
        cost["peak_training_mib"] = peak_training_mib(data)
    result = {
        "benchmark": "diffusion_quality", "model": model, "data": data,
        "sidecar": read_sidecar(Path(den_sidecar(model))) if den_sidecar(model) else None,
        "sampling_defaults": sampling_defaults(den),
        "reference": reference, "rows": rows, "cfg_chosen_on_tune": chosen, "cost": cost,
        "splits": "generator and all classifiers fitted on train; CFG chosen by CAS on tune; test reported",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "wall_seconds": time.perf_counter() - t0,
        "machine": "2-core CPU dev box, shared with other jobs", "python": platform.python_version(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    ci = lambda d: f"{d['accuracy']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"  # noqa: E731
    print(f"judge (width-{args.judge_width} CNN) on real test: {ci(reference['judge_test'])}")
    print(f"CAS recipe on all real train (ceiling): {ci(reference['ceiling_test'])}; "
          f"on {n_gen} real: {ci(reference['matched_size_real_test'])}")
    print(f"real tune vs real test: FD {floor['frechet']:.2f}, precision {floor['precision']:.3f}, "
          f"recall {floor['recall']:.3f}")
    print(f"{'cfg s':>6} {'CAS tune':>9} {'CAS test [95% CI]':>24} {'fidelity':>9} {'FD [95% CI]':>22} "
          f"{'prec':>6} {'rec':>6} {'s/img':>7}")
    for r in rows:
        print(f"{r['cfg_scale']:>6.1f} {r['cas_tune']:>9.3f} {ci(r['cas_test']):>24} {r['fidelity']['accuracy']:>9.3f} "
              f"{r['frechet']:>7.2f} [{r['frechet_ci95'][0]:.2f}, {r['frechet_ci95'][1]:.2f}] "
              f"{r['precision']:>6.3f} {r['recall']:>6.3f} {r['seconds_per_image']:>7.4f}")
    print(f"CFG chosen on tune: s = {chosen}; cost: {json.dumps(cost)}")
    atomic_write_json(out, result)
    print(f"wrote {out}")


def den_sidecar(model: str) -> str | None:
    from practicum.diffusion.builtin import BUILTIN_FILES, TRAINED_SIDECAR

    if model.startswith("builtin:"):
        return str(BUILTIN_FILES[model.split(":")[1]][1])
    candidate = Path(model) / TRAINED_SIDECAR
    return str(candidate) if candidate.exists() else None


if __name__ == "__main__":
    main()
