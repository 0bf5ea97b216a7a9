"""Where and how torch runs: the one device resolver, dtype parser and thread knob.

Every package that needs a device, a dtype name or a torch thread count uses these (they
sit in the bottom layer, so `learn`, `diffusion`, `select`, `distill` and `practice` all may).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from practicum.errors import ConfigError

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
DTYPE_NAMES = tuple(DTYPES)


def parse_dtype(name: "str | torch.dtype | None") -> torch.dtype:
    """'fp32' | 'bf16' | 'fp16' (or the torch names) → torch.dtype; None → float32."""
    if name is None:
        return torch.float32
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise ConfigError(f"dtype {name} is not supported", f"use one of {', '.join(DTYPE_NAMES)}")
        return name
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}", f"use one of {', '.join(DTYPE_NAMES)}")
    return DTYPES[key]


def resolve_device(name: "str | torch.device | None") -> torch.device:
    """None or 'auto' → cuda when available, else cpu; anything else is checked to exist."""
    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(name))
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", "use cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available here",
                          "use --device cpu (or auto)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' asked for but MPS is not available here", "use --device cpu (or auto)")
    return device


def set_torch_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads of this process (None: leave them as they are)."""
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """`set_torch_threads` for a block; the previous count comes back afterwards."""
    previous = torch.get_num_threads()
    set_torch_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
