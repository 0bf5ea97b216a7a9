"""--track mlflow / tensorboard: the values read back with each library's own reader are metrics.jsonl's."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import run_cli
from practicum.errors import ConfigError
from practicum.diffusion.service import register_model
from practicum.tracking import scalars, tracking


@pytest.fixture(scope="module")
def tiny_model():
    """A tiny random class-conditional 8x8 pixel UNet registered in-process as 'tiny-track'."""
    from diffusers import UNet2DModel

    from practicum.diffusion.builtin import BUILTIN_SCHEDULER_CONFIG
    from practicum.diffusion.denoisers import PixelUNetDenoiser
    from tiny_models import TINY_UNET

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, num_class_embeds=11, **TINY_UNET)
    den = PixelUNetDenoiser(unet, BUILTIN_SCHEDULER_CONFIG, num_classes=10, null_class=10, image_shape=(1, 8, 8))
    yield register_model("tiny-track", den.eval())
    register_model("tiny-track", None)


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _series(rows, event, field):
    """(step, value) of one field of one event kind, as metrics.jsonl holds it."""
    chosen = [r for r in rows if r["event"] == event]
    return [(r.get("step", i), float(r[field])) for i, r in enumerate(chosen)]


def test_an_event_becomes_numeric_scalars_at_its_step():
    seen = {}
    step, values = scalars({"event": "eval", "time": 5.0, "step": 40, "val_accuracy": 0.5, "improved": True,
                            "note": "text", "sizes": [1, 2], "seconds": {"train": 2.5}}, seen)
    assert step == 40
    assert values == {"eval/val_accuracy": 0.5, "eval/improved": 1.0, "eval/seconds/train": 2.5}
    # events without a step are numbered in order of their kind
    assert scalars({"event": "branch", "size": 10}, seen)[0] == 0
    assert scalars({"event": "branch", "size": 20}, seen) == (1, {"branch/size": 20.0})


def test_an_unknown_or_missing_tracker_is_one_clear_error(monkeypatch):
    with pytest.raises(ConfigError, match="unknown tracker"):
        with tracking("wandb"):
            pass
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'practicum\[mlflow\]'"):
        with tracking("mlflow"):
            pass
    assert run_cli("practice", "--track", "mlflow", "--out", "unused") == 2


PRACTICE = ["--iterations", "40", "--initial-size", "20", "--add-size", "10", "--t-init", "1", "--arch", "mlp",
            "--max-rounds", "2", "--data", "digits"]


def _mlflow_client(out, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient((out / "mlruns").resolve().as_uri())


def _mlflow_runs(client):
    experiment = client.get_experiment_by_name("practicum")
    return {r.data.tags["practicum.run_dir"]: r for r in client.search_runs([experiment.experiment_id])}


def test_practice_tracked_in_mlflow_reads_back_as_metrics_jsonl(tmp_path, tiny_model, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "dp"
    assert run_cli("practice", "--out", str(out), "--model", tiny_model, "--track", "mlflow", *PRACTICE) == 0
    rows = _rows(out)
    client = _mlflow_client(out, monkeypatch)
    runs = _mlflow_runs(client)
    assert list(runs) == [str(out.resolve())] and runs[str(out.resolve())].info.status == "FINISHED"
    run_id = runs[str(out.resolve())].info.run_id
    checked = [("eval", "val_accuracy"), ("eval", "train_loss"), ("injection", "pool_size"),
               ("injection", "new_entropy_mean"), ("final", "test_accuracy")]
    assert _series(rows, "injection", "pool_size")  # patience really added rounds
    for event, field in checked:
        logged = [(m.step, m.value) for m in client.get_metric_history(run_id, f"{event}/{field}")]
        assert sorted(logged) == sorted(_series(rows, event, field)), (event, field)
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "summary.json"} <= artifacts


def test_practice_tracked_in_tensorboard_reads_back_as_metrics_jsonl(tmp_path, tiny_model):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "dp"
    assert run_cli("practice", "--out", str(out), "--model", tiny_model, "--track", "tensorboard", *PRACTICE) == 0
    rows = _rows(out)
    events = EventAccumulator(str(out / "tensorboard" / "dp")).Reload()
    for event, field in [("eval", "val_accuracy"), ("eval", "patience"), ("injection", "pool_size"),
                         ("final", "val_accuracy")]:
        logged = [(s.step, s.value) for s in events.Scalars(f"{event}/{field}")]
        expected = _series(rows, event, field)
        assert [s for s, _ in logged] == [s for s, _ in expected]
        assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)  # float32 in TB


def test_study_tracked_in_mlflow_nests_each_strategy_run(tmp_path, tiny_model, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = {"data": "digits", "seeds": 1, "static_sizes": [20, 40], "prune_ratio": 2,
              "practice": {"initial_size": 20, "add_size": 10, "eval_every": 20, "t_init": 1, "arch": "mlp",
                           "width": 16, "train": {"steps": 40, "batch_size": 16},
                           "generator": {"model": tiny_model, "steps": 3, "every": 1}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "study"
    assert run_cli("study", "--config", str(tmp_path / "study.yaml"), "--out", str(out), "--track", "mlflow") == 0
    client = _mlflow_client(out, monkeypatch)
    runs = _mlflow_runs(client)
    study = runs.pop(str(out.resolve()))
    assert runs and all(path.startswith(str(out.resolve())) for path in runs)  # one per strategy run
    dp = [path for path in runs if "/dp" in path]
    assert dp
    for path, run in runs.items():
        assert run.data.tags["mlflow.parentRunId"] == study.info.run_id
        logged = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "final/test_accuracy")]
        assert logged == _series(_rows(Path(path)), "final", "test_accuracy")
    for path in dp:
        logged = client.get_metric_history(runs[path].info.run_id, "eval/val_accuracy")
        assert sorted((m.step, m.value) for m in logged) == _series(_rows(Path(path)), "eval", "val_accuracy")
    figures = {a.path for a in client.list_artifacts(study.info.run_id, "figures")}
    assert figures and all(name.endswith(".png") for name in figures)
    assert "summary.json" in {a.path for a in client.list_artifacts(study.info.run_id)}


def test_python_api_tracks_any_run_and_marks_a_failed_one(tmp_path, monkeypatch):
    from practicum.data import RunDir

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = RunDir(tmp_path / "mine")
    run.path.mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        with tracking("mlflow"):
            run.log_metric({"event": "eval", "step": 3, "val_accuracy": 0.25})
            run.log_metric({"event": "eval", "step": 6, "val_accuracy": 0.5})
            raise RuntimeError("boom")
    client = _mlflow_client(run.path, monkeypatch)  # the store went to the first run folder
    [tracked] = _mlflow_runs(client).values()
    assert tracked.info.status == "FAILED"
    history = client.get_metric_history(tracked.info.run_id, "eval/val_accuracy")
    assert [(m.step, m.value) for m in history] == [(3, 0.25), (6, 0.5)]
