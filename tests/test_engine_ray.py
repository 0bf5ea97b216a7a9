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

pytest.importorskip("ray", reason="the practicum[ray] extra is not installed")


@pytest.fixture(scope="session")
def ray_session():
    executor = RayExecutor(num_cpus=2)
    executor.start()
    yield executor
    executor.close()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Items run at the driver's thread count: one, so two Ray workers share the two cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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


def _threads(_item):
    return torch.get_num_threads()


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


def test_identical_at_two_threads_too(ray_session, tmp_path):
    items = [{"seed": shard_seed(12, 0, s)} for s in range(2)]
    ray_two = RayExecutor(threads=2)
    run_shards(LocalExecutor(threads=2), _train_tiny_net, items, tmp_path / "local2", codec="arrays")
    run_shards(ray_two, _train_tiny_net, items, tmp_path / "ray2", codec="arrays")
    two = _bytes_of(shard_paths(tmp_path / "local2", items, codec="arrays"))
    assert _bytes_of(shard_paths(tmp_path / "ray2", items, codec="arrays")) == two
    assert ray_two.map(_threads, [0]) == [2]


def test_map_keeps_order_and_handles_no_items(ray_session):
    assert ray_session.map(_square, list(range(10))) == [i * i for i in range(10)]
    assert ray_session.map(_square, []) == []
    assert get_executor("ray").map(_square, [3]) == [9]


def test_nested_maps_do_not_deadlock_on_two_cpus(ray_session):
    # the outer task asks for both CPUs; the inner maps must still run
    outer = RayExecutor(cpus_per_task=2)
    assert outer.map(_outer_run, [3]) == [[9, _score_total(_load_scorer(), 3)]]


def test_score_on_ray_writes_the_same_bytes_as_local(ray_session, tmp_path):
    """`practicum score --engine ray`: workers get their rows alone (`ShardRows`), same scores.parquet."""
    from practicum.select import pipeline
    from practicum.select.rater import RaterSettings, RaterTrainer, rater_meta, save_rater

    trainer = RaterTrainer(RaterSettings(), (1, 8, 8), 10)
    save_rater(tmp_path / "r.safetensors", trainer.rater, rater_meta(trainer, 0))
    config = pipeline.ScoreSettings(rater=str(tmp_path / "r.safetensors"), mode="group", shard_size=300,
                                  batch_size=64, source=pipeline.DataSettings(data="digits", defects=True))
    for engine in ("local", "ray"):
        pipeline.run_score(config, tmp_path / engine, engine=engine)
    assert len(list((tmp_path / "ray" / "parts").glob("part-*.parquet"))) == 4
    assert (tmp_path / "ray" / "scores.parquet").read_bytes() == (tmp_path / "local" / "scores.parquet").read_bytes()


# ---------------------------------------------------------------- failures

def test_a_killed_task_worker_loses_and_duplicates_nothing(ray_session, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    items = [{"shard": s, "seed": shard_seed(1, 0, s), "dir": work, "kill": s == 3, "driver_pid": os.getpid()}
             for s in range(5)]
    remote = run_shards(ray_session, _die_once, items, tmp_path / "ray")
    assert sorted(p.name for p in work.glob("killed-*")) == ["killed-3"]  # a worker really died mid-run
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
    pool = RayExecutor(actors=1, cpus_per_actor=0.5)
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


def _counted_scorer(folder):
    """`_load_scorer` that leaves one file per call, so a test can count how often setup ran."""
    import uuid

    (folder / f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return _load_scorer()


def _needs_both_cpus(item):
    return item + 1


def test_an_actor_pool_is_set_up_once_across_map_calls_and_gives_way_to_tasks(ray_session, tmp_path):
    """Two map calls with the same setup share the pool's warm actors (setup ran once per actor);
    an idle pool is released when tasks need its CPUs, instead of starving them."""
    from functools import partial

    from practicum.engine.ray_executor import pool_pids

    setup = partial(_counted_scorer, tmp_path)
    items = [{"seed": shard_seed(9, 0, s), "n": 20} for s in range(4)]
    pool = RayExecutor(actors=2, cpus_per_actor=0.5)
    first = pool.map(_score_chunk, items, setup=setup)
    pids = sorted(pool_pids(setup))
    second = RayExecutor(actors=2, cpus_per_actor=0.5).map(_score_chunk, items, setup=setup)  # a new executor
    assert len(list(tmp_path.glob("setup-*"))) == 2  # once per actor, not once per call
    assert sorted(pool_pids(setup)) == pids and len(set(pids)) == 2
    local = LocalExecutor().map(_score_chunk, items, setup=setup)
    for a, b, c in zip(local, first, second):
        assert a["entropy"].tobytes() == b["entropy"].tobytes() == c["entropy"].tobytes()
    assert {int(r["pid"][0]) for r in first + second} == set(pids)
    # tasks asking for both CPUs: the idle pool (1 CPU) must give way, not deadlock them
    assert RayExecutor(cpus_per_task=2).map(_needs_both_cpus, [1, 2]) == [2, 3]
    assert pool_pids(setup) == []


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
    with pytest.raises(ConfigError, match="no option gpus"):
        get_executor("ray", gpus=1)


# ---------------------------------------------------------------- end to end: `practicum study --engine ray`

TIMING_KEYS = ("seconds", "peak_memory_mb", "cost")


def _without_timings(value, out):
    """summary.json with wall-clock figures dropped and the run folder's own path cut out."""
    if isinstance(value, dict):
        return {k: _without_timings(v, out) for k, v in value.items() if not any(t in k for t in TIMING_KEYS)}
    if isinstance(value, list):
        return [_without_timings(v, out) for v in value]
    if isinstance(value, str):
        return value.replace(str(out), "<out>")
    return value


def _tiny_diffusers_folder(path):
    """A randomly initialised class-conditional pixel UNet saved as a diffusers folder, so Ray
    workers can load it (an in-process registered model would not exist there)."""
    import json

    from diffusers import UNet2DModel

    from practicum.diffusion.builtin import BUILTIN_SCHEDULER_CONFIG

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                           block_out_channels=[8, 16], down_block_types=["DownBlock2D", "DownBlock2D"],
                           up_block_types=["UpBlock2D", "UpBlock2D"], norm_num_groups=4, num_class_embeds=11)
    unet.save_pretrained(path)
    (path / "scheduler_config.json").write_text(json.dumps(dict(BUILTIN_SCHEDULER_CONFIG)))
    return path


def test_study_on_ray_writes_the_same_summary_as_local(ray_session, tmp_path):
    """`practicum study --engine ray` vs `--engine local`, timings aside.

    Smallest settings the study accepts (not --quick, which takes minutes on 2 cores): one seed,
    static at two sizes and DP, whose guided rounds sample from a tiny diffusers model inside the
    Ray workers."""
    import json

    import yaml

    from practicum.cli import main

    model = _tiny_diffusers_folder(tmp_path / "tiny-unet")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({
        "data": "digits", "seeds": 1, "static_sizes": [20, 40], "strategies": ["static", "dp"],
        "practice": {"initial_size": 20, "add_size": 10, "eval_every": 20, "t_init": 1, "arch": "mlp", "width": 16,
                     "train": {"steps": 40, "batch_size": 16},
                     "generator": {"model": str(model), "steps": 3, "every": 1}}}))
    summaries = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        try:
            main(["--quiet", "study", "--config", str(config), "--out", str(out), "--engine", engine])
        except SystemExit as exc:
            assert not exc.code, f"practicum study --engine {engine} exited with {exc.code}"
        summaries[engine] = _without_timings(json.loads((out / "summary.json").read_text()), out)
    assert summaries["ray"] == summaries["local"]
    dp_points = [p for p in summaries["ray"]["points"] if p["strategy"] == "dp"]
    assert max(p["rounds"] for p in dp_points) >= 1  # guided rounds really ran in the workers
