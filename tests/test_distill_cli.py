"""`practicum distill` end to end on a tiny random model, resume, bad input, and the engine cross-check."""

import json

import numpy as np
import pytest
import torch
import yaml

from practicum.distill.methods import METHODS
from tiny_models import save_tiny_pixel_unet


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny, randomly initialised class-conditional pixel UNet saved as a local diffusers folder."""
    return save_tiny_pixel_unet(tmp_path_factory.mktemp("tiny_unet"))


def _cli(args):
    from practicum.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return exc.code
    return 0


def _config(tmp_path, model, **extra):
    values = {"data": "digits", "model": str(model), "ipc": 2, "seeds": [0, 1], "steps": 4,
              "metric_spaces": ["cosine"], "t_stop": None,
              "student": {"width": 4, "epoch_scale": 0.002, "eval_points": 2, "students": 1}, **extra}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_distill_cli_writes_the_run_and_resumes(tmp_path, tiny_model, capsys):
    out = tmp_path / "run"
    config = _config(tmp_path, tiny_model)
    assert _cli(["distill", "--config", str(config), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == list(METHODS)
    for entry in summary["methods"].values():
        for key in ("accuracy_mean", "accuracy_std", "diversity", "representativeness", "seconds"):
            assert key in entry
        assert 0.0 <= entry["accuracy_mean"] <= 1.0 and entry["seeds"] == [0, 1]
    assert (out / "report.html").stat().st_size > 1000
    assert (out / "figures" / "samples-mgd3.png").exists() and (out / "pool" / "index.parquet").exists()
    from practicum.data.pool import Pool

    pool = Pool(out / "pool")
    assert len(pool) == len(METHODS) * 2 * 10 * 2  # methods × seeds × classes × ipc
    # the generated methods share their noise: with λ the only difference, unguided ≠ mgd3
    assert not torch.equal(pool.images(["unguided-seed0"]), pool.images(["mgd3-seed0"]))
    before = (out / "results" / "mgd3-seed1.json").read_text()

    # resume after losing one unit: only that unit is redone, and it comes out the same
    (out / "results" / "mgd3-seed1.json").unlink()
    mtime = (out / "results" / "unguided-seed0.json").stat().st_mtime_ns
    assert _cli(["distill", "--out", str(out), "--resume"]) == 0
    assert (out / "results" / "unguided-seed0.json").stat().st_mtime_ns == mtime
    after = json.loads((out / "results" / "mgd3-seed1.json").read_text())
    old = json.loads(before)
    assert after["best_accuracy"] == old["best_accuracy"] and after["curve"] == old["curve"]
    assert "mgd3" in capsys.readouterr().out

    # a second run into the same folder without --resume/--overwrite is refused
    assert _cli(["distill", "--config", str(config), "--out", str(out)]) == 2


def test_distill_bad_input_is_one_clear_error(tmp_path, tiny_model, capsys):
    config = _config(tmp_path, tiny_model)
    cases = [
        (["--ipc", "500"], "fewer than ipc"),
        (["--methods", "mgd3,dreams"], "unknown or no methods"),
        (["--seeds", "a,b"], "comma-separated"),
        (["--model", str(tmp_path / "nowhere")], "does not exist"),
        (["--data", "npz:" + str(tmp_path / "missing.npz")], "does not exist"),
    ]
    for k, (args, message) in enumerate(cases):
        code = _cli(["distill", "--config", str(config), "--out", str(tmp_path / f"bad{k}"), *args])
        err = capsys.readouterr().err
        assert code == 2, args
        assert message in err and "Traceback" not in err, (args, err)


def test_latent_dit_modes_and_guided_generation():
    """A tiny random DiT + VAE: modes live in encode() space and mode guidance pulls samples to them.

    (λ is small: with 8 respaced steps a large λ overshoots the mode, the paper's "catastrophic" regime.)
    """
    from practicum.diffusion import load_denoiser
    from practicum.diffusion.service import sample_shard
    from practicum.distill.methods import class_job
    from practicum.distill.modes import class_modes

    vae = dict(in_channels=3, out_channels=3, block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
               up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=8)
    torch.manual_seed(0)
    den = load_denoiser({"kind": "dit", "vae": vae,
                         "transformer": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                             out_channels=8, num_layers=2, sample_size=4, patch_size=2,
                                             num_embeds_ada_norm=3, norm_num_groups=4)}).eval()
    assert den.learned_variance
    images = torch.rand(12, 3, 8, 8) * 2 - 1
    labels = np.repeat([0, 1], 6)
    with torch.no_grad():
        features = den.encode(images)
    assert tuple(features.shape[1:]) == tuple(den.sample_shape)
    modes = class_modes(features.reshape(12, -1).numpy(), labels, ipc=2, num_classes=2)
    centres = modes[1].centres.reshape(2, *den.sample_shape)

    def job(method):
        return class_job(method, 1, 5, centres, ipc=2, lam=0.05, t_stop=3, form="auto",
                         sampling={"steps": 8, "scheduler": "ddpm", "cfg_scale": 1.0, "timestep_spacing": "linspace"})

    free = sample_shard(den, job("unguided"))
    pulled = sample_shard(den, job("mode-no-stop"))
    stopped = sample_shard(den, job("mgd3"))
    guided = [out["guided_steps"].get("mode", 0) for out in (free, pulled, stopped)]
    assert guided == [0, 8, 4]
    distance = {name: np.linalg.norm((out["latents"].numpy() - centres).reshape(2, -1), axis=1)
                for name, out in (("free", free), ("pulled", pulled))}
    assert (distance["pulled"] < distance["free"]).all()
    assert free["images"].shape == (2, 3, 8, 8)


def test_precomputed_modes_file_is_used_and_checked(tmp_path, tiny_model, capsys):
    from safetensors.torch import save_file

    centres = torch.zeros(10, 2, 1, 8, 8)
    good, bad = tmp_path / "modes.safetensors", tmp_path / "bad.safetensors"
    save_file({"centres": centres}, str(good))
    save_file({"centres": torch.zeros(10, 3, 1, 8, 8)}, str(bad))
    config = _config(tmp_path, tiny_model, methods=["kmeans-nearest-real"], seeds=[0], modes_file=str(good))
    assert _cli(["distill", "--config", str(config), "--out", str(tmp_path / "ok")]) == 0
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(tmp_path / "ok" / "modes" / "modes.safetensors"))["centres"], centres)
    config = _config(tmp_path, tiny_model, methods=["kmeans-nearest-real"], seeds=[0], modes_file=str(bad))
    assert _cli(["distill", "--config", str(config), "--out", str(tmp_path / "bad")]) == 2
    assert "must hold 'centres' of shape (10, 2, 1, 8, 8)" in capsys.readouterr().err


def test_sampling_defaults_come_from_the_data_tuned_settings():
    from practicum.distill.pipeline import DistillSettings, tuned_defaults

    fashion = DistillSettings(data="fashion").resolved()
    assert (fashion.lam, fashion.steps, fashion.cfg_scale) == (0.3, 20, 4.0)
    assert fashion.t_stop == 14  # 0.7 of 20 steps
    digits = DistillSettings(data="digits", steps=50).resolved()
    assert (digits.lam, digits.t_stop) == (1.0, 10)
    given = DistillSettings(data="fashion", lam=0.05, steps=50, t_stop=3, cfg_scale=1.5).resolved()
    assert (given.lam, given.steps, given.t_stop, given.cfg_scale) == (0.05, 50, 3, 1.5)
    assert tuned_defaults("folder:/somewhere") == {"lam": 0.1, "t_stop_fraction": 0.5, "cfg_scale": None, "steps": 50}


def test_soft_labels_and_classifier_features_share_one_teacher_through_the_cli(tmp_path, tiny_model):
    config = _config(tmp_path, tiny_model, methods=["unguided", "mgd3"], seeds=[0],
                     metric_features="classifier", scheduler="ddim",
                     student={"width": 4, "epoch_scale": 0.002, "eval_points": 2, "labels": "soft",
                              "teacher_epochs": 1, "teacher_arch": "convnet", "students": 1})
    import practicum.distill.pipeline as pipeline

    calls = []
    original = pipeline.train_teacher
    pipeline.train_teacher = lambda *a, **k: calls.append(k) or original(*a, **k)
    out = tmp_path / "run"
    try:
        assert _cli(["distill", "--config", str(config), "--out", str(out)]) == 0
    finally:
        pipeline.train_teacher = original
    assert len(calls) == 1 and calls[0]["val"] is not None  # one teacher, measured on val
    assert 0.0 <= json.loads((out / "teacher.json").read_text())["val_accuracy"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"unguided", "mgd3"}
    record = json.loads((out / "results" / "mgd3-seed0.json").read_text())
    # S = 4 and no t_stop given: the data's tuned fraction of the steps (digits 0.2 → t_stop 1, guides i = 3, 2)
    assert record["generation"]["guided_steps"] == 4 - 1 - 1
    assert json.loads((out / "results" / "unguided-seed0.json").read_text())["generation"]["guided_steps"] == 0
