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
