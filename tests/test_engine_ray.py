"""The Ray executor gives the bytes the local one gives, and loses no shard when a worker dies.

One local Ray instance (2 CPUs) serves the whole test session; starting it costs a few seconds.
"""

import os
import signal

import numpy as np
import pytest
import torch

from practicum.engine import LocalExecutor, get_executor, run_shards, shard_paths, shard_seed
from practicum.engine.ray_executor import RayExecutor
from practicum.errors import ConfigError, DataError

ray = pytest.importorskip("ray", reason="the practicum[ray] extra is not installed")


@pytest.fixture(scope="session")
def ray_session():
    executor = RayExecutor(num_cpus=2)
    executor.start()
    yield executor
    executor.close()


# ---------------------------------------------------------------- shard functions (top level: picklable)

def _train_tiny_net(item):
    """A seeded CPU training run, the kind of work the study shards: its bytes depend on threads."""
    gen = torch.Generator().manual_seed(item["seed"])
    x = torch.randn(64, 16, generator=gen)
    y = (x[:, 0] > 0).long()
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))  # global-RNG init
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {name: p.detach().numpy() for name, p in net.state_dict().items()}


def _load_scorer():
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).eval()


def _score_chunk(model, item):
    x = torch.randn(item["n"], 8, generator=torch.Generator().manual_seed(item["seed"]))
    with torch.no_grad():
        probs = model(x).softmax(-1)
    return {"entropy": -(probs * probs.log()).sum(-1).numpy(), "pid": np.array([os.getpid()])}


def _die_once(item):
    """Kills its own worker process the first time it runs inside Ray (never inside pytest)."""
    marker = item["dir"] / f"killed-{item['shard']}"
    if item["kill"] and os.getpid() != item["driver_pid"] and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    (item["dir"] / f"ran-{item['shard']}-{os.getpid()}-{len(list(item['dir'].glob('ran-*')))}").touch()
    return {"shard": item["shard"], "value": float(np.random.default_rng(item["seed"]).normal())}


def _score_or_die(model, item):
    if item["fail"]:
        raise DataError(f"shard {item['shard']} is malformed", f"fix shard {item['shard']}")
    _die_once(item)
    return _score_chunk(model, item)


def _fails_on_three(item):
    if item == 3:
        raise DataError("item 3 is malformed", "fix item 3")
    return item * 2


def _square(item):
    return item * item


def _outer_run(item):
    """A study-like run that itself maps work (tasks, then a model-holding map) on the same engine."""
    executor = get_executor("ray")
    return executor.map(_square, [item]) + executor.map(_score_total, [item], setup=_load_scorer)


def _score_total(model, item):
    return round(float(_score_chunk(model, {"seed": item, "n": 4})["entropy"].sum()), 6)


def _bytes_of(paths):
    return [p.read_bytes() for p in paths]


# ---------------------------------------------------------------- identical results

def test_tasks_give_the_same_bytes_as_local(ray_session, tmp_path):
    items = [{"seed": shard_seed(11, 0, s)} for s in range(4)]
    run_shards(LocalExecutor(), _train_tiny_net, items, tmp_path / "local", codec="arrays")
    run_shards(ray_session, _train_tiny_net, items, tmp_path / "ray", codec="arrays")
    local = _bytes_of(shard_paths(tmp_path / "local", items, codec="arrays"))
    assert _bytes_of(shard_paths(tmp_path / "ray", items, codec="arrays")) == local
    assert len(set(local)) == 4  # the shards really differ from each other


def test_identical_at_one_thread_too(ray_session, tmp_path):
    items = [{"seed": shard_seed(12, 0, s)} for s in range(2)]
    ray_one = RayExecutor(threads=1)
    run_shards(LocalExecutor(threads=1), _train_tiny_net, items, tmp_path / "local1", codec="arrays")
    run_shards(ray_one, _train_tiny_net, items, tmp_path / "ray1", codec="arrays")
    one = _bytes_of(shard_paths(tmp_path / "local1", items, codec="arrays"))
    assert _bytes_of(shard_paths(tmp_path / "ray1", items, codec="arrays")) == one
    assert ray_one.map(_square, [1, 2, 3]) == [1, 4, 9]


def test_map_keeps_order_and_handles_no_items(ray_session):
    assert ray_session.map(_square, list(range(10))) == [i * i for i in range(10)]
    assert ray_session.map(_square, []) == []
    assert get_executor("ray").map(_square, [3]) == [9]


def test_nested_maps_do_not_deadlock_on_two_cpus(ray_session):
    # the outer task asks for both CPUs; the inner maps must still run
    outer = RayExecutor(cpus_per_task=2)
    assert outer.map(_outer_run, [3]) == LocalExecutor().map(_outer_run, [3])


# ---------------------------------------------------------------- failures

def test_a_killed_task_worker_loses_and_duplicates_nothing(ray_session, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    items = [{"shard": s, "seed": shard_seed(1, 0, s), "dir": work, "kill": s in (1, 3), "driver_pid": os.getpid()}
             for s in range(5)]
    remote = run_shards(ray_session, _die_once, items, tmp_path / "ray")
    assert sorted(p.name for p in work.glob("killed-*")) == ["killed-1", "killed-3"]  # two workers really died
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == [f"shard-0000{s}.json" for s in range(5)]
    for item in items:
        item["kill"] = False
    assert remote == run_shards(LocalExecutor(), _die_once, items, tmp_path / "local")


def test_actor_pool_survives_a_killed_actor_and_a_failed_shard_and_matches_local(ray_session, tmp_path):
    """Model-holding work: the scorer is built once per actor; one actor is killed mid-run, one
    shard raises; the error comes back as itself, the rerun fills in exactly the missing shards."""
    work = tmp_path / "work"
    work.mkdir()
    items = [{"shard": s, "seed": shard_seed(5, 2, s), "n": 50, "dir": work, "kill": s == 2, "fail": s == 4,
              "driver_pid": os.getpid()} for s in range(6)]
    pool = RayExecutor(actors=2, cpus_per_actor=0.5)
    with pytest.raises(DataError, match="shard 4 is malformed") as info:
        run_shards(pool, _score_or_die, items, tmp_path / "ray", codec="arrays", setup=_load_scorer)
    assert info.value.fix == "fix shard 4"
    for item in items:
        item["fail"] = False
    remote = run_shards(pool, _score_or_die, items, tmp_path / "ray", codec="arrays", setup=_load_scorer)
    assert (work / "killed-2").exists()  # an actor really died
    assert {int(r["pid"][0]) for r in remote}.isdisjoint({os.getpid()})
    ran = {s: len(list(work.glob(f"ran-{s}-*"))) for s in range(6)}
    assert all(1 <= n <= 2 for n in ran.values())  # a shard reruns only if the failure cut it off
    for item in items:
        item["kill"] = False
    local = run_shards(LocalExecutor(), _score_or_die, items, tmp_path / "local", codec="arrays", setup=_load_scorer)
    for a, b in zip(local, remote):
        assert a["entropy"].tobytes() == b["entropy"].tobytes()
    assert len({r["entropy"].tobytes() for r in remote}) == 6


def test_a_user_error_in_a_task_comes_back_as_itself(ray_session):
    with pytest.raises(DataError, match="item 3 is malformed") as info:
        ray_session.map(_fails_on_three, [1, 2, 3, 4])
    assert info.value.fix == "fix item 3"


def test_options_are_validated(ray_session, monkeypatch):
    monkeypatch.setenv("PRACTICUM_RAY_GPUS_PER_ACTOR", "lots")
    with pytest.raises(ConfigError, match="PRACTICUM_RAY_GPUS_PER_ACTOR"):
        RayExecutor()
    monkeypatch.setenv("PRACTICUM_RAY_GPUS_PER_ACTOR", "1")
    assert RayExecutor().gpus_per_actor == 1.0
    with pytest.raises(ConfigError, match="has none"):  # this machine has no GPU
        RayExecutor().map(_score_chunk, [{"seed": 1, "n": 2}], setup=_load_scorer)
    with pytest.raises(ConfigError, match="must not be negative"):
        RayExecutor(cpus_per_task=-1)
