import pytest

from practicum.engine import get_executor, shard_seed
from practicum.errors import ConfigError


def _square(x):
    return x * x


def test_local_map_keeps_order():
    assert get_executor("local").map(_square, [3, 1, 2]) == [9, 1, 4]


def test_shard_seed_is_stable_and_distinct():
    seeds = {shard_seed(0, r, s) for r in range(4) for s in range(8)}
    assert len(seeds) == 32
    assert shard_seed(1, 2, 3) == shard_seed(1, 2, 3) and 0 <= shard_seed(1, 2, 3) < 2**63


def test_unknown_engine():
    with pytest.raises(ConfigError, match="unknown engine"):
        get_executor("spark")



def _note_setup(folder):
    """A setup that returns its process id and leaves one file per call, so a test can count calls."""
    import os
    import uuid

    (folder / f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return os.getpid()


def _square_where_built(built_in, x):
    import os

    return x * x, built_in, os.getpid()


def _setup_that_fails():
    raise ConfigError("the model cannot be opened")


def test_local_worker_processes_build_a_setup_once_in_each_process(tmp_path):
    """With `processes > 1` and a `setup`, each worker process builds the state itself, once, and
    keeps it for its later items (a model loaded once per worker, as on Ray's actors)."""
    import os
    from functools import partial

    from practicum.engine import LocalExecutor

    items = list(range(6))
    with LocalExecutor(processes=2) as executor:
        out = executor.map(_square_where_built, items, setup=partial(_note_setup, tmp_path))
        with pytest.raises(ConfigError, match="cannot be opened"):
            executor.map(_square_where_built, items, setup=_setup_that_fails)
    assert [value for value, _, _ in out] == [x * x for x in items]
    assert all(built_in == ran_in for _, built_in, ran_in in out)  # built in the process that used it
    workers = {ran_in for _, _, ran_in in out}
    assert os.getpid() not in workers and len(list(tmp_path.glob("setup-*"))) == len(workers)
