"""The curation runs behind `practicum dedup | label-issues | cover`, each in its own run directory.

dedup        → RUN/scores.parquet (id, label, score = 1 kept / 0 near-duplicate[, kind]) + summary.json
label-issues → RUN/scores.parquet (id, label, score = 1 label looks right / 0 issue, quality[, kind]) + summary.json
cover        → RUN/manifest.parquet (id, label[, kind]) + summary.json

The two score files point "higher is better", so `practicum select --filter RUN:1:` keeps what passed, and
several such filters intersect with absolute thresholds on the main scores (`--min-score`, `--max-score`).
Features: an embeddings parquet when given (`--embeddings`), else the images' pixels, average-pooled to
at most 14×14 (enough for hashing-free geometry on the built-in sets; bring embeddings for real pools).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch.nn.functional as F
from pydantic import Field

from practicum.config import Settings
from practicum.data import RunDir, atomic_write_with
from practicum.errors import ConfigError, DataError
from practicum.limits import SeedValue
from practicum.log import logger, progress
from practicum.select import coverage
from practicum.select.dedup import hash_dedup, perceptual_hash, semdedup
from practicum.select.label_issues import find_label_issues, label_quality, out_of_sample_probs
from practicum.select.pipeline import DataSettings, load_split, read_scores, scores_inputs, source_inputs
from practicum.select.pool import ParquetPool
from practicum.select.selectors import budget, class_quotas
from practicum.select.skew import kind_warning, outlier_warning, removed_warning

MAX_HASH_DISTANCE = 32  # of a 64-bit perceptual hash: two random images differ in about 32


class DedupSettings(Settings):
    source: DataSettings = DataSettings()
    split: Literal["train", "val", "test"] = "train"
    method: Literal["phash", "semdedup"] = "phash"
    max_distance: int = 4  # phash: Hamming bits within which two images are one
    eps: float = 0.05  # semdedup: cosine distance within which two members of a cluster are one
    clusters: int = 10  # semdedup: k-means clusters
    priority: str | None = None  # a scores file (by id): keep the highest-scored member of each group
    limit: int | None = Field(None, ge=1, description="use a fixed random subset of this many pool examples")
    seed: SeedValue = 0


class LabelIssueSettings(Settings):
    source: DataSettings = DataSettings()
    split: Literal["train", "val", "test"] = "train"
    folds: int = 5  # out-of-sample probabilities: K-fold logistic regression on the features
    limit: int | None = Field(None, ge=1, description="use a fixed random subset of this many pool examples")
    seed: SeedValue = 0


class CoverSettings(Settings):
    source: DataSettings = DataSettings()
    split: Literal["train", "val", "test"] = "train"
    method: Literal["k-center", "herding", "facility-location"] = "k-center"
    keep: float = 0.2  # fraction in (0, 1], or a count when > 1
    balance: bool = True  # select within each class
    limit: int | None = Field(None, ge=1, description="use a fixed random subset of this many pool examples")
    seed: SeedValue = 0


def load_features(source: DataSettings, split: str = "train", limit: int | None = None) -> dict:
    """{"ids", "labels", "kinds" (or None), "images" (or None), "features" (N, D)} for a pool, or for a
    fixed random subset of `limit` of its examples (the same rows every time)."""
    data = _all_features(source, split)
    if limit is None or limit >= len(data["ids"]):
        return data
    rows = np.sort(np.random.default_rng(12345).permutation(len(data["ids"]))[:limit])
    return {k: None if v is None else v[rows] for k, v in data.items()}


def _all_features(source: DataSettings, split: str) -> dict:
    if source.embeddings is not None:
        pool = ParquetPool(source.embeddings)
        batches = list(pool.groups(list(range(pool.num_row_groups))))
        return {"ids": np.concatenate([b.ids for b in batches]).astype(str),
                "labels": np.concatenate([b.y.numpy() for b in batches]).astype(np.int64),
                "kinds": None, "images": None,
                "features": np.concatenate([b.x.numpy() for b in batches]).astype(np.float64)}
    dataset, kinds = load_split(source, split)
    if len(dataset) == 0:
        raise DataError(f"the {split} split of {source.data} is empty")
    images = dataset.images.float()
    factor = max(1, images.shape[-1] // 14)
    small = F.avg_pool2d(images, factor) if factor > 1 else images
    return {"ids": np.asarray(dataset.ids).astype(str), "labels": dataset.labels.numpy().astype(np.int64),
            "kinds": None if kinds is None else np.asarray(kinds).astype(str), "images": images.numpy(),
            "features": small.reshape(len(dataset), -1).numpy().astype(np.float64)}


def _write_table(path, columns: dict) -> None:
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    atomic_write_with(path, lambda tmp: pq.write_table(table, tmp))


def _warn(notes: list) -> list[str]:
    """Log the messages that are not None; return them for the summary."""
    notes = [n for n in notes if n]
    for note in notes:
        logger.warning("%s", note)
    return notes


def _by_kind(kinds, flag) -> dict | None:
    """{kind: {"pool": n, "flagged": m}} when the pool knows its kinds."""
    if kinds is None:
        return None
    return {k: {"pool": int((kinds == k).sum()), "flagged": int(flag[kinds == k].sum())} for k in sorted(set(kinds))}


def _start(config: Settings, out, resume: bool, overwrite: bool) -> RunDir:
    inputs = source_inputs(config.source)
    if getattr(config, "priority", None) is not None:
        inputs.update(scores_inputs(config.priority, flag="--priority"))
    return RunDir.create(out, config.to_yaml(), seed=getattr(config, "seed", None), resume=resume,
                         overwrite=overwrite, inputs=inputs)


def _finished(run: RunDir, resume: bool, output: str) -> dict | None:
    """On --resume of a run that already wrote `output`, its summary (the run is marked finished again)."""
    if not (resume and (run.path / output).exists()):
        return None
    summary = run.read_results()
    if summary is not None:
        run.finish()
    return summary


def _score_columns(data: dict, score: np.ndarray, **extra) -> dict:
    """The scores.parquet columns of a pass over `data`: id, label, score, any extras, and kind when known."""
    columns = {"id": data["ids"], "label": data["labels"], "score": score, **extra}
    if data["kinds"] is not None:
        columns["kind"] = data["kinds"]
    return columns


def run_dedup(config: DedupSettings, out, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Near-duplicate removal: a keep mask written as scores (1 kept, 0 duplicate)."""
    if config.method == "phash" and config.source.embeddings is not None:
        raise ConfigError("perceptual hashing needs images, not embeddings",
                          "use --method semdedup with --embeddings, or --data for images")
    if config.max_distance < 0 or config.clusters < 1:
        raise ConfigError("max_distance must be >= 0 and clusters >= 1")
    if config.max_distance > MAX_HASH_DISTANCE:
        raise ConfigError(f"--max-distance {config.max_distance} of 64 hash bits: beyond {MAX_HASH_DISTANCE} "
                          "(half the bits) unrelated images count as duplicates", "give 0..32 (default 4)")
    with _start(config, out, resume, overwrite) as run:
        existing = _finished(run, resume, "scores.parquet")
        if existing is not None:
            return existing
        data = load_features(config.source, config.split, config.limit)
        priority = None
        if config.priority is not None:
            other = read_scores(config.priority)
            by_id = dict(zip(other["id"].tolist(), other["score"].tolist()))
            priority = np.array([by_id.get(i, -np.inf) for i in data["ids"].tolist()])
        if config.method == "phash":
            keep = hash_dedup(perceptual_hash(data["images"]), max_distance=config.max_distance, priority=priority)
        else:
            keep = semdedup(data["features"], eps=config.eps, n_clusters=config.clusters, seed=config.seed)
        _write_table(run.path / "scores.parquet", _score_columns(data, keep.astype(np.float64)))
        summary = {"method": config.method, "examples": len(keep), "kept": int(keep.sum()),
                   "removed": int((~keep).sum()), "direction": "higher_is_better",
                   "direction_note": "score 1 = kept, 0 = a near-duplicate of a kept example; "
                                     "filter with practicum select --filter RUN:1:",
                   "removed_by_kind": _by_kind(data["kinds"], ~keep),
                   "warnings": _warn([removed_warning(int((~keep).sum()), len(keep), config.method)])}
        run.write_results(summary)
        run.finish()
    return summary


def run_label_issues(config: LabelIssueSettings, out, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Confident learning on out-of-sample probabilities: scores 1 (label looks right) / 0 (issue)."""
    if config.folds < 2:
        raise ConfigError(f"out-of-sample probabilities need >= 2 folds, not {config.folds}", "pass --folds 5")
    with _start(config, out, resume, overwrite) as run:
        existing = _finished(run, resume, "scores.parquet")
        if existing is not None:
            return existing
        data = load_features(config.source, config.split, config.limit)
        labels = data["labels"]
        counts = np.bincount(labels)
        if len(counts) < 2 or counts.min() < config.folds:  # a missing label would shift the probability columns
            raise DataError(f"confident learning needs labels 0..C-1 (C >= 2), each with at least {config.folds} "
                            f"examples (one per fold); got counts {counts.tolist()}", "lower --folds or give more data")
        probs = out_of_sample_probs(data["features"], labels, folds=config.folds, seed=config.seed)
        issues = find_label_issues(probs, labels)
        _write_table(run.path / "scores.parquet", _score_columns(data, (~issues).astype(np.float64),
                                                                 quality=label_quality(probs, labels)))
        summary = {"examples": len(labels), "issues": int(issues.sum()), "folds": config.folds,
                   "out_of_sample_accuracy": float((probs.argmax(1) == labels).mean()),
                   "direction": "higher_is_better",
                   "direction_note": "score 1 = the label looks right, 0 = confidently another class; the column "
                                     "quality is the out-of-sample self-confidence p(given label)",
                   "issues_by_kind": _by_kind(data["kinds"], issues)}
        run.write_results(summary)
        run.finish()
    return summary


def run_cover(config: CoverSettings, out, *, resume: bool = False, overwrite: bool = False) -> dict:
    """A coverage selection (k-center greedy, herding or facility location), per class by default."""
    if config.keep <= 0 or (config.keep > 1 and config.keep != int(config.keep)):
        raise ConfigError(f"keep {config.keep} is neither a fraction in (0, 1] nor a whole count")
    keep: float | int = int(config.keep) if config.keep > 1 else float(config.keep)
    pick = {"k-center": lambda x, k: coverage.k_center_greedy(x, k, seed=config.seed),
            "herding": coverage.herding, "facility-location": coverage.facility_location}[config.method]
    with _start(config, out, resume, overwrite) as run:
        existing = _finished(run, resume, "manifest.parquet")
        if existing is not None:
            return existing
        data = load_features(config.source, config.split, config.limit)
        x, labels = data["features"], data["labels"]
        if config.balance:
            classes, counts = class_quotas(labels, budget(len(x), keep))  # as the class-balanced selectors
            groups = [np.flatnonzero(labels == c) for c in classes]
            chosen = np.sort(np.concatenate([g[pick(x[g], int(k))] for g, k in
                                             progress(list(zip(groups, counts)), f"{config.method} per class")
                                             if k > 0]))
        else:
            chosen = pick(x, keep)
        columns = {"id": data["ids"][chosen], "label": labels[chosen]}
        if data["kinds"] is not None:
            columns["kind"] = data["kinds"][chosen]
        _write_table(run.path / "manifest.parquet", columns)
        summary = {"method": config.method, "keep": config.keep, "pool": len(x), "selected": len(chosen),
                   "balance": config.balance, "class_counts": np.bincount(labels[chosen], minlength=labels.max() + 1).tolist()}
        notes = [outlier_warning(x, labels, chosen, config.method)]
        if data["kinds"] is not None:
            kinds = data["kinds"]
            summary["kind_counts"] = {k: {"pool": int((kinds == k).sum()), "selected": int((kinds[chosen] == k).sum())}
                                      for k in sorted(set(kinds))}
            notes.append(kind_warning(kinds, chosen))
        summary["warnings"] = _warn(notes)
        run.write_results(summary)
        run.finish()
    return summary


__all__ = ["CoverSettings", "DedupSettings", "LabelIssueSettings", "load_features", "run_cover", "run_dedup",
           "run_label_issues"]
