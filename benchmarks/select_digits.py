"""Data selection on the built-in digits with web-like defects: does the Alchemist rater pick better data?

    python benchmarks/select_digits.py --out benchmarks/results/select_digits

The train split (987) gets seeded defects: 20 % wrong labels, 10 % near-duplicates of five
easy images, 10 % uniform-noise images. The rater trains against the clean validation split
(270); every arm trains a fresh learner (`practicum.learn`, the small CNN) for the same number
of steps on its selection and is scored on the real test split (540). Seeds change the rater,
the scorers' recordings, the selection draws and the learner; the defects stay fixed.

Writes DIR/summary.json (per arm: accuracy_mean, accuracy_std, accuracies, composition) and
benchmarks/results/<DIR's name>.json (a copy); progress is cached in WORK/cache.json (--work,
a scratch folder), so an interrupted run continues where it stopped. `--part streaming` measures scoring throughput and
peak memory as an embeddings pool grows 10x and 100x; `--part generative` trains the built-in
diffusion model on full / rater 50 % / random 50 % and compares samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from practicum.data import atomic_write_json, load_digits  # noqa: E402
from practicum.select import selectors as sel  # noqa: E402
from practicum.select.defects import DEFECT_KINDS, inject_defects  # noqa: E402

RULES = ("first_order", "unrolled", "two_model")


# ---------------------------------------------------------------- cache

class Cache:
    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, compute):
        if key not in self.data:
            self.data[key] = compute()
            atomic_write_json(self.path, self.data)
        return self.data[key]


# ---------------------------------------------------------------- pieces

def rater_ratings(train, val, rule: str, seed: int, args) -> list[float]:
    from practicum.select.pool import MemoryPool
    from practicum.select.rater import RaterSettings, rate, train_rater

    settings = RaterSettings(update_rule=rule, seed=seed, epochs=args.rater_epochs,
                             iterations_per_epoch=args.rater_iterations, lr=args.rater_lr,
                             proxy_lr=args.proxy_lr, width=args.rater_width)
    trainer = train_rater(settings, MemoryPool.from_dataset(train), MemoryPool.from_dataset(val))
    return rate(trainer.rater, train.images, train.labels, seed=seed, mode=args.rating_mode).tolist()


def dynamics_scores(train, seed: int, args) -> dict[str, list[float]]:
    from practicum.select import scorers
    from practicum.select.dynamics import record_dynamics

    record, _ = record_dynamics(train, steps=args.steps, observations=10, seed=seed)
    labels = train.labels.numpy()
    return {"el2n": scorers.el2n(record.logits[1], labels).tolist(),  # 20 % into training (Paul et al.: early)
            "forgetting": scorers.forgetting(record.correct()).tolist(),
            "loss": scorers.loss(record.logits[-1], labels).tolist()}


def train_and_test(train, test, index, steps: int, seed: int) -> float:
    from practicum.learn.learner import train_classifier

    learner = train_classifier(train.subset(np.sort(np.asarray(index))), steps=steps, seed=seed)
    return learner.evaluate(test)["accuracy"]


def composition(kinds: np.ndarray, index) -> dict[str, float]:
    chosen = kinds[np.asarray(index)]
    return {k: float(np.mean(chosen == k)) for k in DEFECT_KINDS}


def rank_by_kind(scores: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """Mean rank percentile per defect kind (0 = top of the ranking)."""
    rank = np.empty(len(scores))
    rank[sel.rank_descending(scores)] = np.arange(len(scores)) / (len(scores) - 1)
    return {k: float(rank[kinds == k].mean()) for k in DEFECT_KINDS}


def selections(scores: dict[str, np.ndarray], n: int, seed: int, kinds: np.ndarray, rules,
               labels: np.ndarray) -> dict[str, np.ndarray]:
    rater = scores["rater-first_order"]
    arms = {
        "full": np.arange(n),
        "random-50": sel.random_subset(n, 0.5, seed),
        "rater-topk-50": sel.top_k(rater, 0.5),
        "rater-shift-gsample-50": sel.shift_gsample(rater, 0.5, seed=seed),
        "el2n-50": sel.top_k(scores["el2n"], 0.5),
        "forgetting-50": sel.top_k(scores["forgetting"], 0.5),
        "rater-shift-gsample-20": sel.shift_gsample(rater, 0.2, seed=seed),
        "random-20": sel.random_subset(n, 0.2, seed),
        # extras: other shapes and baselines
        "rater-gsample-50": sel.gsample(rater, 0.5, seed=seed),
        "rater-shift-gsample-figure-50": sel.shift_gsample(rater, 0.5, shape="figure", seed=seed),
        "rater-ccs-50": sel.ccs(-rater, 0.5, seed=seed),  # CCS on "hardness" = minus the rating
        "loss-easy-50": sel.bottom_k(scores["loss"], 0.5),
        "clean-oracle-50": np.sort(np.random.default_rng(seed).choice(np.flatnonzero(kinds == "clean"),
                                                                        size=n // 2, replace=False)),
    }
    # Class-balanced versions: the label-conditioned rater rates whole classes lower (seed 0's
    # top-k 50 % holds no 5s and no 8s), so the budget is split by class size first.
    def balanced(rule, *options, **kw):
        return sel.class_balanced(rule, rater, labels, *options, **kw)

    arms.update({
        "rater-topk-50-bal": balanced(sel.top_k, 0.5),
        "rater-shift-gsample-50-bal": balanced(sel.shift_gsample, 0.5, seed=seed),
        "rater-shift-gsample-20-bal": balanced(sel.shift_gsample, 0.2, seed=seed),
        "rater-shift-gsample-d10-m3std6-50-bal": balanced(sel.shift_gsample, 0.5, prune_top=0.1, shape="m3_std6",
                                                          seed=seed),
        "rater-block-s10-50-bal": balanced(sel.block, 0.5, start=0.1),
        "rater-reverse-50-bal": balanced(sel.bottom_k, 0.5),
    })
    for rule in rules:
        if rule == "first_order":
            continue
        ratings = scores[f"rater-{rule}"]
        arms[f"rater-{rule}-topk-50"] = sel.top_k(ratings, 0.5)
        arms[f"rater-{rule}-shift-gsample-50"] = sel.shift_gsample(ratings, 0.5, seed=seed)
        arms[f"rater-{rule}-topk-50-bal"] = sel.class_balanced(sel.top_k, ratings, labels, 0.5)
        arms[f"rater-{rule}-shift-gsample-50-bal"] = sel.class_balanced(sel.shift_gsample, ratings, labels, 0.5,
                                                                       seed=seed)
    return arms


EQUAL_EPOCH_ARMS = {"random-50": 0.5, "rater-shift-gsample-50": 0.5, "random-20": 0.2, "rater-shift-gsample-20": 0.2,
                    "rater-topk-50-bal": 0.5, "rater-shift-gsample-50-bal": 0.5}


def classification(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache = Cache(work / "cache.json")
    clean_train = load_digits("train")
    train, kinds = inject_defects(clean_train, seed=0)
    val, test = load_digits("val"), load_digits("test")
    n = len(train)
    seeds = [int(s) for s in args.seeds.split(",")]
    rules = [r for r in args.rules.split(",") if r]
    results: dict[str, list[float]] = {}
    compositions: dict[str, list[dict]] = {}
    sanity: dict[str, list[dict]] = {}
    started = time.time()
    for seed in seeds:
        scores = {}
        for rule in rules:
            t0 = time.time()
            scores[f"rater-{rule}"] = np.asarray(cache.get(f"rater/{rule}/{seed}",
                                                           lambda: rater_ratings(train, val, rule, seed, args)))
            print(f"seed {seed} rater {rule} ready ({time.time() - t0:.0f}s)", flush=True)
        scores.update({k: np.asarray(v) for k, v in cache.get(f"dynamics/{seed}",
                                                              lambda: dynamics_scores(train, seed, args)).items()})
        for name, value in scores.items():
            sanity.setdefault(name, []).append(rank_by_kind(value, kinds))
        arms = selections(scores, n, seed, kinds, rules, train.labels.numpy())
        wanted = [a for a in args.arms.split(",") if a]
        arms = {a: index for a, index in arms.items() if not wanted or a in wanted}
        for arm, index in arms.items():
            acc = cache.get(f"acc/{arm}/{seed}/{args.steps}",
                            lambda: train_and_test(train, test, index, args.steps, seed))
            results.setdefault(arm, []).append(acc)
            compositions.setdefault(arm, []).append(composition(kinds, index))
            print(f"seed {seed} {arm:34s} acc {acc:.4f}  ({time.time() - started:.0f}s)", flush=True)
        for arm, fraction in EQUAL_EPOCH_ARMS.items():
            if arm not in arms:
                continue
            steps = max(1, int(round(args.steps * fraction)))
            acc = cache.get(f"acc/{arm}/{seed}/{steps}",
                            lambda: train_and_test(train, test, arms[arm], steps, seed))
            results.setdefault(f"{arm}@equal-epochs", []).append(acc)
            compositions.setdefault(f"{arm}@equal-epochs", []).append(composition(kinds, arms[arm]))

    sensitivity = shift_sensitivity(np.asarray(cache.data[f"rater/first_order/{seeds[0]}"]), kinds)
    summary = {
        "benchmark": "select_digits", "date": time.strftime("%Y-%m-%d"), "machine": args.machine,
        "command": "python benchmarks/select_digits.py " + " ".join(sys.argv[1:]),
        "settings": {"steps": args.steps, "seeds": seeds, "rules": rules, "rating_mode": args.rating_mode,
                     "arms": args.arms or "all", "rater_epochs": args.rater_epochs,
                     "rater_iterations_per_epoch": args.rater_iterations, "rater_lr": args.rater_lr,
                     "proxy_lr": args.proxy_lr, "rater_width": args.rater_width,
                     "defects": {"wrong_label": 0.2, "duplicate": 0.1, "noise": 0.1, "seed": 0},
                     "train": n, "val": len(val), "test": len(test)},
        "arms": {arm: {"accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc, ddof=1))
                       if len(acc) > 1 else 0.0, "accuracies": acc,
                       "composition": {k: float(np.mean([c[k] for c in compositions[arm]])) for k in DEFECT_KINDS}}
                 for arm, acc in results.items()},
        "rank_percentile_by_kind": {name: {k: float(np.mean([r[k] for r in rows])) for k in DEFECT_KINDS}
                                    for name, rows in sanity.items()},
        "shift_gsample_sensitivity": sensitivity,
        "wall_seconds": round(time.time() - started, 1),
    }
    return summary


def shift_sensitivity(ratings: np.ndarray, kinds: np.ndarray) -> list[dict]:
    """Defect share of a 50 % selection across (δ, shape): cheap, no training."""
    rows = []
    for delta in (0.0, 0.1, 0.25, 0.4):
        for shape in ("m2_std3", "m3_std6", "figure"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                index = sel.shift_gsample(ratings, 0.5, prune_top=delta, shape=shape, seed=0)
            comp = composition(kinds, index)
            rows.append({"prune_top": delta, "shape": shape, **comp})
    return rows


def print_table(summary: dict) -> None:
    print(f"\n{'arm':36s} {'accuracy (mean ± std)':>22s}  clean  wrong  dup  noise")
    for arm, row in summary["arms"].items():
        c = row["composition"]
        print(f"{arm:36s} {row['accuracy_mean'] * 100:8.2f} ± {row['accuracy_std'] * 100:5.2f}      "
              f"{c['clean']:.2f}  {c['wrong_label']:.2f}  {c['duplicate']:.2f}  {c['noise']:.2f}")
    print("\nmean rank percentile by defect kind (0 = top rated / hardest):")
    for name, row in summary["rank_percentile_by_kind"].items():
        print(f"  {name:22s} " + "  ".join(f"{k} {v:.2f}" for k, v in row.items()))


# ---------------------------------------------------------------- streaming

def streaming(args) -> dict:
    """Peak memory and throughput of `practicum score` on embeddings pools of N, 10N, 100N rows."""
    from practicum.select.rater import RaterSettings, RaterTrainer, rater_meta, save_rater

    work = Path(args.work) / "streaming"
    work.mkdir(parents=True, exist_ok=True)
    dim, base = 32, args.stream_base
    trainer = RaterTrainer(RaterSettings(), (dim,), 10)
    save_rater(work / "rater.safetensors", trainer.rater, rater_meta(trainer, 0))
    rows = []
    for factor in (1, 10, 100):
        n = base * factor
        path = work / f"pool-{n}.parquet"
        if not path.exists():
            rng = np.random.default_rng(factor)
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            for start in range(0, n, 100_000):  # write in chunks so the generator itself stays small
                m = min(100_000, n - start)
                emb = rng.normal(size=(m, dim)).astype(np.float32)
                table = pa.table({"id": pa.array([f"e{start + i}" for i in range(m)]),
                                  "label": pa.array(rng.integers(0, 10, size=m)),
                                  "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), dim)})
                if writer is None:
                    writer = pq.ParquetWriter(path.with_suffix(".partial"), table.schema)
                writer.write_table(table, row_group_size=8192)
            writer.close()
            os.replace(path.with_suffix(".partial"), path)  # a killed run never leaves a truncated pool
        target = work / f"scores-{n}"
        code = ("import resource, sys, time; from practicum.cli import main\n"
                "t = time.time()\n"
                "try:\n"
                f"    main(['--quiet', 'score', '--out', '{target}', '--rater', '{work / 'rater.safetensors'}', "
                f"'--embeddings', '{path}', '--shard-size', '65536', '--overwrite'])\n"
                "except SystemExit as e:\n"
                "    assert not e.code, e.code\n"
                "print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        seconds, peak_kib = result.stdout.strip().splitlines()[-1].split()
        summary = json.loads((target / "summary.json").read_text())
        rows.append({"examples": n, "wall_seconds": float(seconds), "peak_rss_mib": int(peak_kib) / 1024,
                     "examples_per_second": summary["examples_per_second"],
                     "parquet_mib": path.stat().st_size / 2**20})
        print(rows[-1], flush=True)
    return {"dim": dim, "shard_size": 65536, "rows": rows}


# ---------------------------------------------------------------- generative

def generative(args) -> dict:
    """Train the built-in diffusion model on full / rater-selected 50 % / random 50 % of the dirty pool."""
    from practicum.diffusion.sampler import sample
    from practicum.diffusion.train import DiffusionTrainSettings, train_diffusion
    from practicum.learn.learner import train_classifier
    from practicum.select.dynamics import penultimate

    out = Path(args.work) / "generative"
    out.mkdir(parents=True, exist_ok=True)
    cache = Cache(out / "cache.json")
    clean_train = load_digits("train")
    train, kinds = inject_defects(clean_train, seed=0)
    test = load_digits("test")
    seed = int(args.seeds.split(",")[0])
    ratings = np.asarray(json.loads((Path(args.work) / "cache.json").read_text())[f"rater/first_order/{seed}"])
    labels = train.labels.numpy()
    arms = {"full": np.arange(len(train)),
            "rater-topk-50-bal": sel.class_balanced(sel.top_k, ratings, labels, 0.5),
            "random-50": sel.random_subset(len(train), 0.5, seed),
            "rater-shift-gsample-50": sel.shift_gsample(ratings, 0.5, seed=seed)}
    arms = {k: v for k, v in arms.items() if k in args.generative_arms.split(",")}
    # a fixed feature space: a classifier trained on the clean real train split
    judge = train_classifier(clean_train, steps=600, seed=123)
    real_features = penultimate(judge.model, test.images)
    rows = {}
    for arm, index in arms.items():
        def run_arm():
            subset = train.subset(index)
            npz = out / f"{arm}.npz"
            np.savez(npz, x=((subset.images.numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8),
                     y=subset.labels.numpy(), ids=subset.ids.astype(str),
                     split=np.array(["train"] * len(subset)))
            settings = DiffusionTrainSettings(data=f"npz:{npz}", steps=args.diffusion_steps, seed=seed)
            train_diffusion(settings, out / f"model-{arm}", overwrite=True)
            from practicum.diffusion.builtin import BUILTIN_SAMPLING, load_builtin

            model_dir = out / f"model-{arm}"
            denoiser = load_builtin(model_dir / "digits_unet.safetensors", model_dir / "digits_unet.json")
            labels = torch.arange(10).repeat_interleave(args.samples_per_class)
            with torch.no_grad():
                images = sample(denoiser, labels, steps=50, cfg_scale=BUILTIN_SAMPLING["cfg_scale"], seed=seed,
                                batch_size=250).images
            from practicum.data import Dataset

            synthetic = Dataset(images.clamp(-1, 1).float(), labels, np.array([f"s{i}" for i in range(len(labels))]),
                                test.class_names)
            cas = train_classifier(synthetic, steps=600, seed=seed).evaluate(test)["accuracy"]
            judge_acc = float((judge.logits(synthetic.images).argmax(1) == labels).float().mean())
            fd = frechet(penultimate(judge.model, synthetic.images), real_features)
            return {"cas": cas, "judge_accuracy": judge_acc, "frechet": fd, "train_examples": len(index),
                    "composition": composition(kinds, index)}
        rows[arm] = cache.get(arm, run_arm)
        print(arm, rows[arm], flush=True)
    return {"diffusion_steps": args.diffusion_steps, "samples_per_class": args.samples_per_class, "arms": rows}


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(covmean)))


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/select_digits")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "practicum_select_digits"),
                        help="scratch: the progress cache, synthetic pools, diffusion models (not for git)")
    parser.add_argument("--part", default="classification", choices=["classification", "streaming", "generative", "all"])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=400, help="learner steps for every arm (equal-step)")
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--arms", default="", help="comma list of classification arms to run (default: all)")
    parser.add_argument("--rating-mode", default="instance", choices=["instance", "group"],
                        help="instance (a_i, batch-free: the CLI default since issue 14) or group (p·g)")
    parser.add_argument("--rater-epochs", type=int, default=30)
    parser.add_argument("--rater-iterations", type=int, default=25)
    parser.add_argument("--rater-lr", type=float, default=3e-3)
    parser.add_argument("--proxy-lr", type=float, default=3e-3)
    parser.add_argument("--rater-width", type=int, default=32)
    parser.add_argument("--stream-base", type=int, default=10_000)
    parser.add_argument("--diffusion-steps", type=int, default=1500)
    parser.add_argument("--samples-per-class", type=int, default=50)
    parser.add_argument("--generative-arms", default="full,rater-topk-50-bal,random-50,rater-shift-gsample-50")
    parser.add_argument("--machine", default=f"2-core CPU dev box, shared ({platform.machine()})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    fresh: dict = {}
    if args.part in ("classification", "all"):
        fresh.update(classification(args))
        print_table(fresh)
    if args.part in ("streaming", "all"):
        fresh["streaming"] = streaming(args)
    if args.part in ("generative", "all"):
        fresh["generative"] = generative(args)
    # parts run separately (or at once) add to one summary: read it only now, just before writing
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.update(fresh)
    atomic_write_json(summary_path, summary)
    atomic_write_json(ROOT / "benchmarks" / "results" / f"{out.name}.json", summary)  # a copy, named by --out
    print(f"wrote {summary_path}")


if __name__ == "__main__":
    main()
