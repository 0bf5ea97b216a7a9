"""The Ray executor: the same `map` as the local one, spread over the cores, GPUs and nodes of a Ray cluster.

- `map(fn, items)`: one Ray task per item, retried if its worker dies (`max_retries`).
- `map(fn, items, setup=load_model)`: a pool of actors, each of which calls `setup()` once and
  then `fn(state, item)` for the items it is given (one at a time, the next item to whichever
  actor is free), so a model is loaded once per actor. Killed actors are restarted and their
  items run again. Called from inside a Ray task (nested work), it runs in that task's process
  instead.

Actor pools persist: a pool belongs to the process, not to one `map` call, keyed by the setup
(its function and arguments, compared pickled), the threads and the actor resources; a later
`map` with the same key reuses its warm actors (a pool's start, i.e. a process, `import torch`
and loading a checkpoint, costs seconds and is paid once). A pool grows to `actors` as the work
needs. Idle pools give way: before work that needs CPUs or GPUs they hold, the least recently
used idle pools are shut down, so a kept pool never starves other tasks. Pools end at
`close()` of the executor that started Ray, at `shutdown_pools()`, or at exit; a pool whose
item raised is shut down too (its state may be the cause).

Where Ray runs: `address` (or `RAY_ADDRESS`) connects to a running cluster (`ray start
--head` on one machine, `ray start --address=HEAD:6379` on the others); without one a private
local instance is started (never someone else's) and shut down on `close()` or at exit.

Resources: a task asks for `cpus_per_task` CPUs and `gpus_per_task` GPUs, an actor for
`cpus_per_actor` and `gpus_per_actor`; fractions are allowed (0.5 CPU packs two per core, which
is what keeps a 2-core machine from deadlocking when work is nested). CPUs default to the
torch threads each item runs with (see `practicum.engine`), capped at the largest node, so
threads are not oversubscribed. Every option can also be set as `PRACTICUM_RAY_<OPTION>`
(e.g. `PRACTICUM_RAY_GPUS_PER_ACTOR=1`), which is how `--engine ray` on any command is tuned.

Items and results travel between processes pickled by Ray, so `fn`, `setup`, the items and
the results must be picklable, and `fn`/`setup` importable on the workers (practicum installed
on every node; on a local instance the driver's `sys.path` is passed to the workers).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from practicum.engine.worker import Outcome, check_positions, resolve_threads, run_item, run_setup, setup_key, try_setup
from practicum.errors import ConfigError, RunError
from practicum.log import logger, progress_bar

ENV_PREFIX = "PRACTICUM_RAY_"
_FLOAT_OPTIONS = ("cpus_per_task", "gpus_per_task", "cpus_per_actor", "gpus_per_actor")
_INT_OPTIONS = ("num_cpus", "num_gpus", "actors", "max_retries", "object_store_memory")
OPTIONS = ("address", "threads", *_INT_OPTIONS, *_FLOAT_OPTIONS)


def _import_ray():
    try:
        import ray  # optional: practicum[ray]
    except ImportError:
        raise ConfigError("--engine ray needs Ray, which is not installed",
                          "pip install 'practicum[ray]' (or pip install ray)") from None
    return ray


def _option(name: str, value: Any, kind: type) -> Any:
    """The argument, else `PRACTICUM_RAY_<NAME>` from the environment, else None."""
    if value is None:
        text = os.environ.get(ENV_PREFIX + name.upper())
        if not text:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}={text!r} is not a {kind.__name__}",
                              f"set it to a number such as {'0.5' if kind is float else '2'}") from None
    if value < 0:
        raise ConfigError(f"Ray option {name} must not be negative, got {value}", "use 0 or more")
    return kind(value)


class RayExecutor:
    """Runs items as Ray tasks (independent runs) or on a Ray Data actor pool (with `setup`)."""

    name = "ray"

    def __init__(self, *, address: str | None = None, threads: int | None = None,
                 num_cpus: int | None = None, num_gpus: int | None = None,
                 cpus_per_task: float | None = None, gpus_per_task: float | None = None,
                 cpus_per_actor: float | None = None, gpus_per_actor: float | None = None,
                 actors: int | None = None, max_retries: int | None = None,
                 object_store_memory: int | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.threads = threads
        values = dict(num_cpus=num_cpus, num_gpus=num_gpus, cpus_per_task=cpus_per_task,
                      gpus_per_task=gpus_per_task, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                      actors=actors, max_retries=max_retries, object_store_memory=object_store_memory)
        for key, value in values.items():
            setattr(self, key, _option(key, value, float if key in _FLOAT_OPTIONS else int))
        if self.actors == 0:
            raise ConfigError("Ray option actors must be at least 1", "use 1 or more, or leave it unset")
        self.max_retries = 3 if self.max_retries is None else self.max_retries
        self._started_ray = False

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Connect to the cluster (or start a private local instance) unless Ray is already up."""
        ray = _import_ray()
        if ray.is_initialized():
            return ray
        # Worker output (library warnings, each worker's own logs) reaches the terminal only with
        # --verbose: errors come back as exceptions anyway.
        common = dict(include_dashboard=False, logging_level=logging.WARNING, configure_logging=True,
                      log_to_driver=logger.isEnabledFor(logging.DEBUG))
        if self.address:
            logger.info("connecting to the Ray cluster at %s", self.address)
            try:
                ray.init(address=self.address, **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot connect to the Ray cluster at {self.address} ({str(exc)[:200]})",
                                  "start it with `ray start --head` (and `ray start --address=HEAD:6379` on the "
                                  "other machines), or unset RAY_ADDRESS for a local instance") from None
        else:
            # address="local" never attaches to another user's instance on a shared machine.
            paths = [p for p in sys.path if p and os.path.isdir(p)]
            ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                     object_store_memory=self.object_store_memory,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}, **common)
        self._started_ray = True
        atexit.register(self.close)
        return ray

    def close(self) -> None:
        """Shut down the Ray instance this executor started, and its actor pools (a connection made
        elsewhere, and the pools on it, are left alone: they persist for the process)."""
        if not self._started_ray:
            return
        shutdown_pools()
        ray = _import_ray()
        if ray.is_initialized():
            ray.shutdown()
        self._started_ray = False

    def __enter__(self) -> "RayExecutor":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ map
    def map(self, fn: Callable[..., Any], items: Sequence[Any], *, setup: Callable[[], Any] | None = None,
            description: str = "work") -> list[Any]:
        results: list[Any] = [None] * len(items)
        for position, value in self.imap(fn, items, setup=setup, description=description):
            results[position] = value
        return results

    def imap(self, fn: Callable[..., Any], items: Sequence[Any], *, setup: Callable[[], Any] | None = None,
             description: str = "work", positions: Sequence[int] | None = None) -> Iterator[tuple[int, Any]]:
        positions = check_positions(items, positions)
        threads = resolve_threads(self.threads)
        if not items:
            return
        ray = self.start()
        if setup is None:
            outcomes = self._run_tasks(ray, fn, items, positions, threads)
        elif _inside_ray_worker(ray):
            # Nested in a Ray task or actor (a study run that scores): an actor pool here could
            # wait forever for CPUs its parent holds, and the parent already is the parallel
            # unit, so the model-holding work runs in this process (nested tasks are fine: a
            # task blocked in ray.wait lends its CPUs back).
            outcomes = _run_in_process(fn, setup, items, positions, threads)
        else:
            outcomes = self._run_actors(ray, fn, setup, items, positions, threads)
        try:
            with progress_bar(description, len(items)) as advance:
                for outcome in outcomes:
                    advance()
                    yield outcome.position, outcome.unwrap()
        finally:
            outcomes.close()  # stop outstanding work now; a traceback may keep this frame alive

    # ------------------------------------------------------------------ resources
    def _largest_node(self, ray, resource: str) -> float:
        return max((node["Resources"].get(resource, 0.0) for node in ray.nodes() if node.get("Alive")), default=0.0)

    def _cpus(self, ray, requested: float | None, threads: int, gpus: float) -> float:
        if requested is not None:
            return requested
        if gpus > 0:
            return 1.0  # a GPU worker's CPU mostly feeds the GPU
        return float(max(1.0, min(threads, self._largest_node(ray, "CPU"))))

    def _check_gpus(self, ray, gpus: float, what: str) -> None:
        if gpus > 0 and self._largest_node(ray, "GPU") < min(gpus, 1.0):
            raise ConfigError(f"{what} asks for {gpus:g} GPU but the Ray cluster has none",
                              f"start Ray on GPU machines or set {ENV_PREFIX}{what.upper()}=0")

    # ------------------------------------------------------------------ tasks: independent runs
    def _run_tasks(self, ray, fn, items, positions, threads) -> Iterator[Outcome]:
        gpus = self.gpus_per_task or 0.0
        self._check_gpus(ray, gpus, "gpus_per_task")
        cpus = self._cpus(ray, self.cpus_per_task, threads, gpus)
        total = ray.cluster_resources()
        _release_idle_pools(ray, min(len(items) * cpus, total.get("CPU", 0.0)),
                            min(len(items) * gpus, total.get("GPU", 0.0)))
        remote = ray.remote(_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=self.max_retries)
        fn_ref = ray.put(fn)  # pickled once, not once per item
        pending = {remote.remote(fn_ref, item, position, threads): position for item, position in zip(items, positions)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    position = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # raised outside run_item (e.g. unpickling)
                        raise RunError(f"item {position} failed in a Ray worker: {exc}",
                                       "check that the function and its items can be imported and pickled") from None
                    except ray.exceptions.RayError as exc:
                        raise RunError(f"item {position} was lost after {self.max_retries} retries "
                                       f"({type(exc).__name__})",
                                       "rerun with --resume: finished shards are kept") from None
                    if outcome.error is not None:
                        for other in pending:
                            ray.cancel(other)
                        pending.clear()
                    yield outcome
        finally:
            for ref in pending:  # the caller stopped early: do not leave work running
                ray.cancel(ref)

    # ------------------------------------------------------------------ actors: model-holding work
    def _run_actors(self, ray, fn, setup, items, positions, threads) -> Iterator[Outcome]:
        gpus = self.gpus_per_actor or 0.0
        self._check_gpus(ray, gpus, "gpus_per_actor")
        cpus = self._cpus(ray, self.cpus_per_actor, threads, gpus)
        size = self.actors or self._default_actors(ray, cpus, gpus)
        pool = _get_pool(ray, setup, threads, cpus, gpus, size, self.max_retries)
        pool.grow(ray, len(items))
        fn_ref = ray.put(fn)  # pickled once, not once per item
        queue = deque(zip(items, positions))
        idle = deque(pool.actors)
        pending: dict[Any, tuple[Any, int]] = {}  # call → (actor, position)
        pool.users += 1
        try:
            while queue or pending:
                while queue and idle:  # one item per actor at a time: the next goes to whoever is free
                    actor = idle.popleft()
                    item, position = queue.popleft()
                    pending[actor.run.remote(fn_ref, item, position)] = (actor, position)
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    actor, position = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # raised outside run_item (e.g. unpickling)
                        _drop_pool(ray, pool)
                        raise RunError(f"item {position} failed on a Ray actor: {str(exc)[:300]}",
                                       "check that the function and its items can be imported and pickled") from None
                    except ray.exceptions.RayError as exc:
                        _drop_pool(ray, pool)
                        raise RunError(f"item {position} was lost on the Ray actor pool after {self.max_retries} "
                                       f"restarts ({type(exc).__name__}: {str(exc)[:300]})",
                                       "rerun with --resume: finished shards are kept") from None
                    if outcome.error is not None:
                        _drop_pool(ray, pool)  # the state may be what failed; the next call starts afresh
                        yield outcome
                        return
                    idle.append(actor)
                    yield outcome
        finally:
            pool.users -= 1
            for ref in pending:  # the caller stopped early: do not leave queued work behind
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - already finished or the actor is gone
                    pass

    def _default_actors(self, ray, cpus: float, gpus: float) -> int:
        total = ray.cluster_resources()
        if gpus > 0:
            return max(1, int(total.get("GPU", 0.0) // gpus))
        return max(1, int(total.get("CPU", 1.0) // max(cpus, 1e-6)))


def _inside_ray_worker(ray) -> bool:
    # a Ray worker process runs only tasks and actor calls (asking the driver for a task or actor
    # id logs a warning, so the mode is read instead)
    from ray._private.worker import WORKER_MODE  # optional: practicum[ray]

    return ray.get_runtime_context().worker.mode == WORKER_MODE


def _run_in_process(fn, setup, items, positions, threads) -> Iterator[Outcome]:
    state = run_setup(setup, threads)
    for item, position in zip(items, positions):
        outcome = run_item(fn, item, position, threads, state=state, with_state=True)
        yield outcome
        if outcome.error is not None:
            return


def _task(fn: Callable, item: Any, position: int, threads: int) -> Outcome:
    return run_item(fn, item, position, threads)


class _PoolActor:
    """One actor of a pool: builds the state once, then runs `fn(state, item)` per call."""

    def __init__(self, setup: Callable[[], Any], threads: int):
        self.threads = threads
        self.setup = try_setup(setup, threads)  # a failed setup is reported with the first item

    def run(self, fn: Callable, item: Any, position: int) -> Outcome:
        if self.setup.error is not None:
            return Outcome(position, error=self.setup.error, remote_traceback=self.setup.remote_traceback)
        return run_item(fn, item, position, self.threads, state=self.setup.value, with_state=True)

    def pid(self) -> int:
        return os.getpid()


class _Pool:
    """Actors sharing one setup; created on demand up to `size`."""

    def __init__(self, ray, key: tuple, setup: Callable[[], Any], threads: int, cpus: float, gpus: float,
                 size: int, max_retries: int):
        self.key, self.size, self.cpus, self.gpus = key, size, cpus, gpus
        self.setup, self.threads = setup, threads
        self.job = ray.get_runtime_context().get_job_id()
        self.actor_class = ray.remote(_PoolActor).options(num_cpus=cpus, num_gpus=gpus, max_restarts=max_retries,
                                                          max_task_retries=max_retries)
        self.actors: list[Any] = []
        self.users = 0  # map calls running on it now; a pool in use is never released

    def grow(self, ray, items: int) -> None:
        target = max(1, min(self.size, items))
        missing = target - len(self.actors)
        if missing > 0:
            _release_idle_pools(ray, missing * self.cpus, missing * self.gpus, keep=self.key)
            self.actors += [self.actor_class.remote(self.setup, self.threads) for _ in range(missing)]

    def shutdown(self, ray) -> None:
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already dead
                pass
        self.actors = []


_POOLS: dict[tuple, _Pool] = {}  # by key, least recently used first
_EXIT_HOOK = []


def _get_pool(ray, setup, threads, cpus, gpus, size, max_retries) -> _Pool:
    """The live pool for this setup and shape, or a new one."""
    from ray import cloudpickle  # optional: practicum[ray]

    job = ray.get_runtime_context().get_job_id()
    for stale in [k for k, p in _POOLS.items() if p.job != job]:  # left over from an earlier Ray instance
        del _POOLS[stale]
    fingerprint = setup_key(setup, cloudpickle.dumps)
    key = (fingerprint, threads, cpus, gpus, size, max_retries)
    pool = _POOLS.pop(key, None) if fingerprint is not None else None
    if pool is None:
        pool = _Pool(ray, key, setup, threads, cpus, gpus, size, max_retries)
        if not _EXIT_HOOK:
            atexit.register(shutdown_pools)
            _EXIT_HOOK.append(True)
    if fingerprint is not None:
        _POOLS[key] = pool  # (re)inserted last: the most recently used
    return pool


def _drop_pool(ray, pool: _Pool) -> None:
    if _POOLS.get(pool.key) is pool:
        del _POOLS[pool.key]
    pool.shutdown(ray)


def _release_idle_pools(ray, cpus: float, gpus: float, keep: tuple | None = None) -> None:
    """Shut down idle pools, least recently used first, until `cpus` and `gpus` are free (or none is left)."""
    def free() -> tuple[float, float]:
        available = ray.available_resources()
        return available.get("CPU", 0.0), available.get("GPU", 0.0)

    for key in list(_POOLS):
        pool = _POOLS[key]
        if key == keep or pool.users or not pool.actors:
            continue
        cpu, gpu = free()
        if cpu + 1e-6 >= cpus and gpu + 1e-6 >= gpus:
            return
        logger.debug("releasing an idle Ray actor pool of %d actors for other work", len(pool.actors))
        back = (cpu + len(pool.actors) * pool.cpus - 1e-6, gpu + len(pool.actors) * pool.gpus - 1e-6)
        _drop_pool(ray, pool)
        # killing is asynchronous: wait until the pool's own resources are back (not for busy work's)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            cpu, gpu = free()
            if cpu >= back[0] and gpu >= back[1]:
                break
            time.sleep(0.05)


def shutdown_pools() -> None:
    """Shut down every actor pool of this process (at exit, and when the executor that started Ray closes)."""
    pools = list(_POOLS.values())
    _POOLS.clear()
    try:
        import ray  # optional: practicum[ray]
    except ImportError:
        return
    if not ray.is_initialized():
        return
    for pool in pools:
        pool.shutdown(ray)


def pool_pids(setup: Callable[[], Any] | None = None) -> list[int]:
    """Process ids of the live pool actors (of one setup, or all): what tests and benchmarks count."""
    ray = _import_ray()
    from ray import cloudpickle  # optional: practicum[ray]

    key = None if setup is None else setup_key(setup, cloudpickle.dumps)
    actors = [a for p in _POOLS.values() if key is None or p.key[0] == key for a in p.actors]
    return ray.get([a.pid.remote() for a in actors])
