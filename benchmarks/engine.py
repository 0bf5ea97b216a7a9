"""Scale-out engine: speedup of 2 Ray workers over 1, and what starting Ray costs.

Three workloads of real practicum code, each item seeded from `shard_seed`:

- study seeds (Ray tasks): one item = one independent training run of the built-in CNN learner
  on the digits train split (`practicum.learn.train_classifier`), evaluated on val — the unit of
  work the study repeats over seeds × strategies × sizes;
- scoring (`practicum score`, i.e. `practicum.select.pipeline.run_score`, Ray tasks through
  `run_shards`): a briefly trained Alchemist rater scores a pool of --shards × --shard-size
  digit-like images (train digits plus seeded noise, an npz source), end to end;
- entropy on an actor pool (`map(..., setup=)`, a persistent pool): each actor loads a trained
  learner once from its safetensors checkpoint, then scores shards of a seeded pool by
  predictive entropy (the DP hardness score).

Each workload runs on one local Ray instance (2 CPUs) with 1 worker (a task asks for 2 CPUs / a
pool of 1 actor) and with 2 workers (1 CPU each / 2 actors), every item at 1 torch thread, and
in-process as the reference; the script checks that all three give identical bytes.

What is timed is steady-state work. Before it, each of the three runs (local, 1 worker, 2
workers alike) gets a warm-up call, timed and reported on its own ("first call" columns), never
inside the timed figure:
- study seeds: two rounds of two 1-step runs (task workers start, import torch and practicum);
- scoring: `practicum score` of a smaller pool (--shards shards of up to 16,384 images, so that every
  worker process scores one) with the same
  rater (workers import the scorer and load the rater, which each worker process keeps);
- actor pool: the same map on the first two shards at 200 images: the pool starts (actor
  processes, `import torch`, loading the checkpoint); actor pools persist across map calls,
  so the timed call runs on the warm actors.
The timed `practicum score` is the whole command (its driver loads the split once and sends each
worker its own rows). Start-up of Ray itself: `ray.init` of a local instance, the first task
round trip (worker processes start and import torch), a warm round trip, and the first and a
second call on a new actor pool.

    python benchmarks/engine.py --seeds 6 --steps 200 --shards 6 --shard-size 20000 --score-shard-size 100000
                                               # the measurement recorded in docs/benchmarks.md
    python benchmarks/engine.py --quick --out /tmp/engine.json   # a smoke run (keeps the recorded JSON)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import partial
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


# ---------------------------------------------------------------- workloads: 3 ways to run each

@contextmanager
def _env(**values: str):
    """Set PRACTICUM_* variables for one run (how `--engine ray` is tuned without flags)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _clocked_task(fn, item):
    """Run one item and note when it ran, where, and the CPU time its process spent on it."""
    started, cpu = time.time(), time.process_time()
    value = fn(item)
    return value, {"pid": os.getpid(), "start": started, "end": time.time(), "cpu": time.process_time() - cpu}


def _clocked_actor(fn, state, item):
    started, cpu = time.time(), time.process_time()
    value = fn(state, item)
    return value, {"pid": os.getpid(), "start": started, "end": time.time(), "cpu": time.process_time() - cpu}


def _timeline(clocks: list[dict], wall: float) -> dict:
    """How parallel a run really was, independent of how busy the machine was.

    `in_flight`: mean number of items running at once; `cpu_share`: CPU seconds the items got
    per second they were running (1.0 = a whole core each); `balanced_speedup`: total item CPU
    over the busiest worker's CPU, i.e. the speedup over one worker if each had a core to itself.
    """
    by_worker: dict[int, float] = {}
    for clock in clocks:
        by_worker[clock["pid"]] = by_worker.get(clock["pid"], 0.0) + clock["cpu"]
    busy = sum(c["end"] - c["start"] for c in clocks)
    cpu = sum(c["cpu"] for c in clocks)
    return {"workers": len(by_worker), "in_flight": round(busy / wall, 2), "cpu_share": round(cpu / busy, 2),
            "item_cpu_seconds": round(cpu, 2), "balanced_speedup": round(cpu / max(by_worker.values()), 2)}


def _warm_up_items(items: list[dict]) -> list[dict]:
    """The first two items made small: a study run of 1 step, an entropy shard of 200 images."""
    small = {"steps": 1, "n": 200}
    return [{**item, **{k: v for k, v in small.items() if k in item}} for item in items[:2]]


def _map_runs(fn, items, setup, executors) -> dict:
    clocked = partial(_clocked_task, fn) if setup is None else partial(_clocked_actor, fn)

    def runner(executor, label):
        def run():
            # warm-up, timed apart: task workers import practicum and the data; an actor pool
            # starts and loads its model (and persists, so the timed call reuses it)
            rounds = 2 if setup is None else 1  # tasks twice: the first may land both items on one worker
            warm_up, _ = _timed(lambda: [executor.map(clocked, _warm_up_items(items), setup=setup,
                                                      description="warm-up") for _ in range(rounds)])
            seconds, pairs = _timed(lambda: executor.map(clocked, items, setup=setup, description=label))
            return seconds, warm_up, _digest([value for value, _ in pairs]), _timeline([c for _, c in pairs], seconds)
        return run
    return {label: runner(executor, label) for label, executor in executors.items()}


def _score_pool(work: Path, n: int, name: str = "pool") -> Path:
    """A pool of n digit-like images (train digits plus seeded noise) as an npz source."""
    from practicum.data import load_digits

    base = load_digits("train")
    images, labels = np.asarray(base.images), np.asarray(base.labels)
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(labels), n)
    x = np.clip(images[pick] + 0.2 * rng.normal(size=(n, *images.shape[1:])), -1, 1)
    path = work / f"{name}.npz"
    np.savez(path, x=((x + 1) * 127.5).round().astype(np.uint8), y=labels[pick],
             split=np.array(["train"] * n))
    return path


def _score_runs(args, work: Path) -> dict:
    from practicum.select.pipeline import DataSettings, RateSettings, ScoreSettings, run_rate, run_score
    from practicum.select.rater import RaterSettings

    rater = work / "rater"
    run_rate(RateSettings(rater=RaterSettings(epochs=1, iterations_per_epoch=20)), rater)
    pool = _score_pool(work, args.shards * args.score_shard_size)
    config = ScoreSettings(source=DataSettings(data=f"npz:{pool}"), rater=str(rater), shard_size=args.score_shard_size)
    # as many shards as the timed run, each long enough (~0.2 s) that every worker process runs one: shards of
    # a few milliseconds all went to the first worker, leaving the second cold inside the timed call
    warm_size = min(args.score_shard_size, 16384)
    small = ScoreSettings(source=DataSettings(data=f"npz:{_score_pool(work, args.shards * warm_size, 'warm-up')}"),
                        rater=str(rater), shard_size=warm_size)

    def runner(label, engine, cpus_per_task):
        def run():
            out = work / f"score-{engine}-{cpus_per_task}"
            with _env(PRACTICUM_THREADS="1", PRACTICUM_RAY_CPUS_PER_TASK=str(cpus_per_task)):
                warm_up, _ = _timed(lambda: run_score(small, work / f"warm-up-{engine}-{cpus_per_task}",
                                                      engine=engine))
                seconds, _ = _timed(lambda: run_score(config, out, engine=engine))
            return seconds, warm_up, hashlib.sha256((out / "scores.parquet").read_bytes()).hexdigest()[:16], None
        return run
    return {"local, in-process": runner("local", "local", 1), "ray, 1 worker": runner("ray1", "ray", 2),
            "ray, 2 workers": runner("ray2", "ray", 1)}


def _workloads(args, work: Path) -> dict:
    study_items = [{"seed": shard_seed(0, 0, s), "steps": args.steps} for s in range(args.seeds)]
    entropy_items = [{"seed": shard_seed(0, 1, s), "n": args.shard_size} for s in range(args.shards)]
    setup = partial(load_scorer, _start_scorer())
    return {
        "study seeds (tasks)": _map_runs(study_run, study_items, None, {
            "local, in-process": LocalExecutor(threads=1),
            "ray, 1 worker": RayExecutor(threads=1, cpus_per_task=2),
            "ray, 2 workers": RayExecutor(threads=1, cpus_per_task=1),
        }),
        "scoring: practicum score": _score_runs(args, work),
        "entropy on an actor pool": _map_runs(score_shard, entropy_items, setup, {
            "local, in-process": LocalExecutor(threads=1),
            "ray, 1 worker": RayExecutor(threads=1, actors=1, cpus_per_actor=1),
            "ray, 2 workers": RayExecutor(threads=1, actors=2, cpus_per_actor=1),
        }),
    }


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
    parser.add_argument("--shard-size", type=int, default=3000, help="images per entropy shard")
    parser.add_argument("--score-shard-size", type=int, default=100000, help="images per `practicum score` shard")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.shards, args.shard_size, args.score_shard_size = 2, 20, 2, 200, 500
    torch.set_num_threads(1)

    load_before = os.getloadavg()
    startup: dict[str, float] = {}
    ray_executor = RayExecutor(num_cpus=2, threads=1)
    startup["ray_init_s"], _ = _timed(ray_executor.start)
    startup["first_tasks_s"], _ = _timed(lambda: ray_executor.map(_noop, [0, 1], description="warm-up"))
    startup["warm_tasks_s"], _ = _timed(lambda: ray_executor.map(_noop, [0, 1], description="warm"))
    pool_one = RayExecutor(threads=1, actors=1, cpus_per_actor=1)
    startup["first_actor_pool_s"], _ = _timed(lambda: pool_one.map(_noop_with_state, [0], setup=_nothing))
    startup["warm_actor_pool_s"], _ = _timed(lambda: pool_one.map(_noop_with_state, [0], setup=_nothing))

    rows = []
    work = Path(tempfile.mkdtemp(prefix="practicum-bench-engine-"))
    for workload, runs in _workloads(args, work).items():
        times, warm_ups, digests, timelines = {}, {}, {}, {}
        for label, run in runs.items():
            seconds, warm_up, digest, timeline = run()
            times[label], warm_ups[label], digests[label], timelines[label] = seconds, warm_up, digest, timeline
            print(f"{workload:26s} {label:18s} {seconds:8.2f} s  (first call {warm_up:.2f} s)  {timeline or ''}",
                  flush=True)
        rows.append({
            "workload": workload, "seconds": {k: round(v, 2) for k, v in times.items()},
            "warm_up_seconds": {k: round(v, 2) for k, v in warm_ups.items()},
            "speedup_2_vs_1": round(times["ray, 1 worker"] / times["ray, 2 workers"], 2),
            "speedup_2_vs_local": round(times["local, in-process"] / times["ray, 2 workers"], 2),
            "identical_results": len(set(digests.values())) == 1,
            "timelines": timelines,
        })
    ray_executor.close()
    load_after = os.getloadavg()

    print()
    print("timed: steady-state work after each run's warm-up; first call: that warm-up, apart (start-up)")
    print(f"{'workload':26s} {'local s':>8s} {'ray×1 s':>8s} {'ray×2 s':>8s} "
          f"{'2 vs 1':>7s} {'2 vs local':>10s} identical  {'first call s: local':>19s} {'ray×1':>6s} {'ray×2':>6s}")
    for row in rows:
        s, w = row["seconds"], row["warm_up_seconds"]
        print(f"{row['workload']:26s} {s['local, in-process']:8.2f} {s['ray, 1 worker']:8.2f} "
              f"{s['ray, 2 workers']:8.2f} {row['speedup_2_vs_1']:6.2f}× {row['speedup_2_vs_local']:9.2f}× "
              f"{str(row['identical_results']):9s}  {w['local, in-process']:19.2f} {w['ray, 1 worker']:6.2f} "
              f"{w['ray, 2 workers']:6.2f}")
    print()
    print(f"{'workload':26s} {'workers':>7s} {'in flight':>9s} {'cpu share':>9s} {'balanced 2 vs 1':>15s}"
          "  (ray, 2 workers)")
    for row in rows:
        t = row["timelines"]["ray, 2 workers"]
        if t:
            print(f"{row['workload']:26s} {t['workers']:7d} {t['in_flight']:9.2f} {t['cpu_share']:9.2f} "
                  f"{t['balanced_speedup']:14.2f}×")
    print()
    print("Ray start-up: " + ", ".join(f"{k} {v:.2f}" for k, v in startup.items()))
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)")
    atomic_write_json(args.out, {
        "benchmark": "engine", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python " + " ".join(sys.argv), "machine": "2-core CPU dev box, shared",
        "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "ray": __import__("ray").__version__, "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "startup_seconds": {k: round(v, 2) for k, v in startup.items()},
        "load_average_before": load_before, "load_average_after": load_after,
        "timed": "steady-state work after each run's own warm-up call (warm_up_seconds, reported apart)",
        "rows": rows,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
