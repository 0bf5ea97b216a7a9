"""Data sources, splits and the run directory."""

from practicum.data.runstore import (
    RunDir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_write_with,
    to_jsonable,
)
from practicum.data.sources import (
    SPLITS,
    Dataset,
    load_digits,
    load_image_folder,
    load_npz,
    load_source,
    split_indices,
)

__all__ = [
    "SPLITS", "Dataset", "RunDir", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
    "atomic_write_with", "load_digits", "load_image_folder", "load_npz", "load_source", "split_indices",
    "to_jsonable",
]
