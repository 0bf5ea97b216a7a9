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
import time

import numpy as np
import pytest
import yaml

from reliability_helpers import comparable_metrics, invoke, run_and_kill
from tiny_models import TINY_UNET, save_tiny_pixel_unet

CSV = "curve,x,y,seed\n" + "".join(f"{c},{x},{a * x ** -0.3 + 0.05:.5f},{s}\n" for c, a in (("a", 0.5), ("b", 0.7))
                                   for x in (100, 200, 400, 800, 1600) for s in (0, 1))


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory):
    """A tiny random digits-shaped UNet saved as a diffusers folder (safetensors)."""
    return save_tiny_pixel_unet(tmp_path_factory.mktemp("tiny_unet"))


def kill_and_resume(args, out, seed, *, ready_file="run.json"):
    """Uninterrupted run in OUT_straight, then a run killed at a seeded point in OUT and resumed."""
    straight = out.parent / f"{out.name}_straight"
    first = invoke(*args, "--out", straight)
    assert first.code == 0, first.stderr + (first.traceback or "")
    duration = time.time() - (straight / "config.yaml").stat().st_mtime  # the run's working time
    after = random.Random(seed).uniform(0.05, 0.6) * duration  # from the moment the run folder exists
    outcome = run_and_kill([*args, "--out", out], after, ready=lambda: (out / ready_file).exists())
    assert outcome == "killed", "the run ended before the kill: make it longer"
    resumed = invoke(*args, "--out", out, "--resume")
    assert resumed.code == 0, resumed.stderr + (resumed.traceback or "")
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert comparable_metrics(out / "metrics.jsonl") == comparable_metrics(straight / "metrics.jsonl")
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
    ours, theirs = (json.loads((p / "result.json").read_text()) for p in (tmp_path / "P", straight))
    assert [{k: v for k, v in p.items() if "seconds" not in k} for p in ours["points"]] == \
        [{k: v for k, v in p.items() if "seconds" not in k} for p in theirs["points"]]


def test_fit_survives_a_kill(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    straight, _ = kill_and_resume(["fit", tmp_path / "c.csv", "--n-boot", "20"], tmp_path / "F", seed=4)
    assert json.loads((tmp_path / "F" / "fit.json").read_text())["curves"] == \
        json.loads((straight / "fit.json").read_text())["curves"]


def test_rate_survives_a_kill(tmp_path):
    """Before: an epoch logged but killed before its training state was saved was logged twice."""
    args = ["rate", "--data", "digits", "--epochs", "4", "--iterations-per-epoch", "3", "--batch-size", "16", "--proxy-warmup", "20"]
    straight, _ = kill_and_resume(args, tmp_path / "R", seed=5)
    assert (tmp_path / "R" / "checkpoints" / "rater-epoch003.safetensors").read_bytes() == \
        (straight / "checkpoints" / "rater-epoch003.safetensors").read_bytes()
