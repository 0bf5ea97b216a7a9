"""Analysis, generate-then-prune, the vanilla bank, and a tiny end-to-end study and CLI run."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from practicum.data import RunDir, load_digits
from practicum.data.pool import Pool
from practicum.errors import ConfigError, DataError
from practicum.practice import BankGenerator, Generation, Request, analysis, balanced_labels
from practicum.practice import generate as generate_module
from practicum.practice.baselines import PruneSettings, generate_then_prune, select_hardest


@pytest.fixture(scope="module")
def tiny_model():
    """A tiny random class-conditional pixel UNet registered under the name 'tiny'."""
    from diffusers import UNet2DModel

    from practicum.diffusion.builtin import BUILTIN_SCHEDULER_CONFIG
    from practicum.diffusion.denoisers import PixelUNetDenoiser

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                           block_out_channels=[8, 16], down_block_types=["DownBlock2D", "DownBlock2D"],
                           up_block_types=["UpBlock2D", "UpBlock2D"], norm_num_groups=4, num_class_embeds=11)
    den = PixelUNetDenoiser(unet, BUILTIN_SCHEDULER_CONFIG, num_classes=10, null_class=10,
                            image_shape=(1, 8, 8)).eval()
    generate_module._DENOISERS["tiny"] = den
    yield "tiny"
    generate_module._DENOISERS.pop("tiny", None)


# ---------------------------------------------------------------- analysis

def _pts(strategy, curve, seed=0):
    return [{"strategy": strategy, "seed": seed, "size": n, "test_accuracy": a} for n, a in curve.items()]


def test_reach_size_interpolates_in_log_size():
    curve = {100: 0.80, 400: 0.90}
    # 0.85 is half-way in accuracy -> half-way in log size: sqrt(100 * 400) = 200
    assert analysis.reach_size(curve, 0.85) == pytest.approx(200.0)
    assert analysis.reach_size(curve, 0.70) == 100.0
    assert analysis.reach_size(curve, 0.95) is None


def test_multiplier_and_bootstrap_over_seeds():
    points = []
    for seed in range(5):
        jitter = 0.0015 * seed
        points += _pts("static", {100: 0.80 + jitter, 200: 0.85 + jitter, 800: 0.90 + jitter}, seed)
        points += _pts("dp", {100: 0.85 + jitter, 200: 0.92 + jitter}, seed)
    result = analysis.data_multiplier(points, n_boot=200)
    # static's best (mean 0.903 at 800) is reached by DP between 100 and 200
    target = 0.90 + 0.003
    expected = 800 / math.exp(math.log(100) + (target - 0.853) / (0.923 - 0.853) * math.log(2))
    # with 4 seeds there is no seed-bootstrap interval (too few distinct resamples), and it says so
    four = [p for p in points if p["seed"] < 4]
    assert analysis.data_multiplier(four, n_boot=50)["ci"] is None
    assert "fewer than the 5" in analysis.data_multiplier(four, n_boot=50)["ci_note"]
    assert result["static_size"] == 800 and result["multiplier"] == pytest.approx(expected, rel=1e-6)
    assert result["ci"][0] <= result["multiplier"] <= result["ci"][1] and result["reached_fraction"] == 1.0
    gains = analysis.paired_gain(points, "static", "dp", n_boot=100)
    assert set(gains) == {100, 200}
    assert gains[100]["mean"] == pytest.approx(0.05) and gains[200]["mean"] == pytest.approx(0.07)
    never = _pts("static", {100: 0.8, 200: 0.9}) + _pts("dp", {100: 0.7, 200: 0.75})
    assert analysis.data_multiplier(never, n_boot=0)["multiplier"] is None


def test_select_hardest_is_class_balanced():
    entropy = np.array([0.1, 0.9, 0.5, 0.8, 0.7, 0.2])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert select_hardest(entropy, labels, 2, 2).tolist() == [1, 3]
    assert select_hardest(entropy, labels, 4, 2).tolist() == [1, 2, 3, 4]
    assert select_hardest(entropy, labels, 3, 2, class_balanced=False).tolist() == [1, 3, 4]


# ---------------------------------------------------------------- generators and the prune baseline

def _fake(request):
    g = torch.Generator().manual_seed(request.seed % 2**31)
    train = load_digits("train")
    picks = [int(torch.nonzero(train.labels == y).flatten()[i]) for i, y in enumerate(request.labels.tolist())]
    noise = 0.3 * torch.randn(len(picks), 1, 8, 8, generator=g)
    return Generation((train.images[picks] + noise).clamp(-1, 1), 0.001 * len(picks))


def test_bank_generator_serves_by_position():
    labels = balanced_labels(0, 30, 10)
    bank = BankGenerator(torch.rand(30, 1, 8, 8), labels, seconds_per_image=0.5)
    out = bank(Request(labels=balanced_labels(10, 5, 10), start=10))
    assert torch.equal(out.images, bank.images[10:15]) and out.seconds == pytest.approx(2.5)
    with pytest.raises(ConfigError):
        bank(Request(labels=labels[:5], omega=0.05))
    with pytest.raises(DataError, match="holds 30"):
        bank(Request(labels=balanced_labels(25, 10, 10), start=25))


def test_generate_then_prune(tmp_path):
    settings = PruneSettings.build({"arch": "mlp", "width": 16, "initial_size": 20, "add_size": 10, "ratio": 3,
                                    "train": {"steps": 60, "batch_size": 16}})
    val, test = load_digits("val"), load_digits("test")
    with RunDir.create(tmp_path / "prune", settings.to_yaml()) as run:
        result = generate_then_prune(run, settings, _fake, val, test)
        prune = run.metrics("prune")
    assert result["pool_size"] == 30 and result["points"][0]["size"] == 30
    assert prune[0]["candidates"] == 30 and prune[0]["kept"] == 10
    assert prune[0]["kept_entropy_mean"] >= prune[0]["candidate_entropy_mean"]
    assert result["seconds"]["generate"] == pytest.approx(0.001 * (20 + 30))


# ---------------------------------------------------------------- end to end with a real (tiny) diffusion model

def test_tiny_study_end_to_end(tmp_path, tiny_model):
    from practicum.practice.study import print_summary, run_study, study_settings

    settings = study_settings({"seeds": 2, "static_sizes": [20, 40], "n_boot": 50, "prune_ratio": 2,
                               "practice": {"initial_size": 20, "add_size": 10, "eval_every": 20, "t_init": 1,
                                            "arch": "mlp", "width": 16, "train": {"steps": 40, "batch_size": 16},
                                            "generator": {"model": tiny_model, "steps": 3, "every": 1}}})
    out = tmp_path / "study"
    summary = run_study(out, settings)
    stored = json.loads((out / "summary.json").read_text())
    for key in ("strategies", "data_multiplier", "data_multiplier_ci", "dp_gain_equal_size", "seconds",
                "peak_memory_mb"):
        assert key in stored
    assert set(stored["strategies"]) == {"static", "dp", "vanilla", "prune"}
    assert set(stored["strategies"]["static"]["per_seed"]) == {"0", "1"}
    assert stored["strategies"]["static"]["sizes"] == [20, 40]
    assert {"bank", "runs", "analysis"} <= set(stored["seconds"]["phases"])
    dp_pool_rounds = [p["rounds"] for p in summary["points"] if p["strategy"] == "dp" and p["kind"] == "final"]
    assert max(dp_pool_rounds) >= 1  # guided rounds really ran through the diffusion model
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") == 4
    print_summary(summary, out)
    # resume: every run is finished, so nothing is trained again and the numbers are the same
    again = run_study(out, settings, resume=True)
    assert again["data_multiplier"] == summary["data_multiplier"]


def _cli(*args):
    from practicum.cli import main

    try:
        main(["--quiet", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_practice_cli_runs_and_resumes(tmp_path, tiny_model, capsys):
    out = tmp_path / "dp"
    args = ["practice", "--out", str(out), "--model", tiny_model, "--iterations", "30", "--initial-size", "20",
            "--add-size", "10", "--t-init", "1", "--arch", "mlp", "--max-rounds", "2"]
    assert _cli(*args) == 0
    first = capsys.readouterr().out
    assert "rounds, pool" in first
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert _cli(*args) == 2  # the folder holds a run: refused without --resume/--overwrite
    assert _cli(*[a if a != "2" else "1" for a in args], "--overwrite") == 0  # a fresh run, not the old one
    assert json.loads((out / "result.json").read_text())["rounds"] <= 1
    capsys.readouterr()
    assert _cli(*args, "--overwrite") == 0
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]  # same seed, same points
    assert _cli("practice", "--resume", str(out)) == 0  # the deprecated form still works
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]  # same points
    assert _cli("practice", "--out", str(out), "--resume") == 0  # the convention of every command
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]
    assert _cli("practice", "--resume", str(tmp_path / "missing")) == 2
    assert _cli("study", "--help") == 0


def _tiny_sd_folder(path, num_classes=3):
    """A randomly initialised SD-layout pipeline folder (UNet2DConditionModel + AutoencoderKL)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(sample_size=4, in_channels=4, out_channels=4, layers_per_block=1,
                                    block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=4,
                                    cross_attention_dim=8, attention_head_dim=2)
        vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 8),
                            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                            latent_channels=4, norm_num_groups=4, sample_size=8)
        embeds = {"prompt_embeds": torch.randn(num_classes, 5, 8), "null_embeds": torch.randn(1, 5, 8)}
    unet.save_pretrained(path / "unet")
    vae.save_pretrained(path / "vae")
    DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear").save_pretrained(path / "scheduler")
    save_file(embeds, str(path / "prompt_embeds.safetensors"))
    (path / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"]}))


def test_paper_scale_config_runs_on_a_tiny_sd_model(tmp_path):
    """The shipped SD-1.5 config, pointed at a tiny random SD-layout model and an image folder."""
    import yaml
    from PIL import Image

    from practicum.practice.settings import PracticeSettings

    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "fish"]):
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for i in range(20):
            pixels = np.clip(rng.normal(60 + 70 * c, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    _tiny_sd_folder(tmp_path / "sd")
    config_path = Path(__file__).resolve().parent.parent / "practicum" / "practice" / "configs" / "sd15_imagenet100.yaml"
    config = yaml.safe_load(config_path.read_text())
    PracticeSettings.build(config)  # the shipped config validates as it is
    config.update(data=f"folder:{tmp_path / 'images'}", image_size=8, device="cpu", arch="cnn", initial_size=6,
                  add_size=3, t_init=1, max_rounds=2, branch_growth=1.0)
    config["train"].update(steps=30, batch_size=8)
    config["generator"].update(model=str(tmp_path / "sd"), steps=3, every=1, shard_size=4)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert _cli("practice", "--config", str(tmp_path / "tiny.yaml"), "--out", str(out)) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["rounds"] >= 1 and result["pool_size"] == 6 + 3 * result["rounds"]
    pool = Pool(out / "pool")
    assert tuple(pool.meta()["image_shape"]) == (3, 8, 8)
    assert set(pool.index()["round"]) == set(range(result["rounds"] + 1))
