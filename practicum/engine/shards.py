"""Sharded work that survives being killed: one file per shard, written atomically, skipped on rerun.

`run_shards(executor, fn, items, out_dir)` runs `fn(item)` for every item whose shard file does
not exist yet and writes each result the moment it arrives (the driver writes, so a cluster
needs no shared filesystem). A file is either complete or absent (temporary name, fsync,
rename), so a worker or driver killed mid-run neither loses finished shards nor leaves a torn
one, and a rerun computes exactly the missing shards. Results are read back from the files, so
a resumed run returns the same values as one that was never interrupted.

Codecs: `"json"` (any JSON-able value: a study run's record) and `"arrays"` (a dict of numpy
arrays as safetensors: images, labels, scores). A `Codec` instance gives any other format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import load_file, save_file

from practicum.data.runstore import atomic_write_json, atomic_write_with
from practicum.errors import ConfigError, RunError
from practicum.log import logger

if TYPE_CHECKING:
    from practicum.engine import Executor

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


@dataclass(frozen=True)
class Codec:
    """How a shard's value becomes a file and back."""

    suffix: str
    write: Callable[[Path, Any], None]
    read: Callable[[Path], Any]


def _write_json(path: Path, value: Any) -> None:
    atomic_write_json(path, value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"shard {path} is not valid JSON ({exc.msg})", "delete it and rerun to recompute it") from None


def _write_arrays(path: Path, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"a shard for {path.name} is {type(value).__name__}, not a dict of arrays",
                          "return {name: numpy array} from the shard function, or use codec='json'")
    arrays = {}
    for key, array in value.items():
        if hasattr(array, "detach"):  # a torch tensor
            array = array.detach().cpu().numpy()
        if not isinstance(array, np.ndarray):
            raise ConfigError(f"shard value {key!r} for {path.name} is {type(array).__name__}, not an array",
                              "return numpy arrays (or torch tensors) only, or use codec='json'")
        arrays[str(key)] = np.ascontiguousarray(array)
    atomic_write_with(path, lambda tmp: save_file(arrays, tmp))


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return load_file(path)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise RunError(f"shard {path} cannot be read ({exc})", "delete it and rerun to recompute it") from None


CODECS: dict[str, Codec] = {
    "json": Codec(".json", _write_json, _read_json),
    "arrays": Codec(".safetensors", _write_arrays, _read_arrays),
}


def get_codec(codec: str | Codec) -> Codec:
    if isinstance(codec, Codec):
        return codec
    if codec not in CODECS:
        raise ConfigError(f"unknown shard codec {codec!r}", f"use one of {', '.join(CODECS)} or a Codec")
    return CODECS[codec]


def shard_names(items: Sequence[Any], name_of: Callable[[Any], str] | None = None) -> list[str]:
    """File stems for the shards: `name_of(item)` or `shard-00000`, `shard-00001`, ..."""
    names = [f"shard-{i:05d}" for i in range(len(items))] if name_of is None else [str(name_of(x)) for x in items]
    for name in names:
        if not _SAFE_NAME.match(name):
            raise ConfigError(f"shard name {name!r} is not a plain file name",
                              "use letters, digits and _ . = + - only, starting with a letter or digit")
    if len(set(names)) != len(names):
        raise ConfigError("two shards have the same name", "make name_of return a distinct name per item")
    return names


def shard_paths(out_dir: str | Path, items: Sequence[Any], *, codec: str | Codec = "json",
                name_of: Callable[[Any], str] | None = None) -> list[Path]:
    """Where `run_shards` keeps each item's output."""
    suffix = get_codec(codec).suffix
    return [Path(out_dir) / f"{name}{suffix}" for name in shard_names(items, name_of)]


def read_shards(paths: Sequence[str | Path], codec: str | Codec = "json") -> list[Any]:
    reader = get_codec(codec).read
    return [reader(Path(path)) for path in paths]


def run_shards(executor: "Executor", fn: Callable[..., Any], items: Sequence[Any], out_dir: str | Path, *,
               codec: str | Codec = "json", name_of: Callable[[Any], str] | None = None,
               setup: Callable[[], Any] | None = None, description: str = "shards") -> list[Any]:
    """Compute the missing shards of `items` on `executor`, write each atomically, return all in order.

    `fn(item)` (or `fn(state, item)` with `setup`, as in `Executor.map`) must be a top-level
    function whose result depends only on the item (seed it from `shard_seed`). Shard `i` is
    kept at `out_dir/<name_of(item) or shard-0000i><suffix>`; an existing file counts as done,
    so the settings that made it must not have changed (the run directory checks that).
    """
    items = list(items)
    codec = get_codec(codec)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = shard_paths(out_dir, items, codec=codec, name_of=name_of)
    _remove_torn_writes(out_dir, paths, codec.suffix)
    todo = [i for i, path in enumerate(paths) if not path.exists()]
    if len(todo) < len(items):
        logger.info("%s: %d of %d shards already in %s, computing %d", description, len(items) - len(todo),
                    len(items), out_dir, len(todo))
    if todo:
        results = executor.imap(fn, [items[i] for i in todo], setup=setup, description=description, positions=todo)
        for position, value in results:
            codec.write(paths[position], value)
    return read_shards(paths, codec)


def _remove_torn_writes(out_dir: Path, paths: Sequence[Path], suffix: str) -> None:
    """Temporary files a killed writer left behind (`.<name>.<random>...`); never a finished shard."""
    for path in paths:
        stem = path.name[: -len(suffix)]
        for leftover in out_dir.glob(f".{stem}.*"):
            leftover.unlink(missing_ok=True)
