"""Data sources, splits, the pool of generated examples and the run directory."""

from practicum._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "rows": ["ShardRows"],
    "runstore": ["RunDir", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "atomic_write_with",
                 "to_jsonable"],
    "sources": ["SPLITS", "Dataset", "load_digits", "load_fashion", "fashion_split_indices", "load_image_folder", "load_npz", "load_source",
                "split_indices"],
})
