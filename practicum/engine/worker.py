"""What runs around every item on every engine, so the result cannot depend on where it ran.

Two pieces of process state silently change results between engines:

- the torch thread count: CPU kernels split their sums differently with 1 or 2 threads, so a
  model trained with 2 threads differs in the last bits from one trained with 1. Every item
  therefore runs with the same `threads` on every engine (the executors choose it once, in the
  driver);
- the global random generators (`random`, numpy's legacy one, torch's default generator): a Ray
  worker is reused for many items, so anything an item draws from them would depend on which
  items that worker ran before. Every item therefore starts with them seeded from its position
  in the job. Shard functions should still use explicit generators seeded from `shard_seed`;
  this only makes a forgotten one harmless (e.g. `nn.Linear`'s default initialisation).

Errors are carried back as values (`Outcome`) rather than raised inside the worker, so the
driver re-raises the user's own exception (a `PracticumError` stays a one-line CLI error)
whatever the engine wraps it in.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from practicum.errors import ConfigError
from practicum.heap import steady_heap

THREADS_ENV = "PRACTICUM_THREADS"

# Salt for the per-position global seeds, kept apart from the seeds `shard_seed` hands to items.
GLOBAL_SEED_SALT = 0x9E3779B1


def driver_threads() -> int:
    """The torch intra-op thread count of this process (what items run with by default)."""
    import torch  # lazy: torch import costs seconds; the engine runs numpy-only jobs too

    return torch.get_num_threads()


def resolve_threads(threads: int | None) -> int:
    """Torch threads per item: the argument, else `PRACTICUM_THREADS`, else the driver's count."""
    if threads is None:
        text = os.environ.get(THREADS_ENV)
        if text:
            try:
                threads = int(text)
            except ValueError:
                raise ConfigError(f"{THREADS_ENV}={text!r} is not a whole number",
                                  f"set {THREADS_ENV} to a positive integer such as 1") from None
        else:
            threads = driver_threads()
    if threads < 1:
        raise ConfigError(f"threads per item must be at least 1, got {threads}", f"use 1 or more ({THREADS_ENV})")
    return threads


def check_positions(items: Sequence[Any], positions: Sequence[int] | None) -> list[int]:
    if positions is None:
        return list(range(len(items)))
    positions = [int(p) for p in positions]
    if len(positions) != len(items):
        raise ConfigError(f"got {len(positions)} positions for {len(items)} items", "give one position per item")
    return positions


def prepare_item(position: int, threads: int) -> None:
    """Pin torch threads and seed the global generators for the item at `position`."""
    import torch  # lazy: torch import costs seconds

    from practicum.runtime import set_torch_threads  # lazy: torch import costs seconds (runtime loads it)

    steady_heap()
    set_torch_threads(threads)
    seed = (GLOBAL_SEED_SALT * (position + 1)) % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Outcome:
    """The result of one item, or the error it raised (pickled, with the remote traceback)."""

    position: int
    value: Any = None
    error: bytes | None = None
    remote_traceback: str | None = None

    def unwrap(self) -> Any:
        if self.error is None:
            return self.value
        raise _rebuild_error(self.error, self.remote_traceback)


def run_item(fn: Callable, item: Any, position: int, threads: int, state: Any = None,
             with_state: bool = False) -> Outcome:
    """Run `fn(item)` (or `fn(state, item)`) under `prepare_item`, catching its error."""
    prepare_item(position, threads)
    try:
        value = fn(state, item) if with_state else fn(item)
    except Exception as exc:  # noqa: BLE001 - carried back to the driver and re-raised there
        return Outcome(position, error=_pickle_error(exc), remote_traceback=traceback.format_exc())
    return Outcome(position, value=value)


def run_setup(setup: Callable[[], Any], threads: int) -> Any:
    """Build a worker's read-only state (a model) under the same pinned state on every engine."""
    prepare_item(-1, threads)
    return setup()


def try_setup(setup: Callable[[], Any], threads: int) -> Outcome:
    """`run_setup`, with its error carried back as a value (as `run_item` does for items)."""
    try:
        return Outcome(-1, value=run_setup(setup, threads))
    except Exception as exc:  # noqa: BLE001 - re-raised in the driver for the first item
        return Outcome(-1, error=_pickle_error(exc), remote_traceback=traceback.format_exc())


_WORKER_STATE: dict[tuple[str | None, int], Any] = {}  # a worker process's last setup state, by (setup key, threads)


def run_in_worker(fn: Callable, item: Any, position: int, threads: int,
                  setup: Callable[[], Any] | None = None) -> Outcome:
    """`run_item` in a worker process; with `setup`, the state is built on the process's first
    item of that setup and kept for its later items (the local executor's worker processes)."""
    if setup is None:
        return run_item(fn, item, position, threads)
    key = (setup_key(setup), threads)
    if key not in _WORKER_STATE:
        _WORKER_STATE.clear()
        built = try_setup(setup, threads)
        if built.error is not None:
            return Outcome(position, error=built.error, remote_traceback=built.remote_traceback)
        _WORKER_STATE[key] = built.value
    return run_item(fn, item, position, threads, state=_WORKER_STATE[key], with_state=True)


def setup_key(setup: Callable[[], Any], dumps: Callable[[Any], bytes] = pickle.dumps) -> str | None:
    """What identifies a worker state for reuse: a hash of the pickled setup (function and arguments).

    Two map calls whose `setup` pickles to the same bytes (the same top-level function, or a
    `functools.partial` of it with equal arguments) share one state, so a setup called again
    with the same arguments must build the same state. None when `setup` cannot be pickled
    (then nothing is reused).
    """
    try:
        return hashlib.sha256(dumps(setup)).hexdigest()
    except Exception:  # noqa: BLE001 - a closure over something unpicklable: never reused
        return None


class GlobalStateGuard:
    """Save and restore the driver's thread count and global generators around an in-process run."""

    def __enter__(self) -> "GlobalStateGuard":
        import torch  # lazy: torch import costs seconds

        self._threads = torch.get_num_threads()
        self._torch = torch.get_rng_state()
        self._numpy = np.random.get_state()
        self._random = random.getstate()
        return self

    def __exit__(self, *exc_info) -> None:
        import torch  # lazy: torch import costs seconds

        torch.set_num_threads(self._threads)
        torch.set_rng_state(self._torch)
        np.random.set_state(self._numpy)
        random.setstate(self._random)


def _pickle_error(exc: Exception) -> bytes:
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)  # some exceptions pickle but cannot be rebuilt; check here, not in the driver
        return blob
    except Exception:  # noqa: BLE001
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _rebuild_error(blob: bytes, remote_traceback: str | None) -> BaseException:
    exc = pickle.loads(blob)  # produced by `_pickle_error` in our own worker, never read from a file
    if remote_traceback:
        exc.add_note(f"raised in a worker:\n{remote_traceback}")
    return exc
