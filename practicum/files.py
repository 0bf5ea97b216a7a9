"""One validating reader per kind of file practicum reads back: JSON sidecars, safetensors, YAML.

Each reader checks the file before anything uses it and turns every way it can be wrong
(missing, truncated, not UTF-8, not the expected structure, tensors of the wrong name, shape or
dtype, NaN weights) into one error naming the file and the problem. Callers pass the error class
(`ModelError` for weights and sidecars, `ConfigError` for settings) and the fix to suggest.

The safetensors header is parsed here before the library sees the file: an 8-byte length, a
JSON header, and data offsets that must tile the rest of the file exactly. So a truncated or
bit-flipped file is a clear error, never a library panic or a huge allocation.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, Mapping

from practicum.errors import PracticumError

MAX_HEADER_BYTES = 100 * 2 ** 20  # safetensors' own limit on the JSON header
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "U16": 2, "U32": 4, "U64": 8, "BOOL": 1}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


def read_text(path: str | Path, error: type[PracticumError], fix: str) -> str:
    """A UTF-8 text file (a Latin-1 file is an error naming the offending byte, not a traceback)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} {'is a folder' if path.is_dir() else 'does not exist'}", fix)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
                    "save it as UTF-8") from None


def read_json(path: str | Path, error: type[PracticumError], fix: str) -> Any:
    """A JSON document (NaN literals, which Python writes, are read; typed fields refuse them)."""
    text = read_text(path, error, fix)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{path} is not valid JSON: {str(exc).splitlines()[0][:200]}", fix) from None


def read_json_object(path: str | Path, error: type[PracticumError], fix: str,
                     fields: Mapping[str, type | tuple[type, ...]] = {}) -> dict[str, Any]:
    """A JSON object whose `fields` are present with these types (bool is not an int here)."""
    value = read_json(path, error, fix)
    if not isinstance(value, dict):
        raise error(f"{path} must hold a JSON object, not {type(value).__name__}", fix)
    for name, kind in fields.items():
        if name not in value:
            raise error(f"{path} has no {name!r} field", fix)
        if not _is_instance(value[name], kind):
            raise error(f"{path}: {name!r} is {type(value[name]).__name__} {str(value[name])[:40]!r}, "
                        f"expected {_type_name(kind)}", fix)
    return value


def _is_instance(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, kinds)


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def safetensors_header(path: str | Path, error: type[PracticumError], fix: str) -> dict[str, dict[str, Any]]:
    """The tensors a safetensors file declares ({name: {dtype, shape, data_offsets}}), checked against
    the file's size: every tensor's bytes lie inside the file, match its shape and dtype, and together
    they cover the data exactly."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} {'is a folder' if path.is_dir() else 'does not exist'}", fix)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise error(f"{path} is not a safetensors file ({size} bytes, truncated)", fix)
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise error(f"{path} is not a safetensors file (its header length {length} exceeds the file)", fix)
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error(f"{path} has a corrupt safetensors header", fix) from None
    if not isinstance(header, dict):
        raise error(f"{path} has a corrupt safetensors header", fix)
    header.pop("__metadata__", None)
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            count = math.prod(int(d) for d in shape)
            ok = (dtype in DTYPE_BYTES and all(isinstance(d, int) and d >= 0 for d in shape)
                  and 0 <= begin <= end and end - begin == count * DTYPE_BYTES[dtype])
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise error(f"{path}: the entry for tensor {name!r} is corrupt", fix)
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            break
        covered = end
    if covered != size - 8 - length:
        raise error(f"{path} is truncated or padded: its tensors need {covered} bytes of data, "
                    f"the file holds {size - 8 - length}", fix)
    return header


def read_safetensors(path: str | Path, error: type[PracticumError], fix: str, *,
                     expect: Mapping[str, tuple[tuple[int, ...], bool]] | None = None) -> dict[str, Any]:
    """The tensors of a checked safetensors file (torch, CPU). With `expect` ({name: (shape, floating)},
    see `layout_of`), the names, shapes and kinds of dtype must be exactly those. Floating tensors must
    be finite."""
    import torch  # lazy: torch import costs seconds; config reads files at CLI start-up
    from safetensors.torch import load_file  # lazy: torch import costs seconds (safetensors.torch loads it)

    header = safetensors_header(path, error, fix)
    if expect is not None:
        missing = sorted(set(expect) - set(header))
        extra = sorted(set(header) - set(expect))
        if missing or extra:
            what = f"lacks tensor {missing[0]!r}" if missing else f"has an unexpected tensor {extra[0]!r}"
            raise error(f"{path} {what} ({len(missing)} missing, {len(extra)} unexpected)", fix)
        for name, (shape, floating) in expect.items():
            got = tuple(header[name]["shape"])
            if got != tuple(shape):
                raise error(f"{path}: tensor {name!r} has shape {list(got)}, expected {list(shape)}", fix)
            if (header[name]["dtype"] in FLOAT_DTYPES) != floating:
                raise error(f"{path}: tensor {name!r} is {header[name]['dtype']}, expected "
                            f"{'floating point' if floating else 'an integer type'}", fix)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - the library's own checks: one error naming the file
        raise error(f"{path} is not a readable safetensors file: {str(exc).splitlines()[0][:200]}", fix) from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise error(f"{path}: tensor {name!r} holds NaN or infinite values", fix)
    return tensors


def layout_of(module) -> dict[str, tuple[tuple[int, ...], bool]]:
    """{name: (shape, floating)} of a module's state dict, for `read_safetensors(expect=...)`."""
    return {name: (tuple(t.shape), t.is_floating_point()) for name, t in module.state_dict().items()}
