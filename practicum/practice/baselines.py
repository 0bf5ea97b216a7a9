"""Generate-then-prune (DP paper §5.3), in the same framework and budget as the DP loop.

    D <- N vanilla samples; train until `prune_at` x I iterations (the paper: 17k of 50k)
    C <- ratio x P fresh vanilla candidates (the paper: up to about 18x)
    keep the P candidates the current learner finds hardest (top entropy; per class by default)
    D <- D + kept; train to the end of the budget I; report test accuracy at |D| = N + P

The kept set is added to the start set (one pruned "round"), so the result sits at the same
size as one round of DP and the two can be compared at equal data and equal iterations; the
cost difference is in generation: ratio x P vanilla images against P guided ones. (Whether the
paper's pruned set replaced the start set is not stated; `replace=True` does that instead.)

Static and dynamic-vanilla baselines need no code of their own: they are `practice()` with
`max_rounds=0` and with `omega=0`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from pydantic import Field

from practicum.data.pool import Pool
from practicum.data.runstore import RunDir
from practicum.engine import shard_seed
from practicum.learn import Learner, build_model
from practicum.log import progress_bar
from practicum.practice.generators import Generator, Request, balanced_labels
from practicum.practice.loop import final_point
from practicum.practice.settings import PracticeSettings


class PruneSettings(PracticeSettings):
    ratio: float = Field(4.0, ge=1.0, description="candidates generated per kept sample [paper: up to ~18]")
    prune_at: float = Field(0.34, gt=0, lt=1, description="fraction of the budget trained before pruning "
                            "[paper: 17k of 50k]")
    class_balanced: bool = Field(True, description="keep the top P/K per class (else the global top P)")
    replace: bool = Field(False, description="train on the kept set only after pruning (else start set + kept)")


def select_hardest(entropy: np.ndarray, labels: np.ndarray, keep: int, num_classes: int,
                   class_balanced: bool = True) -> np.ndarray:
    """Indices of the `keep` highest-entropy candidates (ties broken by position), sorted."""
    order = np.lexsort((np.arange(len(entropy)), -entropy))  # descending entropy, stable
    if not class_balanced:
        return np.sort(order[:keep])
    quota = np.full(num_classes, keep // num_classes)
    quota[: keep % num_classes] += 1
    chosen, taken = [], np.zeros(num_classes, dtype=int)
    for i in order:
        c = labels[i]
        if taken[c] < quota[c]:
            chosen.append(i)
            taken[c] += 1
    return np.sort(np.array(chosen, dtype=int))


def generate_then_prune(run: RunDir, settings: PruneSettings, generator: Generator, val, test=None, *,
                        tune=None, model=None, description: str = "generate-then-prune") -> dict[str, Any]:
    """Run the baseline in `run` (a finished run returns its stored result)."""
    s = settings
    done = run.read_results()
    if done is not None:
        return done
    pool, candidates = Pool(run.sub("pool")), Pool(run.sub("candidates"))
    num_classes = val.num_classes
    net = model if model is not None else build_model(s.arch, num_classes, val.image_shape, s.width, seed=s.seed)
    learner = Learner(net, s.train, seed=s.seed, device=s.device)
    seconds = {"generate": 0.0, "train": 0.0, "eval": 0.0, "score": 0.0}

    def generate(target: Pool, name: str, start: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not target.has_shard(name):  # resumed runs reuse what was generated
            labels = balanced_labels(start, count, num_classes)
            out = generator(Request(labels=labels, omega=0.0, guide=None, seed=seed, start=start))
            target.append(name, out.images, labels, seeds=seed, settings={"gen_seconds": float(out.seconds)})
        index = target.index()
        seconds["generate"] += float(index.loc[index["shard"] == name, "gen_seconds"].iloc[0])
        return target.images([name]), torch.from_numpy(index.loc[index["shard"] == name, "label"].to_numpy().copy())

    # An unfinished run starts training again from step 0 (the pools are reused): drop the events
    # it logged before the interruption, so metrics.jsonl holds one copy of each.
    run.trim_metrics(0)
    images, labels = generate(pool, "round-000", 0, s.initial_size, shard_seed(s.seed, 0))
    prune_step = int(round(s.prune_at * s.iterations))
    seen = 0
    with progress_bar(description, s.iterations) as advance:
        while learner.step < s.iterations:
            if learner.step == prune_step:
                images, labels = _prune(run, s, learner, generate, candidates, pool, images, labels, seconds,
                                        num_classes)
            started = time.perf_counter()
            loss = learner.train_on(images, labels)
            seconds["train"] += time.perf_counter() - started
            seen += s.train.batch_size
            advance()
            if seen >= s.tau:
                started = time.perf_counter()
                result = learner.evaluate(val)
                seconds["eval"] += time.perf_counter() - started
                run.log_metric({"event": "eval", "step": learner.step, "pool_size": len(labels), "train_loss": loss,
                                "val_accuracy": result["accuracy"], "val_loss": result["loss"]})
                seen = 0
    point = final_point(run, learner, val, test, tune, size=len(labels), rounds=1, step=learner.step)
    summary = {"settings": s.model_dump(mode="json"), "points": [point], "rounds": 1, "pool_size": len(labels),
               "steps": learner.step, "seconds": seconds}
    run.write_results(summary)
    return summary


def _prune(run, s: PruneSettings, learner: Learner, generate, candidates: Pool, pool: Pool, images, labels,
           seconds, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ratio x P vanilla candidates, keep the P hardest under the current learner."""
    count = int(math.ceil(s.ratio * s.add_size / num_classes) * num_classes)
    cand_images, cand_labels = generate(candidates, "candidates", s.initial_size, count, shard_seed(s.seed, 1))
    started = time.perf_counter()
    entropy = learner.entropy(cand_images).numpy()
    seconds["score"] += time.perf_counter() - started
    keep = select_hardest(entropy, cand_labels.numpy(), s.add_size, num_classes, s.class_balanced)
    pool.append("round-001", cand_images[keep], cand_labels[keep], round_index=1,
                values={"entropy": entropy[keep]}, settings={"gen_seconds": 0.0})
    run.log_metric({"event": "prune", "step": learner.step, "candidates": count, "kept": len(keep),
                    "ratio": count / s.add_size, "candidate_entropy_mean": float(entropy.mean()),
                    "kept_entropy_mean": float(entropy[keep].mean()), "kept_entropy_min": float(entropy[keep].min())})
    if s.replace:
        return cand_images[keep], cand_labels[keep]
    return torch.cat([images, cand_images[keep]]), torch.cat([labels, cand_labels[keep]])

