"""`practicum theory` on a small subset of stages: files, summary, resume, bad input."""

import json

import pytest

from cli_helpers import run_cli
from practicum.scaling.theory.study import TheorySettings


STAGES = "reference,corollary,descent,binning"


@pytest.fixture(scope="module")
def theory_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("theory") / "run"
    assert run_cli("theory", "--out", str(out), "--quick", "--seeds", "1", "--stages", STAGES) == 0
    return out


def test_outputs_and_summary(theory_run):
    for name in ("config.yaml", "run.json", "metrics.jsonl", "summary.json", "report.html",
                 "figures/reference.png", "figures/descent.png", "figures/binning.png"):
        assert (theory_run / name).is_file(), name
    summary = json.loads((theory_run / "summary.json").read_text())
    by_stage = summary["theorem_vs_simulation_by_stage"]
    assert set(by_stage) == {"reference", "descent"}
    assert summary["theorem_vs_simulation_max_abs_error"] == max(by_stage.values())
    assert summary["reference"]["max_abs_vs_spec"] < 6e-4  # the plotted theorem reproduces the spec's table
    assert summary["corollary"]["max_gap_away_from_peak"] < 0.002
    assert all(r["abs_gap"] < 0.05 for r in summary["binning"]["rates"])
    run = json.loads((theory_run / "run.json").read_text())
    assert run["status"] == "finished"
    html = (theory_run / "report.html").read_text()
    assert "Theorem 1 vs Monte-Carlo" in html and "data:image/png;base64" in html


def test_resume_reuses_stages_and_reproduces_summary(theory_run):
    before = (theory_run / "summary.json").read_bytes()
    stage_before = (theory_run / "stages" / "reference.json").read_bytes()
    assert run_cli("theory", "--out", str(theory_run), "--quick", "--seeds", "1", "--stages", STAGES,
                   "--resume") == 0
    assert (theory_run / "stages" / "reference.json").read_bytes() == stage_before
    assert (theory_run / "summary.json").read_bytes() == before


def test_same_seed_same_numbers(theory_run, tmp_path):
    out = tmp_path / "again"
    assert run_cli("theory", "--out", str(out), "--quick", "--seeds", "1", "--stages", "reference") == 0
    a = json.loads((theory_run / "stages" / "reference.json").read_text())
    b = json.loads((out / "stages" / "reference.json").read_text())
    assert [r["mc_mean"] for r in a["rows"]] == [r["mc_mean"] for r in b["rows"]]


def test_refuses_existing_run_and_bad_settings(theory_run, tmp_path):
    assert run_cli("theory", "--out", str(theory_run), "--quick", "--stages", STAGES) == 2
    assert run_cli("theory", "--out", str(tmp_path / "x"), "--stages", "nonsense") == 2
    assert run_cli("theory", "--out", str(tmp_path / "y"), "--engine", "spark") == 2
    assert run_cli("theory", "--out", str(theory_run), "--quick", "--seeds", "2", "--stages", STAGES,
                   "--resume") == 2  # settings differ from the run's config.yaml


def test_plan_quick_is_smaller():
    quick, full = TheorySettings(quick=True).plan(), TheorySettings().plan()
    assert quick["rules_d"] < full["rules_d"] and quick["seeds"] < full["seeds"]
    assert TheorySettings(stages=["binning", "reference"]).stages == ["reference", "binning"]


def test_config_file_and_overwrite_recompute(tmp_path):
    config = tmp_path / "theory.yaml"
    config.write_text("quick: true\nseeds: 1\nstages: [reference]\n")
    out = tmp_path / "run"
    assert run_cli("theory", "--out", str(out), "--config", str(config)) == 0
    first = json.loads((out / "stages" / "reference.json").read_text())
    assert run_cli("theory", "--out", str(out), "--config", str(config), "--seed", "4", "--overwrite") == 0
    second = json.loads((out / "stages" / "reference.json").read_text())
    assert [r["mc_mean"] for r in first["rows"]] != [r["mc_mean"] for r in second["rows"]]
    assert "seed: 4" in (out / "config.yaml").read_text()
