"""Issue 26: a run folder is practicum's only when marked, a failed start leaves nothing, no file names
code to import, and a resume onto changed inputs is refused."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from practicum.data import RunDir
from practicum.data.runstore import MARKER
from practicum.errors import ConfigError, ModelError, RunError
from reliability_helpers import invoke

CSV = "curve,x,y\n" + "".join(f"a,{x},{0.5 * x ** -0.3 + 0.05:.5f}\n" for x in (100, 200, 400, 800, 1600))


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`: files by their bytes, folders as None."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def user_folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in names:
        target = folder / name
        if name.endswith("/"):
            target.mkdir(parents=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"the user's own {name}\n")
    return folder


# ---------------------------------------------------------------- 1. a user's folder is never written

USER_LAYOUTS = [["config.yaml"], ["run.json"], ["metrics.jsonl"], ["inputs.json"], ["config.yaml", "run.json"],
                ["pool/shard.bin"], ["runs/a/x.txt", "figures/f.png"], ["checkpoints/"], ["pool/", "runs/", "guide/"],
                ["summary.json"], [".lock"], ["notes.txt"]]


@pytest.mark.parametrize("names", USER_LAYOUTS, ids=lambda n: "+".join(n))
@pytest.mark.parametrize("flags", [{}, {"overwrite": True}, {"resume": True}], ids=["plain", "overwrite", "resume"])
def test_a_users_folder_is_refused_and_left_byte_identical(tmp_path, names, flags):
    folder = user_folder(tmp_path, names)
    before = snapshot(folder)
    with pytest.raises(RunError, match="not a practicum run folder"):
        RunDir.create(folder, "a: 1\n", **flags)
    assert snapshot(folder) == before


def test_fit_refuses_a_folder_holding_the_users_config(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    folder = user_folder(tmp_path, ["config.yaml"])
    before = snapshot(folder)
    for extra in ([], ["--overwrite"]):
        invoke("fit", tmp_path / "c.csv", "--out", folder, "--n-boot", "0", *extra).assert_one_line_error(
            "not a practicum run folder")
    assert snapshot(folder) == before


def test_a_failed_rate_leaves_the_users_config_and_run_json(tmp_path):
    folder = user_folder(tmp_path, ["config.yaml", "run.json", "empty/"])
    before = snapshot(folder)
    outcome = invoke("rate", "--data", "digits", "--epochs", "0", "--out", folder)
    assert outcome.code == 2 and outcome.traceback is None
    assert snapshot(folder) == before


def test_root_home_and_resume_with_overwrite_are_refused(tmp_path, monkeypatch):
    (tmp_path / "c.csv").write_text(CSV)
    invoke("fit", tmp_path / "c.csv", "--out", "/").assert_one_line_error("root")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    invoke("fit", tmp_path / "c.csv", "--out", home).assert_one_line_error("home")
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--resume", "--overwrite").assert_one_line_error(
        "contradict")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "home"] and not any(home.iterdir())


def test_overwrite_removes_only_what_the_marker_lists(tmp_path):
    path = tmp_path / "run"
    with RunDir.create(path, "a: 1\n") as run:
        run.log_metric({"event": "old"})
        run.write_json("result.json", {"old": True})
        (run.sub("pool") / "x.bin").write_bytes(b"old")
        run.finish()
    marker = json.loads((path / MARKER).read_text())
    assert marker["format"] == 1 and {"config.yaml", "metrics.jsonl", "result.json", "pool"} <= set(marker["outputs"])
    (path / "notes.txt").write_text("mine")  # the user's file in the run folder
    (path / "mine").mkdir()
    with RunDir.create(path, "a: 2\n", overwrite=True) as run:
        assert run.metrics() == [] and not (path / "pool").exists() and not (path / "result.json").exists()
        run.log_metric({"event": "new"})
        with pytest.raises(RunError, match="not written by practicum"):
            run.write_json("notes.txt", {})  # never replaced
        run.finish()
    assert (path / "notes.txt").read_text() == "mine" and (path / "mine").is_dir()
    assert "notes.txt" not in json.loads((path / MARKER).read_text())["outputs"]
    assert not (path / ".practicum-replaced").exists()


def test_a_users_metrics_file_is_never_appended_to(tmp_path):
    path = tmp_path / "run"
    with RunDir.create(path, "a: 1\n") as run:
        (path / "metrics.jsonl").write_text("the user's\n")  # appears before practicum's first event
        with pytest.raises(RunError, match="not be appended"):
            run.log_metric({"event": "x"})
    assert (path / "metrics.jsonl").read_text() == "the user's\n"


# ---------------------------------------------------------------- 7. a failed start leaves nothing behind

def test_a_failed_start_is_undone_on_every_path(tmp_path):
    fresh = tmp_path / "new" / "run"
    with pytest.raises(ValueError):
        with RunDir.create(fresh, "a: 1\n"):
            raise ValueError("boom")
    assert not (tmp_path / "new").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError):
        with RunDir.create(empty, "a: 1\n") as run:
            run.sub("checkpoints")
            raise ValueError("boom")
    assert list(empty.iterdir()) == []

    done = tmp_path / "done"
    with RunDir.create(done, "a: 1\n") as run:
        run.log_metric({"event": "x"})
        run.write_json("summary.json", {"ok": 1})
        run.finish()
    before = snapshot(done)
    for failing_start in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(ValueError):
            with RunDir.create(done, "a: 1\n" if failing_start.get("resume") else "a: 2\n", **failing_start):
                if failing_start.get("overwrite"):
                    assert not (done / "summary.json").exists()  # set aside while the new run starts
                raise ValueError("boom")
    after = snapshot(done)
    assert {k: v for k, v in after.items() if k != "run.json"} == {k: v for k, v in before.items() if k != "run.json"}
    with pytest.raises(RunError, match="settings differ"):  # a refused resume touches nothing
        RunDir.create(done, "a: 3\n", resume=True)
    assert snapshot(done) == after


def test_failed_cli_starts_leave_no_folder(tmp_path, monkeypatch):
    from practicum.scaling import cli_fit
    from practicum.select import pipeline

    (tmp_path / "c.csv").write_text(CSV)

    def boom(*args, **kwargs):
        raise pipeline.DataError("simulated failure")

    monkeypatch.setattr(pipeline, "_score_with_heuristic", boom)
    invoke("score", "--data", "digits", "--scorer", "random", "--out", tmp_path / "S").assert_one_line_error("simulated")
    monkeypatch.setattr(cli_fit, "fit_one", boom)
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--n-boot", "0").assert_one_line_error("simulated")
    empty = tmp_path / "E"
    empty.mkdir()
    invoke("score", "--data", "digits", "--scorer", "random", "--out", empty).assert_one_line_error("simulated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["E", "c.csv"] and not any(empty.iterdir())


# ---------------------------------------------------------------- 2. no file names code to import

@pytest.fixture()
def saved_learner(tmp_path):
    from practicum.learn import Learner, build_model
    from practicum.learn.learner import TrainSettings

    learner = Learner(build_model("mlp", 10, (1, 8, 8), width=8, seed=0), TrainSettings.build(steps=1), seed=0)
    return learner.save(tmp_path / "learner")


@pytest.mark.parametrize("arch", ["os:_exit", "this:d", "subprocess:run", "nope"])
def test_a_learner_folder_naming_code_is_refused_and_nothing_is_imported(saved_learner, arch, capsys):
    from practicum.learn import Learner

    meta_path = saved_learner / "learner.json"
    meta = json.loads(meta_path.read_text())
    meta["model_spec"]["arch"] = arch
    meta_path.write_text(json.dumps(meta))
    had_this = "this" in sys.modules
    with pytest.raises(ModelError, match="never imports code named in a file"):
        Learner.load(saved_learner)
    assert ("this" in sys.modules) == had_this and "Zen of Python" not in capsys.readouterr().out


def test_generate_refuses_a_learner_folder_naming_os_exit(saved_learner, tmp_path):
    meta_path = saved_learner / "learner.json"
    meta = json.loads(meta_path.read_text())
    meta["model_spec"]["arch"] = "os:_exit"
    meta_path.write_text(json.dumps(meta))
    outcome = invoke("generate", "--data", "digits", "--n", "2", "--steps", "10", "--learner", saved_learner,
                     "--out", tmp_path / "G")
    outcome.assert_one_line_error("never imports code")
    assert not (tmp_path / "G").exists()


def test_a_custom_factory_is_never_saved_nor_read_back_from_a_file(tmp_path, monkeypatch):
    from practicum.config import refuse_code_names
    from practicum.learn import Learner, build_model
    from practicum.learn.learner import TrainSettings

    (tmp_path / "user_nets_rf.py").write_text("import torch.nn as nn\n"
                                         "def build(num_classes, image_shape):\n"
                                         "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    net = build_model("user_nets_rf:build", 10, (1, 8, 8), seed=0)
    folder = Learner(net, TrainSettings.build(steps=1), seed=0).save(tmp_path / "custom")
    assert "user_nets_rf" not in (folder / "learner.json").read_text()
    with pytest.raises(ModelError, match="user model"):
        Learner.load(folder)
    assert Learner.load(folder, model=build_model("user_nets_rf:build", 10, (1, 8, 8))).step == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: os:_exit\n")
    invoke("practice", "--config", bad, "--out", tmp_path / "P").assert_one_line_error("names code to import")
    with pytest.raises(ConfigError, match=r"student\.teacher_arch"):
        refuse_code_names({"student": {"teacher_arch": "m:f"}}, bad)
    assert not (tmp_path / "P").exists()


# ---------------------------------------------------------------- 3. a resume onto changed inputs is refused

def _rater(tmp_path: Path, seed: int) -> Path:
    out = tmp_path / f"rater{seed}"
    assert invoke("rate", "--data", "digits", "--epochs", "1", "--iterations-per-epoch", "2", "--batch-size", "16",
                  "--seed", str(seed), "--out", out).code == 0
    return out


def test_score_cannot_mix_two_raters(tmp_path, monkeypatch):
    """Killed mid-run, its rater replaced at the same path, resumed: refused, naming --rater."""
    from practicum.select import pipeline

    rater, other = _rater(tmp_path, 0), _rater(tmp_path, 1)
    parts_written = []
    original = pipeline._write_part

    def interrupt_after_one_part(path, *args, **kwargs):
        original(path, *args, **kwargs)
        parts_written.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_write_part", interrupt_after_one_part)
    args = ["score", "--data", "digits", "--rater", rater, "--shard-size", "200", "--out", tmp_path / "S"]
    assert invoke(*args).code == 130 and len(parts_written) == 1
    monkeypatch.setattr(pipeline, "_write_part", original)
    shutil.rmtree(rater)
    shutil.copytree(other, rater)  # the same path, another rater
    outcome = invoke("score", "--out", tmp_path / "S", "--resume")
    outcome.assert_one_line_error("--rater changed")
    assert not (tmp_path / "S" / "scores.parquet").exists()
    recorded = json.loads((tmp_path / "S" / "inputs.json").read_text())
    assert set(recorded) == {"--rater"}


@pytest.mark.parametrize("command", ["select", "dedup"])
def test_select_and_dedup_refuse_a_resume_onto_changed_scores(tmp_path, command):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    scores = tmp_path / "scores.parquet"
    rng = np.random.default_rng(0)

    def write_scores():
        pq.write_table(pa.table({"id": [f"digits-train-{i}" for i in range(40)], "label": np.arange(40) % 4,
                                 "score": rng.random(40)}), scores)

    write_scores()
    args = {"select": ["select", "--scores", scores, "--strategy", "top-k", "--keep", "0.5"],
            "dedup": ["dedup", "--data", "digits", "--priority", scores]}[command]
    assert invoke(*args, "--out", tmp_path / "R").code == 0
    recorded = json.loads((tmp_path / "R" / "inputs.json").read_text())
    assert recorded[{"select": "--scores", "dedup": "--priority"}[command]] is not None
    assert invoke(*args, "--out", tmp_path / "R", "--resume").code == 0  # unchanged: the finished run stands
    write_scores()  # new scores at the same path
    invoke(*args, "--out", tmp_path / "R", "--resume").assert_one_line_error("changed since")


def test_a_resume_refusal_names_the_setting_that_differs(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    assert invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--n-boot", "0").code == 0
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--n-boot", "3", "--resume").assert_one_line_error(
        "n_boot (0 → 3)")
