"""The process's heap: keep freed tensor memory between training steps, hand it back between phases.

Both act on glibc's malloc only (Linux); elsewhere `steady_heap` does nothing and `release_memory`
only collects garbage. No torch import, so the command line can set the policy before anything loads.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable


@functools.cache
def _glibc(name: str) -> Callable[..., int] | None:
    """A glibc malloc function, or None where the C library has none (macOS, Windows, musl)."""
    try:
        return getattr(ctypes.CDLL(None), name)  # the process's own symbols, libc's among them
    except (OSError, AttributeError, TypeError):
        return None


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
STEADY_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value: tensors below it come from the heap
STEADY_TRIM_THRESHOLD = 1 << 30  # the heap's free top goes back to the system only through release_memory


@functools.cache
def steady_heap() -> bool:
    """Keep freed tensor memory in this process for the next training step (glibc only; idempotent).

    By default glibc may hand a freed block of a few MB back to the system (munmap, or trimming
    the heap's top) and page-fault it in again at the next step: for the study's CNN on a CPU, in
    some processes and not others, up to 1.8 million page faults per 300 steps and 40 % more time
    per step (docs/benchmarks.md, issue 21). Fixed thresholds keep the blocks; `release_memory`
    still returns them at phase boundaries. The arithmetic is unchanged, so results are the same
    bytes. Returns whether the thresholds were set."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                   STEADY_TRIM_THRESHOLD))


def release_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc's malloc_trim; elsewhere only gc).

    A long run (guided rounds, evaluations, branch-outs) frees many mid-sized tensors that glibc
    keeps for reuse; between its phases that is ~200 MB per worker process that the rest of the
    machine cannot use. Called at phase boundaries only (about 0.1 s, mostly the gc pass)."""
    gc.collect()
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)
