"""Issue 25 (3, 4): one path from flags to settings, one run lifecycle in `RunDir`.

Every long command takes --config and --out/-o; a bare --resume continues with the run's own
config.yaml; run-time choices (engine, device, threads) are not settings a resume compares;
checkpoints, the metrics trim and the results file each go through one `RunDir` method.
"""

import inspect
import json

import pytest
import yaml

from cli_helpers import run_cli
from practicum.cli import app
from practicum.config import Settings, given
from practicum.data import RunDir
from practicum.errors import RunError
from practicum.select.curate import CoverSettings


def _commands(group, prefix=""):
    for info in group.registered_commands:
        yield prefix + info.name, info.callback
    for sub in group.registered_groups:
        yield from _commands(sub.typer_instance, f"{prefix}{sub.name} ")


def test_every_command_with_a_run_folder_takes_config_resume_overwrite_and_short_out():
    checked = []
    for name, callback in _commands(app):
        params = inspect.signature(callback).parameters
        if "out" not in params:
            continue
        checked.append(name)
        assert "-o" in params["out"].default.param_decls, name
        assert {"config", "resume", "overwrite"} <= set(params), name
    assert {"study", "practice", "generate", "diffusion train", "distill", "rate", "score", "select", "dedup",
            "label-issues", "cover", "fit", "compare", "theory"} <= set(checked)


def test_settings_hold_the_defaults_the_help_promises():
    assert CoverSettings().balance is True  # `cover --balance` (default: yes) was None in its settings


class Inner(Settings):
    a: int = 1
    b: int = 2


class Nested(Settings):
    inner: Inner = Inner()
    seed: int = 0


def test_from_flags_merges_nested_flags_over_the_config_and_drops_unset_ones(tmp_path):
    assert given({"seed": None, "inner": {"a": None}, "x": 0}) == {"x": 0}
    config = tmp_path / "c.yaml"
    config.write_text("inner: {a: 5, b: 6}\nseed: 3\n")
    settings = Nested.from_flags(config, tmp_path / "run", False, {"inner": {"b": 9, "a": None}, "seed": None})
    assert settings.model_dump() == {"inner": {"a": 5, "b": 9}, "seed": 3}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(Nested(seed=7).to_yaml())
    assert Nested.from_flags(None, run, True, {}).seed == 7  # a bare --resume: the run's own settings
    assert Nested.from_flags(None, run, False, {}).seed == 0


def test_a_resume_ignores_run_time_choices_but_not_settings(tmp_path):
    path = tmp_path / "run"
    started = {"engine": "local", "lr": 0.1, "rater": {"device": "cpu", "threads": 1}}
    with RunDir.create(path, yaml.safe_dump(started)) as run:
        run.log_metric({"event": "eval"})
    moved = {"engine": "ray", "lr": 0.1, "rater": {"device": "cuda", "threads": 4}}
    with RunDir.create(path, yaml.safe_dump(moved), resume=True):
        pass
    with pytest.raises(RunError, match=r"rater.lr \(unset → 0.2\)"):
        RunDir.create(path, yaml.safe_dump({**moved, "rater": {"lr": 0.2}}), resume=True)


def test_run_dir_checkpoints_metrics_trim_and_results(tmp_path):
    with RunDir.create(tmp_path / "run", "a: 1\n") as run:
        assert run.latest_checkpoint() is None and run.read_results() is None
        for step in (10, 20, 20):  # the last: a final save on the last periodic checkpoint
            folder = run.save_checkpoint(f"step-{step}", lambda f, s=step: (f / "state.json").write_text(str(s)))
        assert run.latest_checkpoint() == folder and (folder / "state.json").read_text() == "20"
        assert sorted(p.name for p in folder.parent.iterdir()) == ["latest.json", "step-20"]  # step-10 went
        for i in range(5):
            run.log_metric({"event": "eval" if i % 2 else "train", "i": i})
        assert run.trim_metrics(lambda row: row["event"] == "train") == 2
        assert run.trim_metrics(2) == 1 and [m["i"] for m in run.metrics()] == [0, 2]
        run.write_results({"done": 1})
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == {"done": 1}
    old = tmp_path / "old"
    old.mkdir()
    (old / "result.json").write_text('{"points": []}')  # a practice run made before the rename
    assert RunDir(old).read_results() == {"points": []}


@pytest.fixture
def curves(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("curve,x,y\n" + "".join(f"a,{x},{0.05 + x ** -0.5:.6f}\n" for x in (100, 200, 400, 800, 1600)))
    return path


def test_fit_resumes_bare_and_on_another_engine(tmp_path, curves, monkeypatch):
    from practicum.engine import LocalExecutor
    from practicum.scaling import cli_fit

    engines = []
    monkeypatch.setattr(cli_fit, "get_executor", lambda name: engines.append(name) or LocalExecutor())
    out = str(tmp_path / "fit")
    assert run_cli("fit", str(curves), "-o", out, "--family", "M2", "--n-boot", "0") == 0
    first = json.loads((tmp_path / "fit" / "fit.json").read_text())["curves"]
    assert run_cli("fit", "-o", out, "--resume") == 0  # no CSV, no flags: the run's own settings
    assert run_cli("fit", "-o", out, "--resume", "--engine", "ray") == 0
    assert engines == ["local", "local", "ray"]
    assert json.loads((tmp_path / "fit" / "fit.json").read_text())["curves"] == first
    assert run_cli("fit", "-o", out, "--resume", "--n-boot", "5") == 2  # a setting still must match


def test_theory_resumes_bare_and_on_another_engine(tmp_path):
    out = str(tmp_path / "theory")
    assert run_cli("theory", "-o", out, "--quick", "--stages", "corollary") == 0
    summary = json.loads((tmp_path / "theory" / "summary.json").read_text())["corollary"]
    assert run_cli("theory", "-o", out, "--resume") == 0
    assert run_cli("theory", "-o", out, "--resume", "--engine", "ray") == 0
    assert json.loads((tmp_path / "theory" / "summary.json").read_text())["corollary"] == summary
