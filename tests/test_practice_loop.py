"""The DP loop with a fake generator whose hardness is controllable (fast, no diffusion model)."""

import json

import numpy as np
import pytest
import torch

from practicum.data import Dataset, RunDir
from practicum.data.pool import Pool
from practicum.practice import Generation, PracticeSettings, practice
from practicum.practice import loop as loop_module

K = 4


def _prototypes():
    g = torch.Generator().manual_seed(123)
    return torch.rand(K, 1, 6, 6, generator=g) * 2 - 1


def _real(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % K
    images = (_prototypes()[labels] + 0.6 * torch.randn(n, 1, 6, 6, generator=g)).clamp(-1, 1)
    return Dataset(images, labels, np.array([f"r{seed}-{i}" for i in range(n)]), tuple(map(str, range(K))))


class FakeGenerator:
    """Class prototype + noise; omega > 0 adds more noise (harder samples). Records its calls."""

    def __init__(self, fail_at_call=None):
        self.calls = []
        self.fail_at_call = fail_at_call

    def __call__(self, request):
        self.calls.append((request.start, len(request.labels), request.omega, request.guide is not None))
        if self.fail_at_call is not None and len(self.calls) == self.fail_at_call:
            raise KeyboardInterrupt("simulated kill during generation")
        if request.omega != 0:
            assert request.guide is not None and not request.guide.training
            assert all(not p.requires_grad for p in request.guide.parameters())
        g = torch.Generator().manual_seed(request.seed % 2**31)
        noise = (0.5 + 4 * request.omega) * torch.randn(len(request.labels), 1, 6, 6, generator=g)
        return Generation((_prototypes()[request.labels] + noise).clamp(-1, 1), 0.01 * len(request.labels))


VAL, TEST = _real(80, 1), _real(120, 2)


def _settings(**changes):
    values = {"arch": "mlp", "width": 32, "seed": 0, "initial_size": 16, "add_size": 8, "t_init": 1,
              "omega": 0.1, "eval_every": 16, "max_rounds": 4, "branch_growth": 1.0,
              "train": {"steps": 80, "batch_size": 16, "lr": 0.003}}
    values.update(changes)
    return PracticeSettings.build(values)


def _run(path, settings, generator, resume=False):
    with RunDir.create(path, settings.to_yaml(), seed=settings.seed, resume=resume) as run:
        return practice(run, settings, generator, VAL, TEST)


def _events(path, event=None):
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    rows = [{k: v for k, v in r.items() if k != "time" and not k.endswith("seconds")} for r in rows]
    return [r for r in rows if event is None or r["event"] == event]


def test_rounds_patience_and_cooldown(tmp_path):
    gen = FakeGenerator()
    settings = _settings()
    result = _run(tmp_path / "dp", settings, gen)
    injections = _events(tmp_path / "dp", "injection")
    assert len(injections) >= 2
    cooldown = settings.train.cooldown_start
    warmup = round(settings.iterations * settings.train.warmup_fraction)
    assert all(warmup <= e["step"] < cooldown for e in injections)  # nothing added in warm-up or cool-down
    sizes = [e["pool_size"] for e in injections]
    assert sizes == [16 + 8 * (i + 1) for i in range(len(sizes))]
    # proportional patience: T_max = ceil(T_init * |D| / N)
    assert [e["t_max"] for e in injections] == [int(np.ceil(s / 16)) for s in sizes]
    assert result["pool_size"] == len(Pool(tmp_path / "dp" / "pool")) == sizes[-1]
    # an injection happens only once patience ran out at the eval just before it
    evals = _events(tmp_path / "dp", "eval")
    for inj in injections:
        before = [e for e in evals if e["step"] == inj["step"]][0]
        assert before["patience"] >= before["t_max"]
    # calls: the vanilla start, then guided rounds at the pool's stream positions
    assert gen.calls[0] == (0, 16, 0.0, False)
    assert [c[0] for c in gen.calls[1:]] == [16 + 8 * i for i in range(len(injections))]
    assert all(c[2] == 0.1 and c[3] for c in gen.calls[1:])
    # branch-outs: one per round, each trained to the same budget on the data it had
    branches = [p for p in result["points"] if p["kind"] == "branch"]
    assert [b["size"] for b in branches] == [16 + 8 * i for i in range(len(injections))]
    assert all(b["final_step"] == settings.iterations for b in branches)
    assert all(0 <= b["test_accuracy"] <= 1 for b in result["points"])
    labels = Pool(tmp_path / "dp" / "pool").index()["label"].to_numpy()
    assert np.bincount(labels[:16], minlength=K).tolist() == [4] * K  # class-balanced start


def test_static_and_vanilla_variants(tmp_path):
    gen = FakeGenerator()
    result = _run(tmp_path / "static", _settings(max_rounds=0, initial_size=24), gen)
    assert result["rounds"] == 0 and result["pool_size"] == 24 and len(gen.calls) == 1
    assert [p["kind"] for p in result["points"]] == ["final"]
    assert not _events(tmp_path / "static", "injection")

    vanilla = FakeGenerator()
    _run(tmp_path / "vanilla", _settings(omega=0.0, branch_out=False), vanilla)
    assert len(vanilla.calls) > 1 and all(c[2] == 0.0 and not c[3] for c in vanilla.calls)


def test_branch_growth_spaces_snapshots(tmp_path):
    result = _run(tmp_path / "g", _settings(branch_growth=1.5), FakeGenerator())
    sizes = [p["size"] for p in result["points"] if p["kind"] == "branch"]
    assert sizes[0] == 16 and all(b >= 1.5 * a for a, b in zip(sizes, sizes[1:]))


def test_resume_after_kill_matches_uninterrupted(tmp_path, monkeypatch):
    settings = _settings(checkpoint_every=9, branch_growth=1.5)
    reference = FakeGenerator()
    _run(tmp_path / "ref", settings, reference)

    # kill 1: during the generation of a round
    killed = FakeGenerator(fail_at_call=3)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "a", settings, killed)
    resumed = FakeGenerator()
    _run(tmp_path / "a", settings, resumed, resume=True)

    # kill 2: after a round reached the pool but before its checkpoint was written
    real_checkpoint = loop_module._checkpoint
    count = {"n": 0}

    def dying_checkpoint(run, learner, state):
        count["n"] += 1
        if state.rounds == 2 and count["n"] > 1 and not hasattr(dying_checkpoint, "fired"):
            dying_checkpoint.fired = True
            raise KeyboardInterrupt("simulated kill before the checkpoint")
        return real_checkpoint(run, learner, state)

    monkeypatch.setattr(loop_module, "_checkpoint", dying_checkpoint)
    first = FakeGenerator()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", settings, first)
    monkeypatch.setattr(loop_module, "_checkpoint", real_checkpoint)
    second = FakeGenerator()
    _run(tmp_path / "b", settings, second, resume=True)
    # nothing generated twice: the round already in the pool was read back
    assert len(first.calls) + len(second.calls) == len(reference.calls)

    ref_pool = Pool(tmp_path / "ref" / "pool")
    for name in ("a", "b"):
        pool = Pool(tmp_path / name / "pool")
        assert pool.index()[["id", "label", "round"]].equals(ref_pool.index()[["id", "label", "round"]])
        assert torch.equal(pool.images(), ref_pool.images())
        assert _events(tmp_path / name) == _events(tmp_path / "ref")


def test_static_run_without_tracking_skips_periodic_evals_and_reports_tune(tmp_path):
    settings = _settings(max_rounds=0, track_val=False, branch_out=False)
    tune = _real(40, 3)
    with RunDir.create(tmp_path / "static", settings.to_yaml(), seed=0) as run:
        result = practice(run, settings, FakeGenerator(), VAL, TEST, tune=tune)
    assert _events(tmp_path / "static", "eval") == []  # no round can be added: nothing to be patient about
    (point,) = result["points"]
    assert point["size"] == 16 and 0 <= point["tune_accuracy"] <= 1 and "test_accuracy" in point


def test_val_and_test_subsets_are_fixed_and_smaller():
    settings = PracticeSettings.build({"data": "digits", "val_size": 100, "test_size": 50})
    first, again = settings.load_data("val"), settings.load_data("val")
    assert len(first) == 100 and list(first.ids) == list(again.ids)
    assert len(settings.load_data("test")) == 50 and len(settings.load_data("tune")) == 135  # tune is not cut


def test_round_one_branch_out_is_the_static_run_at_the_start_size(tmp_path):
    # the study copies the static run's point instead of training this branch-out (branch_start=False)
    dp = _run(tmp_path / "dp", _settings(branch_growth=2.0), FakeGenerator())
    static = _run(tmp_path / "static", _settings(max_rounds=0, branch_out=False, track_val=False), FakeGenerator())
    first = [p for p in dp["points"] if p["kind"] == "branch"][0]
    assert first["round"] == 1 and first["size"] == 16 == static["pool_size"]
    assert first["test_accuracy"] == static["points"][0]["test_accuracy"]
    assert first["val_accuracy"] == static["points"][0]["val_accuracy"]
    settings = _settings(branch_growth=2.0)
    with RunDir.create(tmp_path / "skip", settings.to_yaml(), seed=settings.seed) as run:
        skipped = practice(run, settings, FakeGenerator(), VAL, TEST, branch_start=False)
    sizes = [p["size"] for p in skipped["points"] if p["kind"] == "branch"]
    assert sizes and 16 not in sizes  # the same schedule, less its first snapshot
    assert sizes == [p["size"] for p in dp["points"] if p["kind"] == "branch"][1:]
