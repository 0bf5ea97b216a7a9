"""run_shards and the per-item determinism wrapper, on the in-process engine (fast, no Ray)."""

import random

import numpy as np
import pytest
import torch

from practicum.engine import LocalExecutor, get_executor, resolve_threads, run_shards, shard_paths, shard_seed
from practicum.engine.shards import Codec
from practicum.errors import ConfigError, RunError


def _noisy_arrays(seed):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(3, 2)).astype(np.float32), "y": rng.integers(0, 10, size=3)}


def _record(item):
    return {"seed": item["seed"], "value": float(np.random.default_rng(item["seed"]).normal())}


def _counting(item):
    """Leaves one marker file per call, so a test can count how often each shard was computed."""
    marker = item["calls"] / f"{item['name']}-{len(list(item['calls'].glob(item['name'] + '-*')))}"
    marker.touch()
    if item.get("fail"):
        raise ConfigError(f"shard {item['name']} was told to fail", "clear the flag")
    return {"name": item["name"]}


def _global_draws(_item):
    # Uses the global generators on purpose: the engine seeds them per item.
    return [random.random(), float(np.random.rand()), float(torch.rand(1))]


def _threads(_item):
    return torch.get_num_threads()


def _offset_scores(state, item):
    return float(state["offset"] + item)


def _load_offset():
    return {"offset": 100.0}


def test_run_shards_writes_one_file_per_item_and_returns_them_in_order(tmp_path):
    items = [shard_seed(3, 0, s) for s in range(4)]
    out = run_shards(LocalExecutor(), _noisy_arrays, items, tmp_path / "pool", codec="arrays")
    assert [p.name for p in sorted((tmp_path / "pool").iterdir())] == [f"shard-0000{i}.safetensors" for i in range(4)]
    for seed, shard in zip(items, out):
        np.testing.assert_array_equal(shard["x"], _noisy_arrays(seed)["x"])
        np.testing.assert_array_equal(shard["y"], _noisy_arrays(seed)["y"])


def test_rerun_skips_finished_shards_and_recomputes_only_the_missing(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    items = [{"name": f"s{i}", "calls": calls, "fail": i == 2} for i in range(4)]
    with pytest.raises(ConfigError, match="shard s2 was told to fail"):
        run_shards(LocalExecutor(), _counting, items, tmp_path / "out", name_of=lambda item: item["name"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0.json", "s1.json"]
    # a torn write from a killed writer is cleaned up, never read as a shard
    (tmp_path / "out" / ".s3.json.abc123.tmp").write_text('{"name": "to')
    for item in items:
        item["fail"] = False
    result = run_shards(LocalExecutor(), _counting, items, tmp_path / "out", name_of=lambda item: item["name"])
    assert result == [{"name": f"s{i}"} for i in range(4)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"s{i}.json" for i in range(4)]
    # s0, s1 once; s2 failed once then ran once; s3 once: nothing lost, nothing computed twice
    counts = {f"s{i}": len(list(calls.glob(f"s{i}-*"))) for i in range(4)}
    assert counts == {"s0": 1, "s1": 1, "s2": 2, "s3": 1}
    # a third run computes nothing
    run_shards(LocalExecutor(), _counting, items, tmp_path / "out", name_of=lambda item: item["name"])
    assert len(list(calls.iterdir())) == 5


def test_resumed_run_gives_the_same_bytes_as_an_uninterrupted_one(tmp_path):
    items = [{"seed": shard_seed(0, 1, s)} for s in range(5)]
    run_shards(LocalExecutor(), _record, items, tmp_path / "whole")
    run_shards(LocalExecutor(), _record, items[:2], tmp_path / "resumed")
    run_shards(LocalExecutor(), _record, items, tmp_path / "resumed")
    for a, b in zip(shard_paths(tmp_path / "whole", items), shard_paths(tmp_path / "resumed", items)):
        assert a.read_bytes() == b.read_bytes()


def test_global_generators_are_seeded_by_position_not_by_history():
    executor = LocalExecutor()
    both = executor.map(_global_draws, [0, 1])
    second_alone = list(executor.imap(_global_draws, [1], positions=[1]))
    assert second_alone == [(1, both[1])]
    assert both[0] != both[1]


def test_local_executor_restores_the_callers_state():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    threads = torch.get_num_threads()
    assert LocalExecutor(threads=1).map(_threads, [0, 1]) == [1, 1]
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(1), expected)


def test_setup_state_is_built_once_and_passed_to_every_item():
    assert LocalExecutor().map(_offset_scores, [1, 2, 3], setup=_load_offset) == [101.0, 102.0, 103.0]


def test_threads_come_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("PRACTICUM_THREADS", "3")
    assert resolve_threads(None) == 3 and resolve_threads(1) == 1
    monkeypatch.setenv("PRACTICUM_THREADS", "many")
    with pytest.raises(ConfigError, match="PRACTICUM_THREADS"):
        resolve_threads(None)
    with pytest.raises(ConfigError, match="at least 1"):
        resolve_threads(0)


def test_bad_shard_names_values_and_codecs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a plain file name"):
        run_shards(LocalExecutor(), _record, [{"seed": 1}], tmp_path, name_of=lambda item: "../escape")
    with pytest.raises(ConfigError, match="same name"):
        run_shards(LocalExecutor(), _record, [{"seed": 1}, {"seed": 2}], tmp_path, name_of=lambda item: "same")
    with pytest.raises(ConfigError, match="not an array"):
        run_shards(LocalExecutor(), _record, [{"seed": 1}], tmp_path / "a", codec="arrays")
    with pytest.raises(ConfigError, match="not a dict of arrays"):
        run_shards(LocalExecutor(), _threads, [0], tmp_path / "b", codec="arrays")
    with pytest.raises(ConfigError, match="unknown shard codec"):
        run_shards(LocalExecutor(), _record, [{"seed": 1}], tmp_path, codec="pickle")
    with pytest.raises(ConfigError, match="no option"):
        get_executor("local", gpus_per_actor=1)


def test_a_corrupt_shard_is_reported_not_silently_used(tmp_path):
    (tmp_path / "shard-00000.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        run_shards(LocalExecutor(), _record, [{"seed": 1}], tmp_path)


def test_custom_codec(tmp_path):
    text = Codec(".txt", lambda path, value: path.write_text(str(value)), lambda path: path.read_text())
    assert run_shards(LocalExecutor(), _threads, [0], tmp_path, codec=text) == [str(resolve_threads(None))]
