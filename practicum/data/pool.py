"""The pool: generated examples stored in a run directory.

```
pool/
  pool.json                      class names, image shape, storage dtype
  shard-<name>.safetensors       "images": uint8 (N,C,H,W) 0..255, or float16 in [-1, 1]
  index.parquet                  one row per example: id, shard, row, label, seed, round,
                                 the guidance settings, and per-example values (entropy, ...)
```

Appends are atomic and idempotent: a shard is written first, then the index (both by rename),
and `append` skips a shard whose name is already in the index, so a resumed run that appends
the same shard again changes nothing. The Deliberate Practice loop appends one shard per round.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from safetensors.torch import load_file, save_file

from practicum.data.runstore import atomic_write_json, atomic_write_with
from practicum.data.sources import Dataset
from practicum.errors import DataError

DTYPES = ("uint8", "float16")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
CORE_COLUMNS = ("id", "shard", "row", "label", "seed", "round")


def encode_images(images: torch.Tensor, dtype: str) -> torch.Tensor:
    """[-1, 1] floats → the stored representation."""
    images = images.detach().float().cpu().clamp(-1, 1)
    if dtype == "uint8":
        return ((images + 1) * 127.5).round().to(torch.uint8)
    return images.to(torch.float16)


def decode_images(stored: torch.Tensor) -> torch.Tensor:
    """The stored representation → float32 in [-1, 1]."""
    if stored.dtype == torch.uint8:
        return stored.float() / 127.5 - 1.0
    return stored.float()


class Pool:
    """A pool folder (created on the first append)."""

    def __init__(self, path: str | Path, *, dtype: str = "uint8"):
        if dtype not in DTYPES:
            raise DataError(f"unknown pool dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
        self.path = Path(path)
        self.dtype = dtype
        self._index_cache = None

    # -- paths and metadata
    @property
    def index_path(self) -> Path:
        return self.path / "index.parquet"

    @property
    def meta_path(self) -> Path:
        return self.path / "pool.json"

    def shard_path(self, name: str) -> Path:
        return self.path / f"shard-{name}.safetensors"

    def meta(self) -> dict[str, Any]:
        if not self.meta_path.exists():
            return {}
        return json.loads(self.meta_path.read_text())

    # -- the index
    def index(self):
        """The index as a pandas DataFrame (empty with the core columns when the pool is empty)."""
        if self._index_cache is None:
            if self.index_path.exists():
                try:
                    self._index_cache = pd.read_parquet(self.index_path)
                except (OSError, ValueError) as exc:
                    raise DataError(f"{self.index_path} is unreadable ({exc})",
                                    "delete the pool folder and regenerate it") from None
            else:
                self._index_cache = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("row", "label", "seed", "round")
                                                               else "object") for c in CORE_COLUMNS})
        return self._index_cache.copy()

    def table(self):
        """The index as a pyarrow Table."""
        return pa.Table.from_pandas(self.index(), preserve_index=False)

    def shards(self) -> list[str]:
        return list(dict.fromkeys(self.index()["shard"].tolist()))

    def has_shard(self, name: str) -> bool:
        return name in set(self.index()["shard"].tolist())

    def __len__(self) -> int:
        return len(self.index())

    # -- writing
    def append(self, name: str, images: torch.Tensor, labels: "torch.Tensor | Sequence[int]", *,
               round_index: int = 0, seeds: "Sequence[int] | int | None" = None,
               ids: Sequence[str] | None = None, settings: Mapping[str, Any] | None = None,
               values: Mapping[str, Any] | None = None, class_names: Sequence[str] | None = None) -> bool:
        """Add a shard of examples; returns False (and writes nothing) if `name` is already there.

        `images` are (N, C, H, W) in [-1, 1]. `settings` are constants of the shard (guidance
        settings: stored in every row), `values` are per-example arrays (entropy, ...).
        """
        if not _NAME.match(name):
            raise DataError(f"shard name {name!r} may only use letters, digits, '.', '_' and '-'")
        if self.has_shard(name):
            return False
        images = torch.as_tensor(images)
        labels = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64).reshape(-1)
        n = len(labels)
        if images.ndim != 4 or len(images) != n:
            raise DataError(f"a shard needs (N, C, H, W) images with one label each; got {tuple(images.shape)} "
                            f"images and {n} labels")
        if not torch.isfinite(images).all():
            raise DataError(f"shard {name!r} holds non-finite images", "redraw them before adding to the pool")
        meta = self.meta()
        shape = list(images.shape[1:])
        if meta:
            if meta["image_shape"] != shape:
                raise DataError(f"shard {name!r} has images {shape} but the pool holds {meta['image_shape']}")
        else:
            meta = {"image_shape": shape, "dtype": self.dtype,
                    "class_names": list(class_names) if class_names is not None else None, "format": 1}
        stored = encode_images(images, meta["dtype"])
        atomic_write_with(self.shard_path(name), lambda tmp: save_file({"images": stored.contiguous()}, tmp))
        if seeds is None:
            seeds_arr = np.full(n, -1, dtype=np.int64)
        elif np.ndim(seeds) == 0:
            seeds_arr = np.full(n, int(seeds), dtype=np.int64)
        else:
            seeds_arr = np.asarray(seeds, dtype=np.int64)
        rows = {
            "id": list(ids) if ids is not None else [f"{name}-{i:05d}" for i in range(n)],
            "shard": [name] * n,
            "row": np.arange(n, dtype=np.int64),
            "label": labels,
            "seed": seeds_arr,
            "round": np.full(n, int(round_index), dtype=np.int64),
        }
        for key, value in (settings or {}).items():
            rows[key] = [_plain(value)] * n
        for key, value in (values or {}).items():
            arr = np.asarray(torch.as_tensor(value).cpu()) if isinstance(value, torch.Tensor) else np.asarray(value)
            if len(arr) != n:
                raise DataError(f"value {key!r} has {len(arr)} entries for {n} examples")
            rows[key] = arr
        new = pd.DataFrame(rows)
        old = self.index()
        if len(set(old["id"]).intersection(new["id"])):
            raise DataError(f"shard {name!r} repeats ids already in the pool", "give unique ids")
        merged = new if len(old) == 0 else pd.concat([old, new], ignore_index=True)
        if not self.meta_path.exists():
            atomic_write_json(self.meta_path, meta)
        atomic_write_with(self.index_path, lambda tmp: merged.to_parquet(tmp, index=False))
        self._index_cache = merged
        return True

    # -- reading
    def images(self, shards: Sequence[str] | None = None) -> torch.Tensor:
        index = self.index()
        names = shards if shards is not None else self.shards()
        parts = []
        for name in names:
            path = self.shard_path(name)
            if not path.exists():
                raise DataError(f"pool shard {path} is missing", "regenerate the pool (rerun with --resume)")
            stored = load_file(path)["images"]
            count = int((index["shard"] == name).sum())
            if len(stored) != count:
                raise DataError(f"pool shard {path} holds {len(stored)} images, the index {count}",
                                "the pool is inconsistent; regenerate it")
            parts.append(decode_images(stored))
        if not parts:
            shape = self.meta().get("image_shape", [1, 1, 1])
            return torch.empty((0, *shape))
        return torch.cat(parts)

    def to_dataset(self, rounds: Sequence[int] | None = None, class_names: Sequence[str] | None = None) -> Dataset:
        """The pool (or some rounds of it) as a `Dataset`, in index order."""
        index = self.index()
        if rounds is not None:
            keep = index["round"].isin(list(rounds))
            shards = list(dict.fromkeys(index.loc[keep, "shard"].tolist()))
        else:
            shards = self.shards()
        index = index[index["shard"].isin(shards)]
        order = {name: i for i, name in enumerate(shards)}
        index = index.assign(_o=index["shard"].map(order)).sort_values(["_o", "row"], kind="stable")
        images = self.images(shards)
        labels = torch.from_numpy(index["label"].to_numpy(dtype=np.int64).copy())
        names = class_names or self.meta().get("class_names")
        if not names:
            names = [str(c) for c in range(int(labels.max()) + 1 if len(labels) else 0)]
        return Dataset(images, labels, index["id"].to_numpy().astype(str), tuple(str(c) for c in names))


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return ""
    return value
