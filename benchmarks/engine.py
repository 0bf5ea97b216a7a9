"""Scale-out engine: speedup of 2 Ray workers over 1, and what starting Ray costs.

Two workloads, both made of real practicum code, each item seeded from `shard_seed`:

- study seeds (Ray tasks): one item = one independent training run of the built-in CNN learner
  on the digits train split (`practicum.learn.train_classifier`), evaluated on val — the unit of
  work the study repeats over seeds × strategies × sizes;
- scoring (Ray Data actor pool, `setup=`): the actor loads a trained learner once from its
  safetensors checkpoint, then each item scores one shard of a seeded synthetic pool by the
  learner's predictive entropy (the DP hardness score).

Each workload runs on one local Ray instance (2 CPUs) with 1 worker (a task asks for 2 CPUs / a
pool of 1 actor) and with 2 workers (1 CPU each / 2 actors), every item at 1 torch thread, and
in-process as the reference. The script checks that all runs return identical bytes. Task
workers are warmed up (two 1-step runs) before timing; an actor pool lives for one `map` call,
so its start (process, imports, loading the checkpoint) is inside the scoring times.
Start-up: `ray.init` of a local instance, the first task round trip (worker processes start and
import torch) and the first actor pool.

    python benchmarks/engine.py                # the measurement recorded in docs/benchmarks.md
    python benchmarks/engine.py --quick        # a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import os
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import atomic_write_json  # noqa: E402
from practicum.engine import LocalExecutor, shard_seed  # noqa: E402
from practicum.engine.ray_executor import RayExecutor  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"


# ---------------------------------------------------------------- workloads (top level: picklable)

def study_run(item: dict) -> dict:
    """One independent training run: the built-in CNN on digits train, accuracy on val."""
    from practicum.data import load_digits
    from practicum.learn import train_classifier

    learner = train_classifier(load_digits("train"), steps=item["steps"], arch="cnn", seed=item["seed"])
    metrics = learner.evaluate(load_digits("val"))
    weights = learner.state()[0]
    digest = hashlib.sha256(b"".join(weights[k].numpy().tobytes() for k in sorted(weights))).hexdigest()
    return {"seed": item["seed"], "val_accuracy": metrics["accuracy"], "weights_sha256": digest}


def load_scorer(directory: str):
    from practicum.learn import Learner

    return Learner.load(directory)


def score_shard(learner, item: dict) -> np.ndarray:
    """Entropy of the learner on one shard of a seeded pool (images drawn around the digit classes)."""
    from practicum.data import load_digits

    base = torch.as_tensor(load_digits("train").images)
    gen = torch.Generator().manual_seed(item["seed"])
    pick = torch.randint(0, len(base), (item["n"],), generator=gen)
    pool = (base[pick] + 0.3 * torch.randn((item["n"], *base.shape[1:]), generator=gen)).clamp(-1, 1)
    return learner.entropy(pool).numpy()


def _start_scorer() -> str:
    from practicum.data import load_digits
    from practicum.learn import train_classifier

    folder = tempfile.mkdtemp(prefix="practicum-bench-scorer-")
    train_classifier(load_digits("train"), steps=100, arch="cnn", seed=0).save(folder)
    return folder


def _noop(item):
    return item


def _noop_with_state(state, item):
    return item


def _nothing():
    return None


# ---------------------------------------------------------------- measurement

def _timed(call):
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _digest(value) -> str:
    """A hash of the values themselves (pickle bytes would also encode object identity)."""
    digest = hashlib.sha256()
    for part in value:
        if isinstance(part, np.ndarray):
            digest.update(str(part.dtype).encode() + str(part.shape).encode() + part.tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8, help="study runs (items)")
    parser.add_argument("--steps", type=int, default=150, help="training steps per study run")
    parser.add_argument("--shards", type=int, default=8, help="scoring shards (items)")
    parser.add_argument("--shard-size", type=int, default=40000, help="images per scoring shard")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.shards, args.shard_size = 2, 20, 2, 2000
    torch.set_num_threads(1)

    load_before = os.getloadavg()
    startup: dict[str, float] = {}
    ray_executor = RayExecutor(num_cpus=2, threads=1)
    startup["ray_init_s"], _ = _timed(ray_executor.start)
    startup["first_tasks_s"], _ = _timed(lambda: ray_executor.map(_noop, [0, 1], description="warm-up"))
    startup["warm_tasks_s"], _ = _timed(lambda: ray_executor.map(_noop, [0, 1], description="warm"))
    pool_one = RayExecutor(threads=1, actors=1, cpus_per_actor=1)
    startup["first_actor_pool_s"], _ = _timed(lambda: pool_one.map(_noop_with_state, [0], setup=_nothing))

    rows = []
    study_items = [{"seed": shard_seed(0, 0, s), "steps": args.steps} for s in range(args.seeds)]
    scorer = _start_scorer()
    score_items = [{"seed": shard_seed(0, 1, s), "n": args.shard_size} for s in range(args.shards)]
    from functools import partial

    setup = partial(load_scorer, scorer)
    workloads = {
        "study seeds (tasks)": (study_run, study_items, None, {
            "local, in-process": LocalExecutor(threads=1),
            "ray, 1 worker": RayExecutor(threads=1, cpus_per_task=2),
            "ray, 2 workers": RayExecutor(threads=1, cpus_per_task=1),
        }),
        "scoring (actor pool)": (score_shard, score_items, setup, {
            "local, in-process": LocalExecutor(threads=1),
            "ray, 1 worker": RayExecutor(threads=1, actors=1, cpus_per_actor=1),
            "ray, 2 workers": RayExecutor(threads=1, actors=2, cpus_per_actor=1),
        }),
    }
    for workload, (fn, items, setup_fn, executors) in workloads.items():
        times, digests = {}, {}
        for label, executor in executors.items():
            if setup_fn is None:  # task workers are reused: import practicum and the data before timing
                executor.map(fn, [{**item, "steps": 1} for item in items[:2]], description="warm-up")
            seconds, result = _timed(lambda: executor.map(fn, items, setup=setup_fn, description=label))
            times[label], digests[label] = seconds, _digest(result)
            print(f"{workload:22s} {label:18s} {seconds:8.2f} s", flush=True)
        identical = len(set(digests.values())) == 1
        rows.append({
            "workload": workload, "items": len(items), "seconds": {k: round(v, 2) for k, v in times.items()},
            "speedup_2_vs_1": round(times["ray, 1 worker"] / times["ray, 2 workers"], 2),
            "speedup_2_vs_local": round(times["local, in-process"] / times["ray, 2 workers"], 2),
            "identical_results": identical,
        })
    ray_executor.close()
    load_after = os.getloadavg()

    print()
    print(f"{'workload':22s} {'items':>5s} {'local s':>8s} {'ray×1 s':>8s} {'ray×2 s':>8s} "
          f"{'2 vs 1':>7s} {'2 vs local':>10s} identical")
    for row in rows:
        s = row["seconds"]
        print(f"{row['workload']:22s} {row['items']:5d} {s['local, in-process']:8.2f} {s['ray, 1 worker']:8.2f} "
              f"{s['ray, 2 workers']:8.2f} {row['speedup_2_vs_1']:6.2f}× {row['speedup_2_vs_local']:9.2f}× "
              f"{row['identical_results']}")
    print()
    print("Ray start-up: " + ", ".join(f"{k} {v:.2f}" for k, v in startup.items()))
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)")
    atomic_write_json(RESULTS, {
        "benchmark": "engine", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python " + " ".join(sys.argv), "machine": "2-core CPU dev box, shared",
        "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "ray": __import__("ray").__version__, "settings": vars(args), "startup_seconds": {k: round(v, 2) for k, v in startup.items()},
        "load_average_before": load_before, "load_average_after": load_after, "rows": rows,
    })
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
