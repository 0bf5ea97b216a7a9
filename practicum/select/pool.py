"""Where the rater's examples come from: an in-memory dataset, or embeddings streamed from parquet.

Both give batches `Batch(x, y, ids)`; the rater and the scorer never hold more than a batch (or,
for parquet, one row group) of a pool, so a 30M-example pool need not fit in memory.

Embeddings parquet layout: columns `id` (string, unique), `label` (integer class) and
`embedding` (a list / fixed-size list of floats, one length for every row). Write row groups of
a few thousand rows; they are the unit of streaming and of sharding for `practicum score`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from practicum.data import atomic_write_with
from practicum.errors import DataError

EMBEDDING_COLUMNS = ("id", "label", "embedding")


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    ids: np.ndarray


class MemoryPool:
    """A `practicum.data.Dataset` (or any x, y, ids arrays) held in memory."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, ids: np.ndarray, num_classes: int,
                 kinds: np.ndarray | None = None):
        self.x, self.y, self.ids, self.num_classes = x, y, np.asarray(ids), num_classes
        self.kinds = kinds  # injected defect kind per row, when known (the rate gates report them)

    @classmethod
    def from_dataset(cls, dataset, kinds: np.ndarray | None = None) -> "MemoryPool":
        return cls(dataset.images, dataset.labels, dataset.ids, dataset.num_classes, kinds)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def shuffled_batches(self, batch_size: int, seed: int) -> Iterator[Batch]:
        """Endless batches: a fresh seeded permutation each pass (full batches only, if possible)."""
        rng = np.random.default_rng(seed)
        while True:
            order = rng.permutation(len(self))
            stop = len(order) - len(order) % batch_size if len(order) >= batch_size else len(order)
            for start in range(0, stop, batch_size):
                idx = order[start:start + batch_size]
                yield Batch(self.x[idx], self.y[idx], self.ids[idx])


class ParquetPool:
    """Embeddings in a parquet file, read one row group at a time."""

    def __init__(self, path: str | Path, num_classes: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"embeddings file {self.path} does not exist", "give a parquet file with id, label, embedding")
        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(f"cannot read {self.path} as parquet: {exc}".splitlines()[0]) from None
        names = self._file.schema_arrow.names
        missing = [c for c in EMBEDDING_COLUMNS if c not in names]
        if missing:
            raise DataError(f"{self.path} lacks column(s) {', '.join(missing)} (has {', '.join(names)})",
                            "write columns id (string), label (int) and embedding (list of floats)")
        first = self._read_group(0) if self.num_row_groups else None
        if first is None or len(first.y) == 0:
            raise DataError(f"{self.path} holds no rows")
        self.dim = first.x.shape[1]
        self.num_classes = num_classes if num_classes is not None else self._max_label() + 1

    def __len__(self) -> int:
        return self._file.metadata.num_rows

    @property
    def num_row_groups(self) -> int:
        return self._file.num_row_groups

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def _max_label(self) -> int:
        best = 0
        for batch in self._file.iter_batches(columns=["label"], batch_size=65536):
            best = max(best, int(np.asarray(batch.column(0)).max()))
        return best

    def _read_group(self, group: int) -> Batch:
        table = self._file.read_row_group(group, columns=list(EMBEDDING_COLUMNS))
        return _to_batch(table, self.path)

    def row_group_rows(self) -> list[int]:
        return [self._file.metadata.row_group(g).num_rows for g in range(self.num_row_groups)]

    def groups(self, groups: list[int]) -> Iterator[Batch]:
        for g in groups:
            yield self._read_group(g)

    def shuffled_batches(self, batch_size: int, seed: int) -> Iterator[Batch]:
        """Endless batches: row groups in a seeded order, rows shuffled within a two-group buffer."""
        rng = np.random.default_rng(seed)
        carry: Batch | None = None
        while True:
            for g in rng.permutation(self.num_row_groups):
                part = self._read_group(int(g))
                if carry is not None:
                    part = Batch(torch.cat([carry.x, part.x]), torch.cat([carry.y, part.y]),
                                 np.concatenate([carry.ids, part.ids]))
                order = rng.permutation(len(part.y))
                full = len(order) - len(order) % batch_size
                for start in range(0, full, batch_size):
                    idx = order[start:start + batch_size]
                    yield Batch(part.x[idx], part.y[idx], part.ids[idx])
                rest = order[full:]
                carry = Batch(part.x[rest], part.y[rest], part.ids[rest]) if len(rest) else None


def _to_batch(table, path: Path) -> Batch:
    ids = np.asarray(table.column("id").to_pylist(), dtype=str)
    labels = np.asarray(table.column("label").to_numpy(zero_copy_only=False))
    if not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise DataError(f"{path}: labels must be non-negative integers")
    column = table.column("embedding").combine_chunks()
    try:
        flat = np.array(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)  # a writable copy
        x = flat.reshape(len(ids), -1)
    except ValueError:
        raise DataError(f"{path}: embeddings have different lengths", "write one length for every row") from None
    if len(flat) != len(ids) * x.shape[1] or not np.isfinite(x).all():
        raise DataError(f"{path}: embeddings must be finite lists of one length")
    return Batch(torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)), ids)


def write_embeddings(path: str | Path, ids, labels, embeddings, row_group_size: int = 4096) -> None:
    """Write an embeddings parquet in the layout `ParquetPool` reads (atomically)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    table = pa.table({
        "id": pa.array(np.asarray(ids).astype(str)),
        "label": pa.array(np.asarray(labels, dtype=np.int64)),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1]),
    })
    atomic_write_with(path, lambda tmp: pq.write_table(table, tmp, row_group_size=row_group_size))


def id_seed(example_id: str, seed: int) -> int:
    """A 63-bit seed from an example id: the same id gets the same draws on any machine."""
    digest = hashlib.sha256(f"practicum-select:{seed}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def diffusion_draws(ids: np.ndarray, dim: int, k: int, timesteps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """K fixed (t, noise) pairs per example, seeded by its id: (N, K) timesteps, (N, K, dim) noise."""
    ts, noises = [], []
    for example_id in ids:
        gen = torch.Generator().manual_seed(id_seed(str(example_id), seed))
        ts.append(torch.randint(0, timesteps, (k,), generator=gen))
        noises.append(torch.randn(k, dim, generator=gen))
    return torch.stack(ts), torch.stack(noises)


def common_draws(n: int, dim: int, k: int, timesteps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K (t, noise) pairs shared by all n rows of a batch (common random numbers): (n, K), (n, K, dim).

    t is stratified: draw k lies in the k-th of K equal slices of [0, timesteps), so every batch
    sees the whole noise range. Sharing the draws makes the rows' losses differ by their images
    alone; with a draw per row, a row's loss is mostly its own luck (split-half reliability ≈ 0).
    """
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(k, generator=gen, dtype=torch.float64)
    t = ((torch.arange(k, dtype=torch.float64) + u) * timesteps / k).long().clamp_max(timesteps - 1)
    noise = torch.randn(k, dim, generator=gen)
    return t.expand(n, k), noise.expand(n, k, dim)


__all__ = ["Batch", "EMBEDDING_COLUMNS", "MemoryPool", "ParquetPool", "common_draws", "diffusion_draws", "id_seed",
           "write_embeddings"]
