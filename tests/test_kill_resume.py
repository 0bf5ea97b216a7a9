"""Kill -9 at a random (seeded) moment, resume, and compare with an uninterrupted run (issue 17).

One fast test per resumable command that does real work in steps: `diffusion train`,
`generate` (guide training and shards), `practice` and `fit`. The kill lands at a seeded
fraction of the uninterrupted run's own duration; whatever it hits (a checkpoint write, a
shard append, a metrics line), the resumed run must end with the same weights, pool, results
and metrics (wall-clock fields aside). The exhaustive version (many kill points per command)
is benchmarks/reliability.py.
"""

from __future__ import annotations

import json
import random
import shutil
import time

import numpy as np
import pytest
import yaml

from reliability_helpers import _drop_timing, comparable_metrics, invoke, run_and_kill
from tiny_models import TINY_UNET, save_tiny_pixel_unet

CSV = "curve,x,y,seed\n" + "".join(f"{c},{x},{a * x ** -0.3 + 0.05:.5f},{s}\n" for c, a in (("a", 0.5), ("b", 0.7))
                                   for x in (100, 200, 400, 800, 1600) for s in (0, 1))


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory):
    """A tiny random digits-shaped UNet saved as a diffusers folder (safetensors)."""
    return save_tiny_pixel_unet(tmp_path_factory.mktemp("tiny_unet"))


def kill_and_resume(args, out, seed, *, ready_file="run.json", paths=()):
    """Uninterrupted run in OUT_straight, then a run killed at a seeded point in OUT and resumed."""
    straight = out.parent / f"{out.name}_straight"
    first = invoke(*args, "--out", straight)
    assert first.code == 0, first.stderr + (first.traceback or "")
    duration = time.time() - (straight / "config.yaml").stat().st_mtime  # the run's working time
    after = random.Random(seed).uniform(0.05, 0.6) * duration  # from the moment the run folder exists
    # the straight run's duration is a guess at the killed one's (a loaded machine slows either): a run
    # that finished before its kill is started again and killed sooner
    for shrink in (1.0, 0.3, 0.1):
        outcome = run_and_kill([*args, "--out", out], after * shrink, ready=lambda: (out / ready_file).exists())
        if outcome == "killed":
            break
        shutil.rmtree(out)
    assert outcome == "killed", "the run ended before the kill: make it longer"
    resumed = invoke(*args, "--out", out, "--resume")
    assert resumed.code == 0, resumed.stderr + (resumed.traceback or "")
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    ours, theirs = (comparable_metrics(p / "metrics.jsonl") for p in (out, straight))
    for row in ours + theirs:  # fields naming a file in the run folder differ by the folder's name only
        for key in paths:
            row.pop(key, None)
    assert ours == theirs
    return straight, outcome


def test_diffusion_train_survives_a_kill(tmp_path):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({"unet": TINY_UNET, "batch_size": 8, "warmup": 2, "checkpoint_every": 4,
                                      "steps": 24}))
    straight, _ = kill_and_resume(["diffusion", "train", "--data", "digits", "--config", config],
                                  tmp_path / "D", seed=1)
    assert (tmp_path / "D" / "denoiser.safetensors").read_bytes() == (straight / "denoiser.safetensors").read_bytes()


def test_generate_survives_a_kill(tmp_path, tiny_model_folder):
    from practicum.data.pool import Pool

    config = tmp_path / "g.yaml"
    config.write_text(yaml.safe_dump({"guide_steps": 250, "guide_arch": "mlp"}))
    args = ["generate", "--n", "24", "--shard-size", "3", "--steps", "3", "--model", tiny_model_folder,
            "--data", "digits", "--config", config]
    straight, _ = kill_and_resume(args, tmp_path / "G", seed=2)
    a, b = Pool(tmp_path / "G" / "pool").to_dataset(), Pool(straight / "pool").to_dataset()
    assert np.array_equal(a.images.numpy(), b.images.numpy()) and a.ids.tolist() == b.ids.tolist()
    assert a.labels.tolist() == b.labels.tolist()


def test_practice_survives_a_kill(tmp_path, tiny_model_folder):
    args = ["practice", "--model", tiny_model_folder, "--data", "digits", "--iterations", "60",
            "--initial-size", "20", "--add-size", "10", "--t-init", "1", "--arch", "mlp", "--max-rounds", "3"]
    straight, _ = kill_and_resume(args, tmp_path / "P", seed=3)
    ours, theirs = (json.loads((p / "summary.json").read_text()) for p in (tmp_path / "P", straight))
    assert [{k: v for k, v in p.items() if "seconds" not in k} for p in ours["points"]] == \
        [{k: v for k, v in p.items() if "seconds" not in k} for p in theirs["points"]]


def test_fit_survives_a_kill(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    straight, _ = kill_and_resume(["fit", tmp_path / "c.csv", "--n-boot", "20"], tmp_path / "F", seed=4)
    assert json.loads((tmp_path / "F" / "fit.json").read_text())["curves"] == \
        json.loads((straight / "fit.json").read_text())["curves"]


def test_rate_survives_a_kill(tmp_path):
    """Before: an epoch logged but killed before its training state was saved was logged twice."""
    args = ["rate", "--data", "digits", "--proxy", "classifier", "--epochs", "4", "--iterations-per-epoch", "3", "--batch-size", "16", "--proxy-warmup", "20"]
    straight, _ = kill_and_resume(args, tmp_path / "R", seed=5)
    assert (tmp_path / "R" / "checkpoints" / "rater-epoch003.safetensors").read_bytes() == \
        (straight / "checkpoints" / "rater-epoch003.safetensors").read_bytes()


def _no_duplicate_rows(path) -> None:
    rows = [json.dumps(row, sort_keys=True) for row in comparable_metrics(path)]
    assert len(rows) == len(set(rows)), "a resumed run logged an event twice"


def test_study_survives_a_kill(tmp_path, tiny_model_folder):
    """Before: a study killed after its last event logged the phase event again on resume."""
    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({
        "data": "digits", "seeds": 1, "static_sizes": [20], "strategies": ["static", "dp"],
        "practice": {"initial_size": 20, "add_size": 10, "eval_every": 20, "t_init": 1, "arch": "mlp", "width": 8,
                     "train": {"steps": 30, "batch_size": 16},
                     "generator": {"model": str(tiny_model_folder), "steps": 3, "every": 1}}}))
    straight, _ = kill_and_resume(["study", "--config", config], tmp_path / "S", seed=6)
    _no_duplicate_rows(tmp_path / "S" / "metrics.jsonl")
    ours, theirs = (json.loads((p / "summary.json").read_text()) for p in (tmp_path / "S", straight))
    assert _drop_timing(ours["strategies"]) == _drop_timing(theirs["strategies"])


@pytest.fixture(scope="module")
def digits_rater(tmp_path_factory):
    out = tmp_path_factory.mktemp("rater") / "rater"
    result = invoke("rate", "--data", "digits", "--epochs", "1", "--iterations-per-epoch", "2", "--batch-size", "16",
                    "--out", out)
    assert result.code == 0, result.stderr
    return out


def test_score_survives_a_kill(tmp_path, digits_rater):
    """Shards scored before the kill are kept, the rest scored on resume: the same scores, one `scored` row."""
    import pyarrow.parquet as pq

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"batch_size": 16, "shard_size": 16}))
    args = ["score", "--data", "digits", "--rater", digits_rater, "--config", config]
    straight, _ = kill_and_resume(args, tmp_path / "C", seed=7, paths=("scores",))
    _no_duplicate_rows(tmp_path / "C" / "metrics.jsonl")
    ours, theirs = (pq.read_table(p / "scores.parquet").to_pydict() for p in (tmp_path / "C", straight))
    assert ours == theirs


def test_select_survives_a_kill(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 400_000
    pq.write_table(pa.table({"id": [f"x{i}" for i in range(n)], "label": rng.integers(0, 10, n),
                             "score": rng.random(n)}), tmp_path / "scores.parquet")
    args = ["select", "--scores", tmp_path / "scores.parquet", "--strategy", "ccs", "--keep", "0.3",
            "--direction", "higher_is_harder"]
    straight, _ = kill_and_resume(args, tmp_path / "L", seed=8)
    _no_duplicate_rows(tmp_path / "L" / "metrics.jsonl")
    assert (tmp_path / "L" / "manifest.parquet").read_bytes() == (straight / "manifest.parquet").read_bytes()
