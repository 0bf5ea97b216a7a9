"""Rows of a loaded split for one shard, sent to a worker without the rest of the split.

A sharded pass over a split (`practicum score`) gives each worker a set of row numbers. Loading
the split in every worker makes each worker's cost that of the whole split, so two workers
barely beat one. `ShardRows` instead holds a reference to the driver's arrays plus the row
numbers: in the driver's process (the local engine) nothing is copied until the shard is read;
pickled (how Ray ships a task's arguments, through its object store) it carries only its own
rows, so a worker receives and reads exactly its shard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def _take(column: Any, rows: np.ndarray) -> Any:
    if isinstance(column, torch.Tensor):
        return column[torch.from_numpy(rows)]
    return np.asarray(column)[rows]


class ShardRows:
    """Rows `rows` (in that order) of equally long columns: torch tensors or numpy arrays."""

    def __init__(self, columns: Mapping[str, Any], rows: Any):
        self.columns = dict(columns)
        self.rows = np.asarray(rows, dtype=np.int64)
        lengths = {len(column) for column in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.rows)

    def read(self) -> dict[str, Any]:
        """The shard's rows of every column, each of its column's type."""
        return {name: _take(column, self.rows) for name, column in self.columns.items()}

    def __reduce__(self):
        # only the selected rows travel; tensors as numpy arrays (zero-copy in Ray's object store)
        taken = self.read()
        tensors = tuple(name for name, value in taken.items() if isinstance(value, torch.Tensor))
        arrays = {name: value.numpy() if name in tensors else value for name, value in taken.items()}
        return _rebuild, (arrays, tensors)


def _rebuild(arrays: dict[str, np.ndarray], tensors: tuple[str, ...]) -> ShardRows:
    # arrays read from Ray's object store are read-only: copy the (shard-sized) tensors
    columns = {name: torch.from_numpy(np.array(value)) if name in tensors else value for name, value in arrays.items()}
    return ShardRows(columns, np.arange(len(next(iter(arrays.values()))) if arrays else 0))
