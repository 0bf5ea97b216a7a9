"""Executors: run independent pieces of work (shards) in-process or on Ray, with the same result.

Every parallel place in practicum (generating a round, scoring a pool, the study's runs) is
written as `executor.map(fn, items)` where `fn` is a top-level (picklable) function of one
item and each item carries its own seed from `shard_seed(seed, round, shard)`. The result
depends only on the items, never on which worker ran them or in what order, so the local and
the Ray executor give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from practicum.errors import ConfigError
from practicum.log import progress

T = TypeVar("T")
R = TypeVar("R")

ENGINES = ("local", "ray")


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, description: str = "work") -> list[R]:
        """`[fn(item) for item in items]`, in the order of `items`."""
        ...


class LocalExecutor:
    """In-process, one item after another (the default)."""

    name = "local"

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, description: str = "work") -> list[R]:
        return [fn(item) for item in progress(items, description)]


def get_executor(name: str = "local", **options: Any) -> Executor:
    """`local` (default) or `ray` (needs the `practicum[ray]` extra; `RAY_ADDRESS` picks a cluster)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from practicum.engine.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ConfigError(f"unknown engine {name!r}", f"use one of {', '.join(ENGINES)}")


def shard_seed(seed: int, round_index: int = 0, shard: int = 0) -> int:
    """A 63-bit seed for (seed, round, shard): stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"practicum:{seed}:{round_index}:{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


__all__ = ["ENGINES", "Executor", "LocalExecutor", "get_executor", "shard_seed"]
