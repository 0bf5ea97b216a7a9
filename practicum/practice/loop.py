"""The Deliberate Practice loop (DP paper, Algorithm 1), readable top to bottom.

    D <- N vanilla samples (round 0)
    for it in 1..I:                                   # the budget is in iterations
        one step on a minibatch drawn uniformly from D    # old and new samples alike
        every tau samples seen: accuracy on the REAL validation split -> patience
        if patience ran out and it < cool-down start:     # nothing is added in the cool-down
            (branch-out snapshot)
            D <- D + P new class-balanced samples, entropy-guided by the current learner
            T_max grows with |D|
    then: test accuracy of the final learner; each branch-out snapshot trains to the same
    budget on the data it had (no more added) and is tested too -> accuracy vs data size.

Static runs (`max_rounds=0`) and the dynamic-vanilla control (`omega=0`) are the same loop.

Every event goes to metrics.jsonl: `eval` (step, train loss since the last eval, val accuracy,
patience), `injection` (round, pool size, entropy of the new samples and of the pool under the
learner that asked for them, generation seconds), `final`, `branch`.

Resume. The loop checkpoints the learner (weights, optimiser, RNG) and its own counters every
`checkpoint_every` steps and after every injection; the checkpoint records how many metric
lines existed. A resumed run truncates metrics.jsonl to that count and replays from the
checkpoint, which is deterministic, so it ends with the same pool and the same metrics as a
run never stopped. A round that reached the pool before the kill is read back from the pool
instead of being generated again (its generation seconds are stored in the pool index).
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from practicum.data.pool import Pool
from practicum.data.runstore import RunDir, atomic_write_json
from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError, RunError
from practicum.heap import release_memory
from practicum.learn import Learner, Patience, build_model
from practicum.learn.patience import round_due
from practicum.log import progress_bar
from practicum.practice.generators import Generator, Request, balanced_labels
from practicum.practice.settings import PracticeSettings


@dataclass
class LoopState:
    """The loop's own counters; with the learner's state this is everything needed to resume."""

    step: int = 0
    seen_since_eval: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    rounds: int = 0  # rounds added after the initial set
    pool_size: int = 0
    evals: int = 0
    patience: dict = field(default_factory=dict)
    metric_lines: int = 0
    seconds: dict = field(default_factory=lambda: {"generate": 0.0, "train": 0.0, "eval": 0.0})
    branches: list = field(default_factory=list)  # rounds with a branch-out snapshot
    last_branch_size: int | None = None


def practice(run: RunDir, settings: PracticeSettings, generator: Generator, val, test=None, *,
             tune=None, model=None, engine: str = "local", description: str = "practice",
             branch_start: bool = True) -> dict[str, Any]:
    """Run (or resume) one DP / static / dynamic-vanilla run in `run`; returns its result.

    `val` (real) drives patience; `test` (real, held out) is only used for the reported
    numbers; `tune` (real), when given, scores the same points for choosing hyper-parameters.
    `model` is an optional user nn.Module (freshly initialised) for the learner.
    `branch_start=False` keeps the branch-out schedule but does not train the round-1 snapshot:
    it is step for step the static run at `initial_size` with the same seed and start set (val
    evaluations draw no random numbers), which a study has already run.
    """
    s = settings
    if s.train.steps < 1:
        raise ConfigError("the iteration budget train.steps must be at least 1")
    pool = Pool(run.sub("pool"))
    checkpoints = run.sub("checkpoints")
    num_classes, image_shape = val.num_classes, val.image_shape

    # ---- start, or pick up where a killed run stopped
    def network() -> torch.nn.Module:
        """An untrained network for a checkpoint to load into: a learner folder never names the
        code of a custom factory (`--learner module:factory`), so the settings say how to build it."""
        return copy.deepcopy(model) if model is not None else build_model(s.arch, num_classes, image_shape, s.width)

    learner, state = _restore(run, s.device, network())
    if learner is None:
        fresh = model if model is not None else build_model(s.arch, num_classes, image_shape, s.width, seed=s.seed)
        learner = Learner(fresh, s.train, seed=s.seed, device=s.device)
        state = LoopState()
        run.trim_metrics(0)
        state.seconds["generate"] += _add_round(pool, generator, 0, s.initial_size, num_classes, 0.0, None,
                                                shard_seed(s.seed, 0), start=0, scorer=learner)
        state.pool_size = len(pool)
        state.patience = asdict(Patience(s.t_init, s.initial_size, s.patience_rule, s.reset_best))
        _checkpoint(run, learner, state)
    patience = Patience.from_state(state.patience)
    images, labels = _pool_tensors(pool, state.rounds)

    # ---- the loop
    budget, cooldown = s.iterations, learner.cooldown_start
    first_add = 0 if s.add_during_warmup else round(budget * s.train.warmup_fraction)
    every = s.checkpoint_every or max(100, budget // 10)
    with progress_bar(description, budget) as advance:
        advance(state.step)
        while state.step < budget:
            started = time.perf_counter()
            state.loss_sum += learner.train_on(images, labels)
            state.seconds["train"] += time.perf_counter() - started
            state.loss_count += 1
            state.step += 1
            state.seen_since_eval += s.train.batch_size
            advance()

            can_add = s.max_rounds is None or state.rounds < s.max_rounds
            if state.seen_since_eval >= s.tau and (can_add or s.track_val):
                started = time.perf_counter()
                result = learner.evaluate(val)
                state.seconds["eval"] += time.perf_counter() - started
                improved = patience.update(result["accuracy"])
                run.log_metric({"event": "eval", "step": state.step, "pool_size": state.pool_size,
                                "train_loss": state.loss_sum / max(1, state.loss_count),
                                "val_accuracy": result["accuracy"], "val_loss": result["loss"],
                                "best": patience.best, "improved": improved, "patience": patience.count,
                                "t_max": patience.t_max, "lr": learner.current_lr()})
                state.seen_since_eval, state.loss_sum, state.loss_count = 0, 0.0, 0
                state.evals += 1

                if round_due(patience, state.rounds, s.max_rounds, state.step, first_add, cooldown):
                    k = state.rounds + 1
                    if s.wants_branch(k, state.pool_size, state.last_branch_size):
                        if k > 1 or branch_start:  # else the same schedule, without training round 1's
                            _save_learner(learner, checkpoints / f"branch-{k:03d}")
                            state.branches.append(k)
                        state.last_branch_size = state.pool_size
                    guide = learner.guide_model() if s.omega != 0.0 else None
                    gen_seconds = _add_round(pool, generator, k, s.add_size, num_classes, s.omega, guide,
                                             shard_seed(s.seed, k), start=state.pool_size, scorer=learner)
                    state.seconds["generate"] += gen_seconds
                    new_entropy = _round_entropy(pool, k)
                    old_entropy = learner.entropy(images).numpy()
                    state.rounds, state.pool_size = k, len(pool)
                    patience.new_round(state.pool_size)
                    run.log_metric({"event": "injection", "round": k, "step": state.step,
                                    "pool_size": state.pool_size, "added": s.add_size, "omega": s.omega,
                                    "gen_seconds": gen_seconds, "t_max": patience.t_max,
                                    **entropy_stats("new_entropy", new_entropy),
                                    **entropy_stats("pool_entropy", old_entropy)})
                    images, labels = _pool_tensors(pool, state.rounds)
                    state.patience = asdict(patience)
                    _checkpoint(run, learner, state)
                    release_memory()  # the sampler's activations, before training goes on
                    continue
            if state.step % every == 0:
                state.patience = asdict(patience)
                _checkpoint(run, learner, state)

    # ---- the reported numbers: the final learner and every branch-out, on held-out real data
    state.patience = asdict(patience)
    _checkpoint(run, learner, state)
    points = [final_point(run, learner, val, test, tune, size=state.pool_size, rounds=state.rounds, step=state.step)]
    release_memory()
    points += _branch_outs(run, checkpoints, pool, state, val, test, engine, str(learner.device), tune, network)
    points.sort(key=lambda p: p["size"])
    summary = {"settings": s.model_dump(mode="json"), "points": points, "rounds": state.rounds,
               "pool_size": state.pool_size, "steps": state.step, "evals": state.evals,
               "seconds": {**state.seconds, "branches": sum(p.get("train_seconds", 0.0) for p in points
                                                            if p["kind"] == "branch")}}
    run.write_results(summary)
    return summary


# ---------------------------------------------------------------- data rounds

def _add_round(pool: Pool, generator: Generator, k: int, count: int, num_classes: int, omega: float,
               guide, seed: int, start: int, scorer: Learner | None = None) -> float:
    """Generate round k into the pool (or find it there already); returns its generation seconds.

    With a `scorer`, each new example's entropy under that learner is stored in the pool index
    (for round k >= 1 this is the learner that asked for the round)."""
    name = f"round-{k:03d}"
    if pool.has_shard(name):  # generated before a kill: never generate twice
        index = pool.index()
        return float(index.loc[index["shard"] == name, "gen_seconds"].iloc[0])
    labels = balanced_labels(start, count, num_classes)
    out = generator(Request(labels=labels, omega=omega, guide=guide, seed=seed, start=start))
    if len(out.images) != count or out.images.ndim != 4:
        raise RunError(f"the generator returned images of shape {tuple(out.images.shape)} for {count} labels",
                       "a generator must return one (C, H, W) image per requested label")
    values = {} if scorer is None else {"entropy": scorer.entropy(out.images).numpy()}
    pool.append(name, out.images, labels, round_index=k, seeds=seed, values=values,
                settings={"omega": omega, "gen_seconds": float(out.seconds), "retries": int(out.retries)})
    return float(out.seconds)


def _pool_tensors(pool: Pool, rounds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rounds 0..rounds of the pool (a resumed run may find later rounds there already)."""
    data = pool.to_dataset(rounds=list(range(rounds + 1)))
    return data.images, data.labels


def _round_entropy(pool: Pool, k: int) -> np.ndarray:
    index = pool.index()
    return index.loc[index["round"] == k, "entropy"].to_numpy(dtype=np.float64)


def entropy_stats(prefix: str, values: np.ndarray) -> dict[str, float]:
    return {f"{prefix}_mean": float(values.mean()), f"{prefix}_median": float(np.median(values)),
            f"{prefix}_p90": float(np.quantile(values, 0.9))}


# ---------------------------------------------------------------- reported numbers

def final_point(run: RunDir, learner: Learner, val, test, tune=None, *, size: int, rounds: int,
                step: int) -> dict[str, Any]:
    """The run's reported point (val, and test/tune when given), logged as the "final" event."""
    point = {"kind": "final", "size": size, "rounds": rounds, "step": step,
             "val_accuracy": learner.evaluate(val)["accuracy"]}
    if test is not None:
        point["test_accuracy"] = learner.evaluate(test)["accuracy"]
    if tune is not None:
        point["tune_accuracy"] = learner.evaluate(tune)["accuracy"]
    run.log_metric({"event": "final", **point})
    return point


def _branch_outs(run: RunDir, checkpoints: Path, pool: Pool, state: LoopState, val, test,
                 engine: str, device: str, tune, network) -> list[dict[str, Any]]:
    """Train every branch-out snapshot to the budget on the data it had; in parallel when asked."""
    done = run.sub("branches")
    todo, positions, points = [], [], []
    for position, k in enumerate(state.branches):
        target = done / f"branch-{k:03d}.json"
        if target.exists():  # finished before a kill
            points.append(json.loads(target.read_text()))
            continue
        learner = Learner.load(checkpoints / f"branch-{k:03d}", model=network(), device="cpu")
        data = pool.to_dataset(rounds=list(range(k)))
        todo.append({"round": k, "state": learner.state(), "model": learner.model, "settings": learner.settings,
                     "device": device,
                     "images": data.images, "labels": data.labels, "val": val, "test": test, "tune": tune})
        positions.append(position)  # the same position (and global seed) whether or not others were done
    if todo:
        # each branch-out is saved the moment it finishes, so a kill loses only the unfinished ones
        for _, result in get_executor(engine).imap(_train_branch, todo, positions=positions,
                                                   description="branch-outs"):
            atomic_write_json(done / f"branch-{result['round']:03d}.json", result)
            points.append(result)
    points.sort(key=lambda p: p["round"])
    for point in points:  # logged after all are known, so a resumed run logs the same lines
        run.log_metric({"event": "branch", **point})
    return points


def _train_branch(item: dict[str, Any]) -> dict[str, Any]:
    """A branch-out: the snapshot trains to the end of the budget with no data added."""
    learner = Learner(copy.deepcopy(item["model"]), item["settings"], device=item["device"])
    learner.load_state(*item["state"])
    started = time.perf_counter()
    step = learner.step
    while learner.step < learner.settings.steps:
        learner.train_on(item["images"], item["labels"])
    seconds = time.perf_counter() - started
    point = {"kind": "branch", "round": item["round"], "size": len(item["labels"]), "rounds": item["round"] - 1,
             "step": step, "final_step": learner.step, "val_accuracy": learner.evaluate(item["val"])["accuracy"], "train_seconds": seconds}
    if item["test"] is not None:
        point["test_accuracy"] = learner.evaluate(item["test"])["accuracy"]
    if item.get("tune") is not None:
        point["tune_accuracy"] = learner.evaluate(item["tune"])["accuracy"]
    return point


# ---------------------------------------------------------------- checkpoints

def _save_learner(learner: Learner, directory: Path) -> None:
    if directory.exists():  # a replay after a kill writes the identical snapshot again
        shutil.rmtree(directory)
    learner.save(directory)


def _checkpoint(run: RunDir, learner: Learner, state: LoopState) -> None:
    """The learner and the loop's counters, with the count of metric lines logged so far."""
    state.metric_lines = len(run.metrics())

    def write(folder: Path) -> None:
        learner.save(folder)
        atomic_write_json(folder / "loop.json", asdict(state))

    run.save_checkpoint(f"step-{state.step:08d}", write)


def _restore(run: RunDir, device: str, model):
    folder = run.latest_checkpoint()
    if folder is None:
        return None, None
    learner = Learner.load(folder, model=model, device=device)
    state = LoopState(**json.loads((folder / "loop.json").read_text()))
    run.trim_metrics(state.metric_lines)  # the replay logs the later events again
    return learner, state
