"""Executors: run independent pieces of work (shards) in-process or on Ray, with the same result.

Every parallel place in practicum (generating a round, scoring a pool, the study's runs) is
written as `executor.map(fn, items)` where `fn` is a top-level (picklable) function of one
item and each item carries its own seed from `shard_seed(seed, round, shard)`. The result
depends only on the items, never on which worker ran them or in what order, so the local and
the Ray executor give the same bytes.

Two kinds of work:

- independent runs: `executor.map(fn, items)` calls `fn(item)` (Ray: one task per item);
- model-holding work: `executor.map(fn, items, setup=load_model)` calls `state = setup()` once
  per worker and then `fn(state, item)` (Ray: a pool of actors, so a model is loaded once per
  actor, not once per shard). `state` must be read-only. The state outlives the call: a later
  map with the same setup (the same function with equal arguments, compared pickled) reuses it
  (the local executor keeps the last one; Ray keeps its actor pools for the process, see
  `practicum.engine.ray_executor`), so a setup must build the same state whenever it is called
  with the same arguments (load a checkpoint that is not rewritten in place).

`executor.imap(...)` takes the same arguments and yields `(position, result)` as items finish,
which is what `run_shards` uses to write each shard the moment it exists.

Identical bytes need identical process state, so every item runs with the same torch thread
count (`threads`: the driver's `torch.get_num_threads()` unless given, or `PRACTICUM_THREADS`)
and with the global generators seeded from its position (see `practicum.engine.worker`).
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol, TypeVar

from practicum.engine.ray_executor import OPTIONS, RayExecutor
from practicum.engine.worker import (THREADS_ENV, GlobalStateGuard, check_positions, resolve_threads, run_in_worker,
                                     run_item, run_setup, setup_key)
from practicum.errors import ConfigError
from practicum.log import progress_bar

T = TypeVar("T")
R = TypeVar("R")

ENGINES = ("local", "ray")


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[..., R], items: Sequence[Any], *, setup: Callable[[], Any] | None = None,
            description: str = "work") -> list[R]:
        """`[fn(item) for item in items]` (or `fn(state, item)` with `setup`), in the order of `items`."""

    def imap(self, fn: Callable[..., R], items: Sequence[Any], *, setup: Callable[[], Any] | None = None,
             description: str = "work", positions: Sequence[int] | None = None) -> Iterator[tuple[int, R]]:
        """`(position, result)` pairs as items finish (any order)."""

    def close(self) -> None:
        """Release workers and kept states (Ray: shuts down the instance this executor started)."""


class LocalExecutor:
    """On this machine: in-process, one item after another (the default), or with `processes > 1`
    in that many worker processes at once, one item per process (with `setup`, each process
    builds its state once and keeps it, see `run_in_worker`).

    Worker processes are started (spawn) on the first call, kept for later calls until `close`,
    and run every item under the same `run_item` as in-process (which re-seeds the global
    generators per item), so the bytes do not depend on `processes` or on which worker ran what."""

    name = "local"

    def __init__(self, threads: int | None = None, processes: int = 1):
        if int(processes) < 1:
            raise ConfigError(f"processes must be at least 1, got {processes}", "use 1 (in-process) or more")
        self.threads = threads
        self.processes = int(processes)
        self._pool = None  # worker processes (processes > 1), kept across calls until close()
        self._state: tuple[tuple[str, int], Any] | None = None  # ((setup key, threads), state) of the last setup

    def _state_for(self, setup: Callable[[], Any], threads: int) -> Any:
        key = setup_key(setup)
        if key is not None and self._state is not None and self._state[0] == (key, threads):
            return self._state[1]
        self._state = None  # release the previous state before building the next
        state = run_setup(setup, threads)
        if key is not None:
            self._state = ((key, threads), state)
        return state

    def map(self, fn: Callable[..., R], items: Sequence[Any], *, setup: Callable[[], Any] | None = None,
            description: str = "work") -> list[R]:
        done = dict(self.imap(fn, items, setup=setup, description=description))  # worker processes finish in any order
        return [done[position] for position in range(len(items))]

    def imap(self, fn: Callable[..., R], items: Sequence[Any], *, setup: Callable[[], Any] | None = None,
             description: str = "work", positions: Sequence[int] | None = None) -> Iterator[tuple[int, R]]:
        positions = check_positions(items, positions)
        threads = resolve_threads(self.threads)
        if not items:
            return
        if self.processes > 1 and len(items) > 1:
            yield from self._imap_processes(fn, items, positions, threads, description, setup)
            return
        with GlobalStateGuard(), progress_bar(description, len(items)) as advance:
            state = self._state_for(setup, threads) if setup is not None else None
            for position, item in zip(positions, items):
                outcome = run_item(fn, item, position, threads, state=state, with_state=setup is not None)
                advance()
                yield position, outcome.unwrap()

    def _imap_processes(self, fn, items, positions, threads, description, setup) -> Iterator[tuple[int, Any]]:
        pool = self._worker_pool()
        with progress_bar(description, len(items)) as advance:
            futures = {pool.submit(run_in_worker, fn, item, position, threads, setup): position
                       for position, item in zip(positions, items)}
            try:
                for future in as_completed(futures):
                    advance()
                    yield futures[future], future.result().unwrap()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _worker_pool(self):
        """The worker processes, started on first use and kept until `close` (starting one costs seconds)."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # no forked torch state: each worker starts clean
            self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context,
                                             initializer=die_with_parent)
        return self._pool

    def close(self) -> None:
        self._state = None
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def die_with_parent() -> None:
    """Worker-process initializer: on Linux, the worker is killed when the process that started it
    dies, so a killed run leaves no worker still writing (and locking) its run folders."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def get_executor(name: str = "local", **options: Any) -> Executor:
    """`local` (default) or `ray` (needs the `practicum[ray]` extra; `RAY_ADDRESS` picks a cluster).

    Options: `threads` for both; `processes` for the local one (worker processes for independent
    items, default 1 = in-process); the Ray executor also takes `address`, `num_cpus`, `num_gpus`,
    `cpus_per_task`, `gpus_per_task`, `cpus_per_actor`, `gpus_per_actor`, `actors`, `max_retries`
    (see `RayExecutor`), each also settable as a `PRACTICUM_RAY_<NAME>` environment variable.
    """
    if name == "local":
        unknown = set(options) - {"threads", "processes"}
        if unknown:
            raise ConfigError(f"the local engine takes no option {', '.join(sorted(unknown))}",
                              "only `threads` and `processes` apply to --engine local")
        return LocalExecutor(**options)
    if name == "ray":
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ConfigError(f"the ray engine takes no option {', '.join(sorted(unknown))}",
                              f"use {', '.join(OPTIONS)}")
        return RayExecutor(**options)
    raise ConfigError(f"unknown engine {name!r}", f"use one of {', '.join(ENGINES)}")


def shard_seed(seed: int, round_index: int = 0, shard: int = 0) -> int:
    """A 63-bit seed for (seed, round, shard): stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"practicum:{seed}:{round_index}:{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


from practicum.engine.shards import read_shards, run_shards, shard_paths  # noqa: E402  (uses Executor)

__all__ = [
    "ENGINES", "Executor", "LocalExecutor", "THREADS_ENV", "get_executor", "read_shards", "resolve_threads",
    "run_shards", "shard_paths", "shard_seed",
]
