"""`practicum diffusion train` and `practicum generate` end to end on tiny models: determinism, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from practicum.diffusion import generate_run as gen_module
from practicum.diffusion import train as train_module
from practicum.diffusion.generate_run import GenerateSettings, run_generate
from practicum.diffusion.train import DiffusionTrainSettings, train_diffusion
from tiny_models import TINY_UNET


def _train_settings(**extra):
    return DiffusionTrainSettings.build({"data": "digits", "steps": 6, "batch_size": 8, "checkpoint_every": 3,
                                         "warmup": 2, "unet": TINY_UNET, **extra})


def test_train_writes_weights_and_sidecar(tmp_path):
    weights = train_diffusion(_train_settings(), tmp_path / "run", command="practicum diffusion train --out run")
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert sidecar["split"] == "train" and sidecar["train_examples"] == 987 and sidecar["fold"] == 1
    assert sidecar["command"] == "practicum diffusion train --out run" and sidecar["seed"] == 0
    assert sidecar["unet_config"]["num_class_embeds"] == 11  # 10 digits + the null class
    from practicum.diffusion.builtin import load_builtin
    from practicum.diffusion import sample

    den = load_builtin(weights, weights.with_suffix(".json"))
    out = sample(den, [0, 9], steps=3, cfg_scale=2.0, seed=0)
    assert out.images.shape == (2, 1, 8, 8)


def test_train_resume_ends_in_the_same_bytes(tmp_path, monkeypatch):
    straight = train_diffusion(_train_settings(), tmp_path / "a")
    real_lr = train_module.learning_rate

    def crash_at_step_4(step, settings):
        if step == 4:
            raise KeyboardInterrupt
        return real_lr(step, settings)

    monkeypatch.setattr(train_module, "learning_rate", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_diffusion(_train_settings(), tmp_path / "b")
    monkeypatch.setattr(train_module, "learning_rate", real_lr)
    resumed = train_diffusion(_train_settings(), tmp_path / "b", resume=True)
    assert straight.read_bytes() == resumed.read_bytes()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny class-conditional pixel model saved as a diffusers folder (untrained)."""
    from practicum.diffusion.builtin import builtin_denoiser

    torch.manual_seed(0)
    den = builtin_denoiser({**TINY_UNET, "sample_size": 8, "in_channels": 1, "out_channels": 1,
                            "num_class_embeds": 11})
    folder = tmp_path_factory.mktemp("tiny_model")
    den.unet.save_pretrained(folder)
    (folder / "scheduler_config.json").write_text(json.dumps({k: v for k, v in den.scheduler_config.items()
                                                              if not k.startswith("_")}))
    return str(folder)


def _gen_settings(model, **extra):
    return GenerateSettings.build({"n": 12, "model": model, "data": "digits", "steps": 3, "shard_size": 2,
                                   "guide_steps": 5, "guidance_every": 1, **extra})


def _pool_bytes(run):
    return {p.name: p.read_bytes() for p in sorted((run / "pool").iterdir())}


def test_generate_is_deterministic_and_resumable(tmp_path, tiny_model, monkeypatch):
    summary = run_generate(_gen_settings(tiny_model), tmp_path / "a")
    assert summary["n"] == 12 and summary["seconds_per_image"] > 0 and summary["mean_entropy"] > 0
    assert set(json.loads((tmp_path / "a" / "summary.json").read_text())) >= {"seconds_per_image", "mean_entropy"}
    from practicum.data.pool import Pool

    index = Pool(tmp_path / "a" / "pool").index()
    assert index["label"].tolist() == [i % 10 for i in range(12)]
    assert {"entropy", "omega", "guidance_every", "seed", "round"} <= set(index.columns)
    assert index["seed"].nunique() == 6  # one seed per shard
    assert (tmp_path / "a" / "guide" / "learner.safetensors").exists()  # the default guide is cached

    real, calls = gen_module.sample_shard, []

    def crash_on_fifth(den, job):
        calls.append(job)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(den, job)

    monkeypatch.setattr(gen_module, "sample_shard", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        run_generate(_gen_settings(tiny_model), tmp_path / "b")
    assert len(Pool(tmp_path / "b" / "pool").shards()) == 4  # the first group was kept
    monkeypatch.setattr(gen_module, "sample_shard", real)
    run_generate(_gen_settings(tiny_model), tmp_path / "b", resume=True)
    assert _pool_bytes(tmp_path / "a") == _pool_bytes(tmp_path / "b")


def test_guidance_raises_entropy_in_the_pool(tmp_path, tiny_model):
    plain = run_generate(_gen_settings(tiny_model, omega=0.0), tmp_path / "plain")
    guided = run_generate(_gen_settings(tiny_model, omega=0.1), tmp_path / "guided")
    assert guided["mean_entropy"] > plain["mean_entropy"]


def test_generate_cli(tmp_path, tiny_model):
    from practicum.cli import app

    config = tmp_path / "gen.yaml"
    config.write_text(f"guide_steps: 5\nsteps: 2\nmodel: {tiny_model}\ndata: digits\n")
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--n", "4", "--out", str(tmp_path / "run"), "--config", str(config),
                                 "--omega", "0.05", "--guidance-every", "2"])
    assert result.exit_code == 0, result.output
    assert "4 examples" in result.output
    again = runner.invoke(app, ["generate", "--n", "4", "--out", str(tmp_path / "run"), "--config", str(config)])
    assert again.exit_code != 0  # the folder already holds a run: --resume or --overwrite needed
    bad = runner.invoke(app, ["generate", "--n", "4", "--out", str(tmp_path / "run2"), "--config", str(config),
                              "--learner", str(tmp_path / "nowhere")])
    assert bad.exit_code != 0


def test_a_generator_trained_on_own_data_is_a_model_every_command_opens(tmp_path):
    """`diffusion train --data npz:PATH --out DIR`, then `generate --model DIR`: 3 classes, 12×12 images."""
    import numpy as np
    import yaml

    from practicum.cli import app

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 12, 12), dtype=np.uint8)
    y = np.arange(60) % 3
    data = tmp_path / "own.npz"
    np.savez(data, x=x, y=y, class_names=np.array(["cat", "dog", "owl"]))
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"steps": 3, "batch_size": 4, "warmup": 1, "unet": TINY_UNET}))
    runner = CliRunner()
    trained = runner.invoke(app, ["diffusion", "train", "--data", f"npz:{data}", "--out", str(tmp_path / "gen"),
                                  "--config", str(config)])
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "gen" / "denoiser.safetensors").exists() and (tmp_path / "gen" / "denoiser.json").exists()
    from practicum.diffusion import load_denoiser

    den = load_denoiser(str(tmp_path / "gen"))
    assert den.num_classes == 3 and den.null_class == 3 and den.class_names == ("cat", "dog", "owl")
    assert den.image_shape == (1, 12, 12) and not any(p.requires_grad for p in den.parameters())
    # no --data: generate takes the data the model's sidecar records, and says so
    made = runner.invoke(app, ["generate", "--n", "6", "--model", str(tmp_path / "gen"),
                               "--steps", "2", "--omega", "0.05", "--out", str(tmp_path / "g"),
                               "--config", str(_guide_config(tmp_path))])
    assert made.exit_code == 0, made.output
    assert f"using npz:{data}, the data" in made.output
    from practicum.data.pool import Pool

    assert Pool(tmp_path / "g" / "pool").index()["label"].tolist() == [0, 1, 2, 0, 1, 2]
    assert yaml.safe_load((tmp_path / "g" / "config.yaml").read_text())["data"] == f"npz:{data}"
    # a bare --resume (no --n, --model or --config) continues with the run's own settings
    again = runner.invoke(app, ["generate", "--out", str(tmp_path / "g"), "--resume"])
    assert again.exit_code == 0, again.output
    assert "6 examples" in again.output and len(Pool(tmp_path / "g" / "pool").index()) == 6


def _guide_config(tmp_path):
    path = tmp_path / "guide.yaml"
    path.write_text("guide_steps: 3\n")
    return path


def test_generate_refuses_a_model_that_does_not_match_the_data(tmp_path, tiny_model):
    from practicum.errors import ModelError

    with pytest.raises(ModelError, match="makes 1x8x8 images but the data fashion has 1x28x28"):
        run_generate(_gen_settings(tiny_model, data="fashion"), tmp_path / "g")
    assert not (tmp_path / "g").exists()  # refused before the run folder is made


def test_builtin_resolves_against_the_data():
    from practicum.diffusion.builtin import builtin_for
    from practicum.errors import ModelError

    assert builtin_for("builtin", "fashion") == "builtin:fashion"
    assert builtin_for("builtin", "digits") == "builtin:digits"
    assert builtin_for("/some/folder", "fashion") == "/some/folder"
    with pytest.raises(ModelError, match="diffusion train"):
        builtin_for("builtin", "npz:own.npz")


def test_folded_unet_runs_on_unshuffled_pixels():
    """fold=2: the UNet sees pixel_unshuffle(x) (4×4×4 for a 1×8×8 image) and its output is shuffled back."""
    from diffusers import UNet2DModel

    from practicum.diffusion.builtin import BUILTIN_SCHEDULER_CONFIG
    from practicum.diffusion.denoisers import PixelUNetDenoiser

    torch.manual_seed(0)
    unet = UNet2DModel(**{**TINY_UNET, "sample_size": 4, "in_channels": 4, "out_channels": 4, "num_class_embeds": 4})
    den = PixelUNetDenoiser(unet, BUILTIN_SCHEDULER_CONFIG, num_classes=3, fold=2)
    assert den.sample_shape == (1, 8, 8) and den.image_shape == (1, 8, 8)
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([10, 500])
    y = torch.tensor([0, 2])
    by_hand = torch.nn.functional.pixel_shuffle(unet(torch.nn.functional.pixel_unshuffle(x, 2), t,
                                                     class_labels=y).sample, 2)
    assert torch.allclose(den(x, t, y), by_hand)
    from practicum.errors import ModelError

    with pytest.raises(ModelError, match="fold"):
        PixelUNetDenoiser(unet, BUILTIN_SCHEDULER_CONFIG, num_classes=3, fold=3)


def test_builtin_model_is_committed_and_draws_recognisable_digits():
    from sklearn.linear_model import LogisticRegression

    from practicum.data import load_digits
    from practicum.diffusion import load_denoiser, sample
    from practicum.diffusion.builtin import read_sidecar, sampling_defaults

    meta = read_sidecar()
    assert meta["split"] == "train" and meta["data"] == "digits" and meta["command"].startswith("practicum diffusion train")
    den = load_denoiser("builtin")
    assert den.image_shape == (1, 8, 8) and den.num_classes == 10
    options = dict(sampling_defaults(den), steps=20)
    labels = torch.arange(40) % 10
    out = sample(den, labels, seed=0, **options)
    assert out.images.shape == (40, 1, 8, 8) and out.images.min() >= -1 and out.images.max() <= 1
    train = load_digits("train")
    judge = LogisticRegression(max_iter=500).fit(train.images.flatten(1).numpy(), train.labels.numpy())
    fidelity = (judge.predict(out.images.flatten(1).numpy()) == labels.numpy()).mean()
    assert fidelity >= 0.8  # a real-data classifier recognises the generated digits


def test_builtin_fashion_model_is_committed_and_draws_recognisable_clothes():
    from sklearn.linear_model import LogisticRegression

    from practicum.data import load_fashion
    from practicum.diffusion import load_denoiser, sample
    from practicum.diffusion.builtin import FASHION_SIDECAR, read_sidecar, sampling_defaults

    meta = read_sidecar(FASHION_SIDECAR)
    assert meta["split"] == "train" and meta["data"] == "fashion" and meta["train_examples"] == 50000
    assert meta["command"].startswith("practicum diffusion train --data fashion") and meta["fold"] == 2
    den = load_denoiser("builtin:fashion")
    assert den.image_shape == (1, 28, 28) and den.num_classes == 10 and den.class_names[0] == "T-shirt/top"
    labels = torch.arange(30) % 10
    out = sample(den, labels, seed=0, **dict(sampling_defaults(den), steps=10))
    assert out.images.shape == (30, 1, 28, 28) and out.images.min() >= -1 and out.images.max() <= 1
    train = load_fashion("train").subset(np.arange(0, 50000, 10))
    judge = LogisticRegression(max_iter=300).fit(train.images.flatten(1).numpy(), train.labels.numpy())
    fidelity = (judge.predict(out.images.flatten(1).numpy()) == labels.numpy()).mean()
    assert fidelity >= 0.6  # a linear real-data classifier (≈ 84 % on real test) recognises most samples


def test_generate_dtype_device_and_guidance_batch(tmp_path, tiny_model):
    """Issue 16: the guidance micro-batch changes memory, not bytes; bf16 runs; bad values are one-line errors."""
    from practicum.cli import app

    run_generate(_gen_settings(tiny_model, n=4), tmp_path / "whole")
    run_generate(_gen_settings(tiny_model, n=4, guidance_batch=1), tmp_path / "micro")
    from practicum.data.pool import Pool

    whole, micro = Pool(tmp_path / "whole" / "pool").images(), Pool(tmp_path / "micro" / "pool").images()
    # the same samples up to float rounding of a smaller batch (at most one uint8 level)
    assert (whole - micro).abs().max() <= 2 / 255 + 1e-6
    config = tmp_path / "gen.yaml"
    config.write_text(f"guide_steps: 5\nsteps: 2\nmodel: {tiny_model}\ndata: digits\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["generate", "--n", "4", "--out", str(tmp_path / "bf16"), "--config", str(config),
                             "--dtype", "bf16", "--device", "cpu", "--guidance-batch", "1", "--vae-slicing"])
    assert ok.exit_code == 0, ok.output
    assert "model_dtype: bf16" in (tmp_path / "bf16" / "config.yaml").read_text()
    bad = runner.invoke(app, ["generate", "--n", "4", "--out", str(tmp_path / "x"), "--config", str(config),
                              "--dtype", "int8"])
    from practicum.errors import ConfigError

    assert isinstance(bad.exception, ConfigError) and "model_dtype" in str(bad.exception)  # main() exits 2
    if not torch.cuda.is_available():
        no_gpu = runner.invoke(app, ["generate", "--n", "4", "--out", str(tmp_path / "y"), "--config", str(config),
                                     "--device", "cuda"])
        assert isinstance(no_gpu.exception, ConfigError) and "CUDA is not available" in str(no_gpu.exception)
