"""The three runs behind `practicum rate | score | select`, each in its own run directory.

rate   → RUN/rater.safetensors + rater.json (and checkpoints/ per epoch, the last state-epoch*/ for --resume)
score  → RUN/scores.parquet (id, label, score[, kind]) streamed from RUN/parts/*.parquet, one per shard
select → RUN/manifest.parquet (id, rank, score, label) + RUN/summary.json

Every run writes config.yaml, run.json and metrics.jsonl, resumes where it stopped (`resume=True`)
and refuses to overwrite a finished run unless told to (`overwrite=True`).
"""

from __future__ import annotations

import functools
import json
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from pydantic import Field, field_validator
from safetensors.torch import load_file, save_file

from practicum.config import Settings
from practicum.data import RunDir, ShardRows, atomic_write_json, atomic_write_with, load_fashion, load_source
from practicum.engine import get_executor, shard_seed
from practicum.engine.shards import Codec, run_shards
from practicum.errors import ConfigError, DataError, RunError
from practicum.limits import Count, SeedValue
from practicum.log import echo, logger
from practicum.runtime import resolve_device
from practicum.select import selectors as sel
from practicum.select.adaptive import adaptive_select, read_laws
from practicum.select.defects import inject_defects
from practicum.select.dynamics import heuristic_scores
from practicum.select.filters import intersect, threshold
from practicum.select.gates import gate_lines, rater_gates, sample_rows
from practicum.select.pool import MemoryPool, ParquetPool
from practicum.select.rater import (RaterSettings, RaterTrainer, check_rater_matches, even_batches, load_rater,
                                    rate_batch, rater_meta, rating_batches, save_rater, train_rater)
from practicum.select.skew import class_rank_warning
from practicum.select.webpool import ALWAYS_HARMFUL, build_web_pool, clean_holdout
from practicum.validate import data_input, model_input

SCORERS = ("rater", "entropy", "margin", "loss", "el2n", "grand", "forgetting", "aum", "prototypicality",
           "rho_loss", "random")


class DataSettings(Settings):
    """Where the pool comes from: an image source (`fashion-web`, `fashion`, `digits`, `folder:PATH`,
    `npz:PATH`) or embeddings. The default is the web-like Fashion pool (`practicum.select.webpool`)."""

    data: str = "fashion-web"
    embeddings: str | None = None  # parquet of the pool (id, label, embedding); overrides `data`
    val_embeddings: str | None = None  # parquet of the clean validation split (for `rate`)
    defects: bool = False  # inject the seeded web-like defects into the train split (demos)
    defect_seed: SeedValue = 0


class GateSettings(Settings):
    """The sanity gates `practicum rate` checks after training (`practicum.select.gates`)."""

    rows: int = Field(4000, ge=10)  # a seeded sample of the pool the gates rate
    seed_check: bool = False  # train a second rater (seed + 1) and require the two rankings to agree


class RateSettings(Settings):
    source: DataSettings = DataSettings()
    # the paper's proxy is a generator: the diffusion proxy (ε-MSE under common draws) by default
    rater: RaterSettings = RaterSettings(proxy="diffusion")
    gates: GateSettings = GateSettings()

    @field_validator("rater", mode="before")
    @classmethod
    def _diffusion_proxy_unless_named(cls, value: Any) -> Any:
        """Rater settings that do not name a proxy (a CLI run, a partial YAML) get the diffusion proxy too."""
        return {**value, "proxy": "diffusion"} if isinstance(value, dict) and "proxy" not in value else value


class ScoreSettings(Settings):
    source: DataSettings = DataSettings()
    scorer: str = "rater"
    rater: str | None = None  # rater run folder or .safetensors (scorer = rater)
    epoch: int | None = None  # a rater epoch checkpoint instead of the last one
    # instance: a_i alone, the same for any batch layout (default); group: the paper's p_i·g, batch-relative
    mode: Literal["group", "instance"] = "instance"
    split: Literal["train", "val", "test"] = "train"
    shard_size: Count = 4096
    batch_size: Count = 256
    seed: SeedValue = 0
    steps: Count = 600  # heuristic scorers: training steps of the learner they record
    observations: Count = 10
    device: str = "cpu"  # the rater's device: cpu, cuda, cuda:N, mps or auto
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"  # the rater's forward passes (autocast); ratings are float64


class SelectSettings(Settings):
    scores: str
    strategy: str = "shift-gsample"
    keep: float = 0.5  # fraction in (0, 1], or a count when > 1
    balance: bool | None = None  # None: within each class whenever the scores carry labels
    normalize: Literal["none", "class"] = "none"  # "class": rank within each class before selecting
    direction: Literal["higher_is_better", "higher_is_harder"] | None = None  # None: from the scores' summary.json
    min_score: float | None = None  # absolute thresholds on the scores, applied before the budget
    max_score: float | None = None
    filters: list[str] = []  # "SCORES:LOW:HIGH" (either bound may be empty): other scores, matched by id, ANDed
    prune_top: float | None = None
    shape: str = "figure"  # m2_std3 keeps the bottom of the ranking more often than random at 50 %
    mu: float | None = None
    sigma: float | None = None
    start: float = 0.3
    prune_hard: float = 0.1
    strata: int = 50
    seed: SeedValue = 0
    budget_samples: float | None = None  # strategy "adaptive": samples the training run will see
    pool_laws: str | None = None  # strategy "adaptive": JSON of fitted laws per quality bucket


def score_direction(scorer: str) -> str:
    """Which way a scorer's numbers point: the rater's ratings are better-higher, the rest harder-higher."""
    return "higher_is_better" if scorer == "rater" else "higher_is_harder"


# ---------------------------------------------------------------- pools

WEB_POOL_HOLDOUT = 3000  # clean rater-validation rows of `fashion-web` (6 % of the pool; the paper: 1M of 30M)


def load_split(source: DataSettings, split: str):
    """A Dataset for `split`; the train split gets the seeded defects when asked.

    `fashion-web` is the web-like Fashion pool (`practicum.select.webpool`): its train split is
    the graded pool (kinds attached), its val split a small clean stratified hold-out.
    """
    if source.data == "fashion-web":
        if split == "train":
            pool, info = build_web_pool(load_fashion("train"), seed=source.defect_seed)
            return pool, info["kind"]
        if split == "val":
            return clean_holdout(load_fashion("val"), WEB_POOL_HOLDOUT, seed=source.defect_seed), None
        return load_fashion(split), None
    dataset = load_source(source.data, split)
    kinds = None
    if source.defects and split == "train":
        dataset, kinds = inject_defects(dataset, seed=source.defect_seed)
    return dataset, kinds


def source_inputs(source: DataSettings) -> dict[str, str | Path | None]:
    """The files a pool is read from, for the run's inputs.json (None: built in, nothing to hash)."""
    return {"--data": data_input(source.data), "--embeddings": source.embeddings,
            "--val-embeddings": source.val_embeddings}


def scores_inputs(path: str | Path, flag: str = "--scores") -> dict[str, Path]:
    """A scores file and the summary.json beside it, which may say the scores' direction."""
    path = Path(path)
    return {flag: path, f"{flag} summary.json": path.parent / "summary.json"}


def open_pools(source: DataSettings):
    """(train pool, val pool) for rating: in-memory images or streamed embeddings."""
    if source.embeddings is not None:
        if source.val_embeddings is None:
            raise ConfigError("rating from embeddings needs the clean validation split's embeddings too",
                              "pass --val-embeddings PATH (same columns: id, label, embedding)")
        train, val = ParquetPool(source.embeddings), ParquetPool(source.val_embeddings)
        if train.dim != val.dim:
            raise DataError(f"train embeddings have {train.dim} dimensions but validation ones {val.dim}")
        classes = max(train.num_classes, val.num_classes)
        train.num_classes = val.num_classes = classes
        return train, val
    train, kinds = load_split(source, "train")
    val, _ = load_split(source, "val")
    if len(val) == 0:
        raise DataError("the validation split is empty", "the rater needs a clean validation split to train against")
    return MemoryPool.from_dataset(train, kinds), MemoryPool.from_dataset(val)


def harmful_kinds(source: DataSettings) -> tuple[str, ...]:
    """The injected kinds that are harmful outright (the gates want them rated low)."""
    if source.data == "fashion-web":
        return tuple(ALWAYS_HARMFUL)
    return ("wrong_label", "noise")  # `inject_defects`: noise rows are pure noise there


def gate_rows(pool, size: int, seed: int):
    """(x, y, kinds) of the gates' sample: seeded rows of a memory pool, the leading row groups of a parquet one."""
    if hasattr(pool, "groups"):
        xs, ys, total = [], [], 0
        for batch in pool.groups(range(pool.num_row_groups)):
            xs.append(batch.x)
            ys.append(batch.y)
            total += len(batch.y)
            if total >= size:
                break
        return torch.cat(xs)[:size], torch.cat(ys)[:size], None
    rows = sample_rows(len(pool), size, seed)
    return pool.x[rows], pool.y[rows], None if pool.kinds is None else np.asarray(pool.kinds)[rows]


def run_gates(config: RateSettings, trainer, train_pool, val_pool) -> dict:
    """Check and report the rater's gates (`practicum.select.gates`); a failure warns, it does not stop the run."""
    second = None
    if config.gates.seed_check:
        settings = config.rater.model_copy(update={"seed": config.rater.seed + 1})
        second = train_rater(settings, train_pool, val_pool)
    x, y, kinds = gate_rows(train_pool, config.gates.rows, config.rater.seed)
    gates = rater_gates(trainer, x, y, second=second, kinds=kinds, harmful_kinds=harmful_kinds(config.source),
                        seed=config.rater.seed)
    for line in gate_lines(gates):
        echo(line)  # on stdout with the summary, --quiet or not
    return gates


# ---------------------------------------------------------------- rate

def run_rate(config: RateSettings, out: str | Path, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train the rater; save a rater checkpoint every epoch and the full training state for --resume."""
    resolve_device(config.rater.device)  # fail before loading any data on a device this machine lacks
    train_pool, val_pool = open_pools(config.source)
    diffusion_model = config.rater.diffusion_model
    inputs = {**source_inputs(config.source),
              "--diffusion-model": None if diffusion_model in ("tiny", "builtin") else model_input(diffusion_model)}
    with RunDir.create(out, config.to_yaml(), seed=config.rater.seed, resume=resume, overwrite=overwrite,
                       inputs=inputs) as run:
        checkpoints = run.sub("checkpoints")
        trainer = RaterTrainer(config.rater, train_pool.input_shape,
                               max(train_pool.num_classes, val_pool.num_classes))
        start = 0
        latest = run.latest_checkpoint() if resume else None
        if latest is not None:
            epoch = int(latest.name.removeprefix("state-epoch"))
            trainer.load_state_tensors(load_file(str(latest / "state.safetensors")),
                                       json.loads((latest / "state.json").read_text()))
            start = epoch + 1
            logger.info("resuming the rater after epoch %d", epoch)
        # an epoch logged but killed before its state was saved is trained and logged again
        run.trim_metrics(lambda row: row.get("event") != "epoch" or row.get("epoch", 0) < start)

        def checkpoint(trainer: RaterTrainer, record: dict) -> None:
            epoch = record["epoch"]
            run.log_metric({"event": "epoch", **record})
            meta = rater_meta(trainer, epoch, record)
            save_rater(checkpoints / f"rater-epoch{epoch:03d}.safetensors", trainer.rater, meta)
            tensors, state = trainer.state_tensors()

            def write(folder: Path) -> None:  # the rater checkpoints stay; one training state is enough
                atomic_write_with(folder / "state.safetensors", lambda tmp: save_file(tensors, tmp))
                atomic_write_json(folder / "state.json", state)

            run.save_checkpoint(f"state-epoch{epoch:03d}", write)

        if start < config.rater.epochs:
            train_rater(config.rater, train_pool, val_pool, start_epoch=start, trainer=trainer, on_epoch=checkpoint)
        gates = run_gates(config, trainer, train_pool, val_pool)
        last = config.rater.epochs - 1
        final = checkpoints / f"rater-epoch{last:03d}.safetensors"
        for suffix in (".safetensors", ".json"):
            atomic_write_with(run.path / f"rater{suffix}",
                              lambda tmp, s=suffix: Path(tmp).write_bytes(final.with_suffix(s).read_bytes()))
        epochs = run.metrics("epoch")
        summary = {"epochs": config.rater.epochs, "update_rule": config.rater.update_rule,
                   "proxy": config.rater.proxy, "train_size": len(train_pool), "val_size": len(val_pool),
                   "last_epoch": epochs[-1] if epochs else None, "gates": gates}
        run.write_results(summary)
        run.finish()
    return summary


# ---------------------------------------------------------------- score

@functools.lru_cache(maxsize=4)
def _cached_rater(path: str, device: str = "cpu"):
    return load_rater(path)[0].to(resolve_device(device))


def score_shard(item: dict[str, Any]) -> dict[str, np.ndarray]:
    """Rate one shard (a row range of an image split, or row groups of an embeddings parquet).

    Top-level and self-contained, so the Ray engine can ship it; batch composition comes from a
    seeded shuffle within the shard, so the ratings do not depend on the engine.
    """
    rater = _cached_rater(item["rater"], item.get("device", "cpu"))
    if item["kind"] == "parquet":
        parts = list(ParquetPool(item["path"]).groups(item["groups"]))
        x = torch.cat([p.x for p in parts])
        y = torch.cat([p.y for p in parts])
        ids = np.concatenate([p.ids for p in parts])
        kinds = None
        order = np.random.default_rng(shard_seed(item["seed"], 0, item["shard"])).permutation(len(y))
        batches = even_batches(order, item["batch_size"])
    else:
        # the shard's rows only (`ShardRows`: a worker never loads the split), in the order of
        # whole batches of the split's one rating layout, so the ratings are the same for any
        # shard size or engine
        columns = item["rows"].read()
        x, y, ids, kinds = columns["images"], columns["labels"], columns["ids"], columns.get("kind")
        offsets = np.cumsum([0, *item["batch_sizes"]])
        batches = [np.arange(a, b) for a, b in zip(offsets[:-1], offsets[1:])]
    scores = np.empty(len(y))
    for idx in batches:
        scores[idx] = rate_batch(rater, x[idx], y[idx], item["mode"], dtype=item.get("dtype"))
    out = {"id": np.asarray(ids).astype(str), "label": y.numpy().astype(np.int64), "score": scores}
    if kinds is not None:
        out["kind"] = np.asarray(kinds).astype(str)
    return out


def _write_part(path: Path, value: dict[str, np.ndarray]) -> None:
    table = pa.table({k: pa.array(v) for k, v in value.items()})
    atomic_write_with(path, lambda tmp: pq.write_table(table, tmp))


def _part_codec():
    return Codec(".parquet", _write_part, lambda path: path)  # read back lazily: only the path


def _resolve_rater(config: ScoreSettings) -> Path:
    if config.rater is None:
        raise ConfigError("scoring with the rater needs a trained rater", "pass --rater RUN (a `practicum rate` run)")
    path = Path(config.rater)
    if config.epoch is not None:
        folder = path if path.is_dir() else path.parent
        path = folder / "checkpoints" / f"rater-epoch{config.epoch:03d}.safetensors"
        if not path.is_file():
            raise ConfigError(f"no checkpoint for epoch {config.epoch} at {path}", "see the run's checkpoints/ folder")
    elif path.is_dir():
        path = path / "rater.safetensors"
    elif path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    meta = load_rater(path)[1]  # fail early with a clear error
    if config.source.embeddings is not None:
        pool = ParquetPool(config.source.embeddings)
        check_rater_matches(meta, pool.input_shape, pool.num_classes, str(config.rater), config.source.embeddings)
    else:
        data = load_split(config.source, "val")[0]
        check_rater_matches(meta, data.image_shape, data.num_classes, str(config.rater), config.source.data)
    return path


def run_score(config: ScoreSettings, out: str | Path, *, engine: str = "local", resume: bool = False,
              overwrite: bool = False) -> dict:
    """Score a pool; the rater streams over shards, the heuristic scorers train what they need."""
    if config.scorer not in SCORERS:
        raise ConfigError(f"unknown scorer {config.scorer!r}", f"use one of {', '.join(SCORERS)}")
    if config.shard_size < 1 or config.batch_size < 1:
        raise ConfigError("shard_size and batch_size must be >= 1")
    if config.scorer != "rater" and (config.device != "cpu" or config.dtype != "fp32"):
        raise ConfigError(f"--device and --dtype apply to the rater; the {config.scorer} scorer trains its "
                          "learner on the CPU in fp32", "drop --device/--dtype, or use --scorer rater")
    resolve_device(config.device)  # fail before any work on a device this machine lacks
    if config.scorer == "rater":
        _resolve_rater(config)  # the rater is readable and fits the data, before the run folder exists
    started = time.time()
    inputs = {**source_inputs(config.source), "--rater": config.rater}
    with RunDir.create(out, config.to_yaml(), seed=config.seed, resume=resume, overwrite=overwrite,
                       inputs=inputs) as run:
        run.trim_metrics(lambda row: row.get("event") != "scored")  # a resume logs it again
        parts = run.sub("parts")
        if config.scorer == "rater":
            rows = _score_with_rater(config, parts, engine)
        else:
            rows = _score_with_heuristic(config, parts)
        scores_path = run.path / "scores.parquet"
        _concat_parts(sorted(parts.glob("part-*.parquet")), scores_path)
        seconds = time.time() - started
        summary = {"scorer": config.scorer, "examples": rows, "seconds": round(seconds, 3),
                   "examples_per_second": round(rows / max(seconds, 1e-9), 1), "scores": str(scores_path),
                   "direction": score_direction(config.scorer),
                   "direction_note": "higher = the rater wants it more (easiest at the top)"
                   if config.scorer == "rater" else "higher = harder / more informative"}
        run.log_metric({"event": "scored", **summary})
        run.write_results(summary)
        run.finish()
    return summary


def _score_with_rater(config: ScoreSettings, parts: Path, engine: str) -> int:
    items, total = score_items(config, str(_resolve_rater(config).resolve()))
    executor = get_executor(engine)
    try:
        run_shards(executor, score_shard, items, parts, codec=_part_codec(),
                   name_of=lambda item: f"part-{item['shard']:06d}", description="scoring shards")
    finally:
        executor.close()
    return total


def score_items(config: ScoreSettings, rater_path: str) -> tuple[list[dict[str, Any]], int]:
    """The shards of a rater pass (one `score_shard` item each) and the pool size.

    An image split is loaded once, here; each item holds its rows as `ShardRows`, which a Ray
    worker receives alone (not the split). Embeddings stay on disk: an item names its row groups.
    """
    common = {"rater": rater_path, "mode": config.mode, "seed": config.seed, "batch_size": config.batch_size,
              "device": config.device, "dtype": config.dtype}
    items: list[dict[str, Any]] = []
    if config.source.embeddings is not None:
        pool = ParquetPool(config.source.embeddings)
        groups, group, filled = [], [], 0
        for g, n in enumerate(pool.row_group_rows()):
            group.append(g)
            filled += n
            if filled >= config.shard_size:
                groups.append(group)
                group, filled = [], 0
        if group:
            groups.append(group)
        items = [{**common, "kind": "parquet", "path": str(Path(config.source.embeddings).resolve()), "groups": gs,
                  "shard": i} for i, gs in enumerate(groups)]
        total = len(pool)
    else:
        dataset, kinds = load_split(config.source, config.split)
        total = len(dataset)
        if total == 0:
            raise DataError(f"the {config.split} split of {config.source.data} is empty")
        columns = {"images": dataset.images, "labels": dataset.labels, "ids": np.asarray(dataset.ids)}
        if kinds is not None:
            columns["kind"] = np.asarray(kinds)
        layout = rating_batches(total, config.batch_size, config.seed)
        per_shard = max(1, config.shard_size // config.batch_size)  # shards hold whole rating batches
        items = []
        for i, s in enumerate(range(0, len(layout), per_shard)):
            batches = layout[s:s + per_shard]
            items.append({**common, "kind": "images", "rows": ShardRows(columns, np.concatenate(batches)),
                          "batch_sizes": [len(b) for b in batches], "shard": i})
    return items, total


def _score_with_heuristic(config: ScoreSettings, parts: Path) -> int:
    if config.source.embeddings is not None:
        raise ConfigError(f"the {config.scorer} scorer trains a classifier on images",
                          "use --data, or score embeddings with --scorer rater")
    part = parts / "part-000000.parquet"
    if part.exists():  # scored before an interruption (--resume): the same settings, so the same scores
        return pq.ParquetFile(part).metadata.num_rows
    dataset, kinds = load_split(config.source, config.split)
    holdout = load_split(config.source, "val")[0] if config.scorer == "rho_loss" else None
    scores = heuristic_scores(config.scorer, dataset, holdout=holdout, steps=config.steps,
                              observations=config.observations, seed=config.seed)
    value = {"id": dataset.ids.astype(str), "label": dataset.labels.numpy(), "score": scores}
    if kinds is not None:
        value["kind"] = kinds
    _write_part(part, value)
    return len(dataset)


def _concat_parts(paths: list[Path], target: Path) -> None:
    """Stream the shard files into one parquet (one part in memory at a time)."""
    if not paths:
        raise RunError("no scored shards to combine", "rerun with --overwrite")

    def write(tmp: str) -> None:
        schema = pq.read_schema(paths[0])
        with pq.ParquetWriter(tmp, schema) as writer:
            for path in paths:
                writer.write_table(pq.read_table(path, schema=schema))

    atomic_write_with(target, write)


# ---------------------------------------------------------------- select

def read_scores(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if path.is_dir():
        path = path / "scores.parquet"
    if not path.is_file():
        raise DataError(f"no scores at {path}", "give the scores.parquet of `practicum score` (or its run folder)")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"cannot read {path} as parquet: {exc}".splitlines()[0]) from None
    for column in ("id", "score"):
        if column not in table.column_names:
            raise DataError(f"{path} has no {column!r} column (has {', '.join(table.column_names)})",
                            "scores need columns id and score (label optional)")
    try:
        columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    except Exception as exc:  # noqa: BLE001 - pyarrow: e.g. a text column that is not UTF-8
        raise DataError(f"cannot read the columns of {path}: {str(exc).splitlines()[0][:200]}") from None
    if any(values.ndim != 1 for values in columns.values()):
        raise DataError(f"{path}: every column must hold one value per row", "write id, score and label as scalars")
    columns["id"] = columns["id"].astype(str)
    try:
        columns["score"] = columns["score"].astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: the score column is not numeric") from None
    if len(set(columns["id"].tolist())) != len(columns["id"]):
        raise DataError(f"{path}: ids are not unique", "score each example once")
    if not np.isfinite(columns["score"]).all():
        raise DataError(f"{path}: {int((~np.isfinite(columns['score'])).sum())} scores are NaN or infinite",
                        "drop or rescore those rows")
    if "label" in columns:
        columns["label"] = _class_labels(path, columns["label"])
    summary = path.parent / "summary.json"  # `practicum score` writes the scores' direction there
    if summary.is_file():
        try:
            direction = json.loads(summary.read_bytes()).get("direction")
        except (ValueError, AttributeError):  # not JSON, not UTF-8, or not an object: no direction known
            direction = None
        if direction in ("higher_is_better", "higher_is_harder"):
            columns["__direction__"] = direction
    return columns


MAX_CLASSES = 1_000_000  # a label is a class index; beyond this it is an id or a corrupt value


def _class_labels(path: Path, labels: np.ndarray) -> np.ndarray:
    """The label column as class indices 0..MAX_CLASSES-1 (int64), or one error naming the file."""
    try:
        values = labels.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: the label column is not numeric", "labels are class indices 0..K-1") from None
    bad = ~np.isfinite(values) | (values < 0) | (values >= MAX_CLASSES) | (values != np.floor(values))
    if bad.any():
        first = labels[np.flatnonzero(bad)[0]]
        raise DataError(f"{path}: {int(bad.sum())} labels are not class indices 0..{MAX_CLASSES - 1} (e.g. {first})",
                        "labels are class indices 0..K-1")
    return values.astype(np.int64)


def resolve_direction(config: SelectSettings, columns: dict) -> str | None:
    """The scores' direction: --direction if given, else the one the scores' summary.json wrote."""
    written = columns.get("__direction__")
    if config.direction is not None:
        if written is not None and written != config.direction:
            logger.warning("--direction %s overrides the scores file's %s", config.direction, written)
        return config.direction
    return written


def run_select(config: SelectSettings, out: str | Path, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Pick the budget from a scores file; write manifest.parquet and summary.json."""
    columns = read_scores(config.scores)
    scores = columns["score"]
    direction = resolve_direction(config, columns)
    if direction is None and config.strategy in ("ccs", "adaptive"):
        raise ConfigError(f"the {config.strategy} strategy must know which end of the scores is hard, and the "
                          "scores file does not say", "pass --direction higher_is_better (ratings) or "
                          "higher_is_harder (hardness scores)")
    labels = columns["label"].astype(np.int64) if "label" in columns else None
    balance = (labels is not None) if config.balance is None else config.balance
    raw_scores = scores
    if config.normalize == "class":
        if labels is None:
            raise ConfigError("per-class normalisation needs labels", "the scores file must have a label column")
        scores = sel.normalise_within_class(scores, labels)
    keep: float | int = int(config.keep) if config.keep > 1 else float(config.keep)
    if config.keep > 1 and config.keep != int(config.keep):
        raise ConfigError(f"keep {config.keep} is neither a fraction in (0, 1] nor a whole count")
    inputs = {**scores_inputs(config.scores), "--pool-laws": config.pool_laws}
    for spec in config.filters:
        inputs.update(scores_inputs(spec.rsplit(":", 2)[0], flag=f"--filter {spec}"))
    with RunDir.create(out, config.to_yaml(), seed=config.seed, resume=resume, overwrite=overwrite,
                       inputs=inputs) as run:
        existing = run.read_results() if resume else None
        if existing is not None and (run.path / "manifest.parquet").exists():
            run.finish()
            return existing
        run.trim_metrics(lambda row: row.get("event") != "selected")  # killed before summary.json: logged again
        adaptive_info = None
        notes: list[str] = []
        mask = _filter_mask(config, columns, scores)
        if mask is not None and config.strategy == "adaptive":
            raise ConfigError("the adaptive strategy picks whole quality buckets; it does not combine with filters",
                              "drop --min-score/--max-score/--filter or use another strategy")
        if config.strategy == "adaptive":
            chosen, adaptive_info = _adaptive(config, scores, direction)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", sel.SelectionWarning)
                survivors = np.arange(len(scores)) if mask is None else np.flatnonzero(mask)
                if len(survivors) == 0:
                    raise DataError("no example passes the thresholds and filters", "loosen them")
                chosen = survivors[sel.select(
                    config.strategy, scores[survivors], keep, labels=None if labels is None else labels[survivors],
                    balance=balance, seed=config.seed, prune_top=config.prune_top, shape=config.shape,
                    mu=config.mu, sigma=config.sigma, start=config.start, prune_hard=config.prune_hard,
                    strata=config.strata, direction=direction or "higher_is_harder")]
            notes.extend(str(w.message) for w in caught if issubclass(w.category, sel.SelectionWarning))
        ranking = sel.rank_descending(scores)
        rank = np.empty(len(scores), dtype=np.int64)
        rank[ranking] = np.arange(len(scores))
        manifest = {"id": columns["id"][chosen], "rank": rank[chosen], "score": raw_scores[chosen]}
        for extra in ("label", "kind"):
            if extra in columns:
                manifest[extra] = columns[extra][chosen]
        table = pa.table({k: pa.array(v) for k, v in manifest.items()})
        atomic_write_with(run.path / "manifest.parquet", lambda tmp: pq.write_table(table, tmp))
        percentile = rank[chosen] / max(1, len(scores) - 1)
        summary: dict[str, Any] = {
            "strategy": config.strategy, "keep": config.keep, "pool": len(scores), "selected": len(chosen),
            "passed_filters": len(scores) if mask is None else int(mask.sum()),
            "balance": balance, "normalize": config.normalize, "direction": direction, "rank_percentile": {q: float(np.quantile(percentile, q / 100))
                                                           for q in (5, 25, 50, 75, 95)} if len(chosen) else {},
            "score_mean": {"pool": float(raw_scores.mean()), "selected": float(raw_scores[chosen].mean())},
            # fraction of each decile of the descending ranking kept (random keeps ~keep everywhere)
            # (within-class ranking when the selection was class-balanced, as the selector saw it)
            "inclusion_by_decile": [round(v, 4) for v in sel.inclusion_by_decile(
                chosen, len(scores), sel.rank_descending(sel.normalise_within_class(scores, labels))
                if balance and labels is not None else ranking)],
        }
        bottom = sel.bottom_warning(summary["inclusion_by_decile"], len(chosen) / len(scores))
        if bottom is not None and config.strategy not in ("bottom-k", "random") and not any("bottom 30" in n for n in notes):
            notes.append(bottom)
        if labels is not None:
            summary["class_rank_share"] = round(sel.class_rank_share(raw_scores, labels), 4)
            by_class = class_rank_warning(summary["class_rank_share"], balanced=bool(balance))
            notes.extend([by_class] if by_class else [])
        for note in notes:
            logger.warning("%s", note)
        summary["warnings"] = notes
        if adaptive_info is not None:
            summary["adaptive"] = adaptive_info
        if labels is not None:
            summary["class_counts"] = np.bincount(labels[chosen], minlength=labels.max() + 1).tolist()
        if "kind" in columns:
            kinds = columns["kind"].astype(str)
            summary["kind_counts"] = {k: {"pool": int((kinds == k).sum()), "selected": int((kinds[chosen] == k).sum())}
                                      for k in sorted(set(kinds.tolist()))}
        run.log_metric({"event": "selected", "selected": len(chosen)})
        run.write_results(summary)  # last: with the manifest, it marks the run done
        run.finish()
    return summary


def _filter_mask(config: SelectSettings, columns: dict, scores: np.ndarray) -> np.ndarray | None:
    """The intersection of the absolute thresholds and every --filter (None when there are none)."""
    masks = []
    if config.min_score is not None or config.max_score is not None:
        masks.append(threshold(scores, low=config.min_score, high=config.max_score))
    for spec in config.filters:
        parts = spec.rsplit(":", 2)
        if len(parts) != 3 or not (parts[1] or parts[2]):
            raise ConfigError(f"filter {spec!r} is not SCORES:LOW:HIGH", "e.g. --filter runs/clip:0.3: keeps >= 0.3")
        try:
            low, high = (float(v) if v else None for v in parts[1:])
        except ValueError:
            raise ConfigError(f"filter {spec!r}: the bounds must be numbers") from None
        other = read_scores(parts[0])
        by_id = dict(zip(other["id"].tolist(), other["score"].tolist()))
        values = np.array([by_id.get(i, np.nan) for i in columns["id"].tolist()])  # unscored there: dropped
        masks.append(threshold(values, low=low, high=high))
    return intersect(*masks) if masks else None


def _adaptive(config: SelectSettings, scores: np.ndarray, direction: str) -> tuple[np.ndarray, dict]:
    """The compute-adaptive choice: `practicum.select.adaptive` over the bucket laws in `pool_laws`."""
    if config.budget_samples is None or config.pool_laws is None:
        raise ConfigError("the adaptive strategy needs a training budget and fitted bucket laws",
                          "pass --budget-samples N (steps x batch) and --pool-laws laws.json")
    laws, extra = read_laws(config.pool_laws)
    return adaptive_select(scores, config.budget_samples, laws, direction=direction, **extra)


def print_summary(summary: dict) -> None:
    for key, value in summary.items():
        echo(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


__all__ = ["DataSettings", "GateSettings", "RateSettings", "SCORERS", "ScoreSettings", "SelectSettings", "load_split", "open_pools",
           "print_summary", "read_scores", "run_rate", "run_score", "run_select", "score_items", "score_shard"]
