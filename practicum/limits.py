"""The ranges a real run's numeric settings can have, and a memory estimate checked before work.

Pydantic types for the settings classes (the single source of defaults), so a value outside
its range is one `ConfigError` naming the setting before anything is loaded or trained:

- `Count`: a positive count of things a run makes or repeats (examples, steps, epochs, refits).
- `Threads`: torch threads; no machine has more than `MAX_THREADS` cores.
- `LearningRate`: positive and at most `MAX_LR` (an AdamW/SGD step of 10 already diverges).
- `GuidanceStrength` / `CfgScale`: the documented bounds of ω and of the CFG scale s.
- `SeedValue`: a seed numpy and torch both accept.

`check_memory(nbytes, what, fix)` refuses a run whose estimated footprint exceeds the memory
this machine has free, saying the estimate.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field

from practicum.errors import ConfigError

MAX_COUNT = 10 ** 9  # beyond any run this library is meant for; larger numbers are typos (1e13, 1e29)
MAX_THREADS = 1024
MAX_LR = 10.0
MAX_GUIDANCE = 100.0  # |ω|: the papers use 0.01-1; beyond 100 every sample is noise
MAX_CFG_SCALE = 50.0  # s = 1 + λ; the papers use 1-10
MAX_SEED = 2 ** 32 - 1  # numpy's seed range
MAX_IMAGE_SIZE = 1024  # pixels a side: the largest models practicum drives (SD) work at 512-1024

Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Threads = Annotated[int, Field(ge=1, le=MAX_THREADS)]
LearningRate = Annotated[float, Field(gt=0, le=MAX_LR, allow_inf_nan=False)]
GuidanceStrength = Annotated[float, Field(ge=-MAX_GUIDANCE, le=MAX_GUIDANCE, allow_inf_nan=False)]
CfgScale = Annotated[float, Field(ge=0, le=MAX_CFG_SCALE, allow_inf_nan=False)]
SeedValue = Annotated[int, Field(ge=0, le=MAX_SEED)]


def available_memory() -> int:
    """Bytes this process can still allocate: MemAvailable (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 ** 63


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse `what` when its estimated `nbytes` exceed the free memory (the estimate is in the message)."""
    free = available_memory()
    if nbytes > free:
        raise ConfigError(f"{what} needs about {_gib(nbytes)} of memory but {_gib(free)} is free", fix)


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2 ** 30:.3g} GiB"
