"""Errors, config, the run directory and the CLI's contract."""

import json
import multiprocessing as mp
import subprocess
import sys

import pytest
import yaml

from practicum.config import Settings
from practicum.data import RunDir, atomic_write_json, atomic_write_text, to_jsonable
from practicum.errors import ConfigError, PracticumError, RunError


class Demo(Settings):
    n: int = 3
    rate: float = 0.5
    name: str = "x"


def test_settings_roundtrip_and_overrides(tmp_path):
    s = Demo.build({"n": 5}, rate=None, name="y")
    assert (s.n, s.rate, s.name) == (5, 0.5, "y")
    path = tmp_path / "c.yaml"
    path.write_text(s.to_yaml())
    assert Demo.from_yaml(path) == s
    assert yaml.safe_load(s.to_yaml()) == {"n": 5, "rate": 0.5, "name": "y"}


@pytest.mark.parametrize("values", [{"n": "many"}, {"unknown": 1}])
def test_settings_errors_name_the_field(values):
    with pytest.raises(ConfigError) as err:
        Demo.build(values)
    assert isinstance(err.value, PracticumError)
    assert list(values)[0] in str(err.value)


def test_settings_bad_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("n: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Demo.from_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        Demo.from_yaml(tmp_path / "list.yaml")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    atomic_write_json(tmp_path / "b.json", {"x": float("nan"), "y": (1, 2)})
    assert (tmp_path / "a.txt").read_text() == "two"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": None, "y": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json"]


def test_to_jsonable_numpy_and_torch():
    import numpy as np
    import torch

    out = to_jsonable({"a": np.float32(1.5), "b": np.arange(2), "c": torch.tensor([1.0, float("inf")])})
    assert out == {"a": 1.5, "b": [0, 1], "c": [1.0, None]}


def test_run_dir_create_resume_and_refuse(tmp_path):
    path = tmp_path / "run"
    with RunDir.create(path, "a: 1\n", seed=7) as run:
        run.log_metric({"event": "eval", "acc": 0.5})
        run.finish()
    info = json.loads((path / "run.json").read_text())
    assert info["status"] == "finished" and info["seed"] == 7 and "versions" in info
    with pytest.raises(RunError, match="--resume"):
        RunDir.create(path, "a: 1\n")
    with pytest.raises(RunError, match="settings differ"):
        RunDir.create(path, "a: 2\n", resume=True)
    # a torn last line (crash mid-append) is dropped on resume
    with open(path / "metrics.jsonl", "a") as handle:
        handle.write('{"event": "ev')
    with RunDir.create(path, "a: 1\n", resume=True) as run:
        assert [m["acc"] for m in run.metrics("eval")] == [0.5]
        assert (path / "metrics.jsonl").read_text().endswith("\n")
        assert run.read_json("run.json")["resumed"] == 1
    with RunDir.create(path, "a: 2\n", overwrite=True) as run:
        assert run.metrics() == []


def test_failed_run_is_marked(tmp_path):
    with pytest.raises(ValueError):
        with RunDir.create(tmp_path / "r", "a: 1\n") as run:
            run.log_metric({"event": "step"})  # some output: the run is kept, marked failed
            raise ValueError("boom")
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"


def test_failure_before_any_output_leaves_no_folder(tmp_path):
    with pytest.raises(ValueError):
        with RunDir.create(tmp_path / "a" / "r", "a: 1\n"):
            raise ValueError("boom")
    assert not (tmp_path / "a").exists()  # every folder the run created is gone


def _hold_lock(path, ready, release):
    run = RunDir(path)
    run.acquire()
    ready.set()
    release.wait(10)
    run.release()


def test_second_process_cannot_write_a_locked_run(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path / "r"), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(RunError, match="another process"):
            RunDir(tmp_path / "r").acquire()
    finally:
        release.set()
        proc.join(10)
    RunDir(tmp_path / "r").acquire()  # free again once the holder is gone


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "practicum", *args], capture_output=True, text=True, timeout=120)


def test_cli_version_and_help():
    out = _cli("--version")
    assert out.returncode == 0 and out.stdout.strip().startswith("practicum ")
    out = _cli("--help")
    assert out.returncode == 0 and "Usage" in out.stdout


def test_cli_unknown_command_exits_2():
    out = _cli("no-such-command")
    assert out.returncode == 2


def test_cli_start_does_not_import_torch():
    # `practicum --help` stays fast because packages export lazily (practicum._lazy).
    code = "import sys, practicum.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False"


def test_lazy_exports_resolve_and_refuse_clashes():
    import practicum.learn as learn
    from practicum._lazy import lazy_exports

    assert "train_classifier" in dir(learn) and callable(learn.train_classifier)
    with pytest.raises(AttributeError, match="no attribute"):
        learn.not_there  # noqa: B018
    with pytest.raises(ImportError, match="share a name"):
        lazy_exports("pkg", {"families": ["families"]})
