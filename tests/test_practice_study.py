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
from practicum.diffusion.service import register_model
from practicum.practice.baselines import PruneSettings, generate_then_prune, select_hardest
from practicum.scaling.compare import data_multiplier
from practicum.stats import MIN_SEEDS_FOR_INTERVAL, NO_INTERVAL_NOTE, seed_interval


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
    yield register_model("tiny", den)
    register_model("tiny", None)


# ---------------------------------------------------------------- analysis

def _pts(strategy, curve, seed=0):
    return [{"strategy": strategy, "seed": seed, "size": n, "test_accuracy": a} for n, a in curve.items()]


def test_reach_size_interpolates_in_log_size():
    curve = {100: 0.80, 400: 0.90}
    # 0.85 is half-way in accuracy -> half-way in log size: sqrt(100 * 400) = 200
    assert analysis.reach_size(curve, 0.85) == pytest.approx(200.0)
    assert analysis.reach_size(curve, 0.70) == 100.0
    assert analysis.reach_size(curve, 0.95) is None


def _two_strategies(seeds, dp_curve=None):
    """Static 100/200/400/800 and DP 100/200/400 per seed; seed s shifts both by 0.002 s."""
    points = []
    for seed in range(seeds):
        j = 0.002 * seed
        points += _pts("static", {100: 0.80 + j, 200: 0.85 + j, 400: 0.88 + j, 800: 0.90 + j}, seed)
        points += _pts("dp", dp_curve(seed) if dp_curve else {100: 0.80 + j, 200: 0.89 + j, 400: 0.93 + j}, seed)
    return points


def test_multiplier_is_per_seed_on_its_own_curves_with_a_t_interval():
    seeds = 5
    points = _two_strategies(seeds)
    result = analysis.measured_multiplier(points)
    # n* = 800 from static alone; each seed's target is its own static 0.90 + j, which its DP curve
    # (0.89 + j at 200, 0.93 + j at 400) reaches a quarter of the way from 200 to 400 in log size
    n_dp = math.exp(math.log(200) + 0.25 * math.log(2))
    assert result["static_size"] == 800 and result["reached_fraction"] == 1.0
    assert [r["multiplier"] for r in result["per_seed"]] == pytest.approx([800 / n_dp] * seeds)
    assert result["multiplier"] == pytest.approx(800 / n_dp)
    lo, hi = result["ci"]
    assert lo == pytest.approx(800 / n_dp) and hi == pytest.approx(800 / n_dp)  # no spread: a zero-width t interval
    # with 4 seeds: the multiplier, but no interval and the reason why
    four = analysis.measured_multiplier(_two_strategies(4))
    assert four["multiplier"] == pytest.approx(800 / n_dp) and four["ci"] is None and "fewer than 5" in four["ci_note"]


def test_t_interval_matches_a_hand_computation():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, sd sqrt(2.5), t(0.975, 4) = 2.7764
    ci, why = seed_interval(values)
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert why is None and ci == pytest.approx([3 - half, 3 + half], rel=1e-5)
    assert seed_interval(values[:4]) == (None, NO_INTERVAL_NOTE.format(min=5, n=4))


def test_a_seed_where_dp_never_reaches_the_target_is_censored_not_zero():
    def dp(seed):  # seed 2 tops out below its static target
        return {100: 0.80, 200: 0.85, 400: 0.87} if seed == 2 else {100: 0.80, 200: 0.89, 400: 0.95}

    points = []
    for seed in range(5):
        points += _pts("static", {100: 0.80, 200: 0.85, 400: 0.88, 800: 0.90}, seed)
        points += _pts("dp", dp(seed), seed)
    result = analysis.measured_multiplier(points)
    censored = [r for r in result["per_seed"] if not r["reached"]]
    assert result["reached_fraction"] == pytest.approx(0.8)
    assert [r["seed"] for r in censored] == [2] and censored[0]["dp_needs_more_than"] == 400
    assert censored[0]["multiplier"] is None and censored[0]["multiplier_below"] == pytest.approx(2.0)
    assert result["multiplier"] is None and result["ci"] is None and "1 of 5" in result["ci_note"]
    assert result["multiplier_reached_only"] > 2.0  # reported apart, labelled as conditional on reaching


def test_multiplier_does_not_average_different_seed_subsets():
    # seed 0's DP reaches 300, seed 1's only 240: the old mean curve mixed a 1-seed value at 300
    # with a 2-seed mean at 240. Per seed, each multiplier uses that seed's own curve only.
    points = (_pts("static", {120: 0.80, 240: 0.85, 480: 0.86}, 0) + _pts("dp", {120: 0.80, 240: 0.86, 300: 0.99}, 0)
              + _pts("static", {120: 0.80, 240: 0.85, 480: 0.90}, 1) + _pts("dp", {120: 0.80, 240: 0.95}, 1))
    result = analysis.measured_multiplier(points)
    assert result["static_size"] == 480  # mean 0.88
    by_seed = {r["seed"]: r for r in result["per_seed"]}
    assert by_seed[0]["target"] == pytest.approx(0.86) and by_seed[0]["dp_size"] == pytest.approx(240.0)
    assert by_seed[1]["dp_size"] < 240 and by_seed[1]["multiplier"] == pytest.approx(480 / by_seed[1]["dp_size"])


def test_gains_are_paired_on_the_shared_grid_and_skip_the_start_size():
    points = _two_strategies(5)
    gains = analysis.paired_gain(points, "static", "dp", start_size=100)
    assert set(gains) == {200, 400}  # 100 is the shared start; 800 is beyond DP's measured range
    assert gains[200]["mean"] == pytest.approx(0.04) and gains[400]["mean"] == pytest.approx(0.05)
    assert gains[200]["ci"] == pytest.approx([0.04, 0.04]) and gains[200]["n_seeds"] == 5
    # DP at a size between its points is read on the log axis: 0.89 + (0.93 − 0.89)/2 at √(200·400)
    assert analysis.interpolate({200: 0.89, 400: 0.93}, math.sqrt(200 * 400)) == pytest.approx(0.91)
    assert analysis.interpolate({200: 0.89}, 400) is None  # never extrapolated
    assert analysis.shared_grid(points + _pts("dp", {3000: 0.95}), "static", ("dp",)) == [100, 200, 400, 800,
                                                                                         1600, 3200]


def test_fitted_multiplier_is_scaling_compare_with_one_family_chosen_on_static():
    rng = np.random.default_rng(0)
    points = []
    for seed in range(5):
        for n in (100, 200, 400, 800, 1600):
            points += _pts("static", {n: 1 - (0.05 + 2.0 * n ** -0.5) + rng.normal(0, 0.002)}, seed)
            points += _pts("dp", {n: 1 - (0.05 + 2.0 * (4 * n) ** -0.5) + rng.normal(0, 0.002)}, seed)
    result = analysis.fitted_multiplier(points)
    assert result["family"] and "family_a" not in result
    assert 2.0 < result["multiplier"] < 8.0  # the laws differ by a factor 4 in size
    assert result["ci"][0] < result["multiplier"] < result["ci"][1]
    assert "compare" in result["method"] and result["n_seeds"] == 5
    # the same numbers as calling compare directly with static's family and static's best mean error
    xa, ea, sa = analysis._curve_arrays(points, "static")
    xb, eb, sb = analysis._curve_arrays(points, "dp")
    direct = data_multiplier(xa, ea, xb, eb, target=result["target_error"], family=result["family"],
                             seeds_a=sa, seeds_b=sb)
    assert result["multiplier"] == pytest.approx(direct.multiplier)
    assert result["ci"] == pytest.approx(list(direct.ci))
    assert direct.family_a == direct.family_b == result["family"]
    few = analysis.fitted_multiplier([p for p in points if p["seed"] < 3])
    assert few["ci"] is None and few["multiplier"] > 2.0  # compare would give one: the seed minimum withholds it
    assert few["ci_note"] == NO_INTERVAL_NOTE.format(min=MIN_SEEDS_FOR_INTERVAL, n=3)
    # a DP curve that never gets to static's best error: no multiplier, and the note says so
    flat = [p for p in points if p["strategy"] == "static"] + [
        dict(p, test_accuracy=0.5 + 1e-4 * math.log(p["size"])) for p in points if p["strategy"] == "dp"]
    unreached = analysis.fitted_multiplier(flat)
    assert unreached["multiplier"] is None and "cannot both reach error" in unreached["note"]


def _two_seeds(dp_curve):
    static = {10: 0.5, 20: 0.6, 40: 0.7}
    return [p for seed in (0, 1) for p in _pts("static", static, seed) + _pts("dp", dp_curve, seed)]


def test_the_verdict_says_in_words_whether_dp_reached_static():
    from practicum.practice.study import headline, verdict

    # static's best is 70% at 40 images; DP reaches 70% at 20 images in both seeds: 40/20 = 2x
    reached = {"data_multiplier_detail": analysis.measured_multiplier(_two_seeds({10: 0.5, 20: 0.7, 40: 0.75}))}
    assert verdict(reached) == ("DP reached static's best accuracy (70.0% at 40 images) with 2.0× fewer images "
                                "(per seed: 2.0×, 2.0×)")
    short = {"data_multiplier_detail": analysis.measured_multiplier(_two_seeds({10: 0.5, 20: 0.55, 40: 0.6}))}
    assert verdict(short).startswith("DP did not reach static's best accuracy (70.0% at 40 images) within its "
                                     "budget in any of 2 seeds")
    # the interval column holds an interval or a dash; why there is none is in the detail
    for rows in (headline(reached), headline(short)):
        assert all(r["95% interval"] == "—" for r in rows)
        assert "no interval:" in rows[0]["detail"]


def test_static_grid_is_geometric_and_stops_at_the_one_se_plateau():
    from practicum.practice.study import plateau_reached, static_grid, study_settings

    settings = study_settings({"practice": {"initial_size": 50}, "grid_max_factor": 64})
    assert settings.data == "fashion" and static_grid(settings) == [50, 100, 200, 400, 800, 1600, 3200]
    assert study_settings(data="digits").practice.data == "digits"
    # 5 seeds, val of 5000 images: a +0.5 point step with SD 0.1 is real; a +0.05 point step is not
    rising = {s: {100: 0.80, 200: 0.805 + 0.001 * (s % 2)} for s in range(5)}
    flat = {s: {100: 0.80, 200: 0.8005 + 0.001 * (s % 2) - 0.0005} for s in range(5)}
    assert not plateau_reached(rising, 100, 200, 5000)
    assert plateau_reached(flat, 100, 200, 5000)


def test_fallback_generator_serves_vanilla_past_the_bank_from_the_model():
    from practicum.practice.generators import FallbackGenerator

    bank = BankGenerator(torch.zeros(20, 1, 8, 8), balanced_labels(0, 20, 10), 0.5)
    asked = []

    def model(request):
        asked.append((request.start, request.omega))
        return Generation(torch.ones(len(request.labels), 1, 8, 8), 1.0)

    both = FallbackGenerator(bank, model)
    assert both(Request(labels=balanced_labels(10, 10, 10), start=10)).images.sum() == 0  # from the bank
    assert both(Request(labels=balanced_labels(20, 10, 10), start=20)).images.sum() > 0  # past it: the model
    assert asked == [(20, 0.0)]


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

def test_tiny_study_end_to_end(tmp_path, tiny_model, capsys):
    from practicum.practice.study import print_summary, run_study, study_settings

    settings = study_settings({"data": "digits", "seeds": 2, "static_sizes": [20, 40], "prune_ratio": 2,
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
    assert {"bank", "static", "dynamic", "analysis"} <= set(stored["seconds"]["phases"])
    assert 20 not in {int(n) for n in stored["dp_gain_equal_size"]}  # the shared start size is no gain
    detail = stored["data_multiplier_detail"]
    assert len(detail["per_seed"]) == 2 and stored["data_multiplier_ci"] is None
    assert "fewer than 5 seeds" in (detail["ci_note"] or "") or detail["reached_fraction"] < 1
    dp_pool_rounds = [p["rounds"] for p in summary["points"] if p["strategy"] == "dp" and p["kind"] == "final"]
    assert max(dp_pool_rounds) >= 1  # guided rounds really ran through the diffusion model
    # a dynamic run's point at the start size is the static run at 20 with its seed, copied, not retrained
    static_at_start = {p["seed"]: p["test_accuracy"] for p in summary["points"]
                       if p["strategy"] == "static" and p["size"] == 20}
    for run in summary["runs"]:
        if run["strategy"] in ("dp", "vanilla") and run["rounds"]:
            start = [p for p in summary["points"] if p["strategy"] == run["strategy"] and p["seed"] == run["seed"]
                     and p["size"] == 20]
            assert len(start) == 1 and start[0]["copied_from"].endswith(f"static-n20-s{run['seed']}")
            assert start[0]["test_accuracy"] == static_at_start[run["seed"]]
            assert not (Path(run["path"]) / "branches" / "branch-001.json").exists()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") == 5  # four figures and the same-noise DP/vanilla pairs
    capsys.readouterr()
    print_summary(summary, out)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(("DP reached static's best accuracy", "DP did not reach static's best accuracy"))
    import html as html_module

    assert html_module.escape(first) in html  # the report opens with the same sentence
    # resume: every run is finished, so nothing is trained again and the numbers are the same
    again = run_study(out, settings, resume=True)
    assert again["data_multiplier"] == summary["data_multiplier"]
    # a bare `study --resume` reads the study's own config.yaml (it was not started with the defaults)
    assert _cli("study", "--out", str(out), "--resume") == 0


def _cli(*args):
    from practicum.cli import main

    try:
        main(["--quiet", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_practice_cli_runs_and_resumes(tmp_path, tiny_model, capsys):
    out = tmp_path / "dp"
    args = ["practice", "--out", str(out), "--data", "digits", "--model", tiny_model, "--iterations", "30",
            "--initial-size", "20",
            "--add-size", "10", "--t-init", "1", "--arch", "mlp", "--max-rounds", "2"]
    assert _cli(*args) == 0
    first = capsys.readouterr().out
    assert "rounds, pool" in first
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert (out / "checkpoints" / "step-00000030" / "learner.json").is_file()  # the README's --learner path
    assert _cli(*args) == 2  # the folder holds a run: refused without --resume/--overwrite
    assert _cli(*[a if a != "2" else "1" for a in args], "--overwrite") == 0  # a fresh run, not the old one
    assert json.loads((out / "summary.json").read_text())["rounds"] <= 1
    capsys.readouterr()
    assert _cli(*args, "--overwrite") == 0
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]  # same seed, same points
    assert _cli("practice", "--resume", str(out)) == 0  # the deprecated form still works
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]  # same points
    assert _cli("practice", "--out", str(out), "--resume") == 0  # the convention of every command
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]
    assert _cli("practice", "--resume", str(tmp_path / "missing")) == 2
    assert _cli("study", "--help") == 0


def test_every_command_defaults_to_fashion_and_says_so_in_its_help(capsys):
    from practicum.practice.settings import PracticeSettings
    from practicum.practice.study import StudySettings

    assert PracticeSettings().data == StudySettings().data == "fashion"
    for command in (["practice"], ["study"], ["generate"], ["diffusion", "train"]):
        assert _cli(*command, "--help") == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "fashion" in text and ("fashion (default)" in text or "else fashion" in text), command


def test_study_defaults_to_dp_against_static_and_takes_the_controls_by_flag(tmp_path, capsys):
    from practicum.practice.study import study_settings

    default = study_settings({}, data="fashion")
    assert default.strategies == ["static", "dp"] and default.grid_max_factor == 16
    assert default.practice.generator.guidance_batch == 25
    controls = study_settings({"strategies": ["static", "dp", "vanilla", "prune"]}, data="fashion")
    assert controls.strategies == ["static", "dp", "vanilla", "prune"]
    # a strategy the study does not know is refused before anything runs (one line, exit 2)
    assert _cli("study", "--strategies", "static,dpp", "--out", str(tmp_path / "s")) == 2
    assert "e.g. --strategies static,dp,vanilla,prune" in capsys.readouterr().err
    assert not (tmp_path / "s" / "runs").exists()


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
    result = json.loads((out / "summary.json").read_text())
    assert result["rounds"] >= 1 and result["pool_size"] == 6 + 3 * result["rounds"]
    pool = Pool(out / "pool")
    assert tuple(pool.meta()["image_shape"]) == (3, 8, 8)
    assert set(pool.index()["round"]) == set(range(result["rounds"] + 1))


# ---------------------------------------------------------------- the shared bank and worker processes

def test_seed_view_keeps_the_class_order_and_draws_a_different_set_per_seed():
    from practicum.practice.study import seed_view

    views = [seed_view(200, 10, seed) for seed in range(3)]
    for order in views:
        assert sorted(order.tolist()) == list(range(200))  # a permutation of the bank
        assert torch.equal(order % 10, torch.arange(200) % 10)  # position i still holds class i mod 10
    # the first 50 (a static set of 50) differ between seeds but are a fixed function of the seed
    assert set(views[0][:50].tolist()) != set(views[1][:50].tolist())
    assert torch.equal(views[0], seed_view(200, 10, 0))
    with pytest.raises(ConfigError):
        seed_view(205, 10, 0)


def test_bank_capacity_covers_the_grid_start_and_prune_candidates():
    from practicum.practice.study import bank_capacity, study_settings

    s = study_settings({"data": "digits", "grid_max_factor": 4, "prune_ratio": 16,
                        "practice": {"initial_size": 25, "add_size": 25}})
    assert bank_capacity(s, 10) == 430  # 25 + 16·25 = 425 candidates > 4·25, rounded up to whole classes
    s = study_settings({"data": "digits", "grid_max_factor": 32, "strategies": ["static", "dp"],
                        "practice": {"initial_size": 25}})
    assert bank_capacity(s, 10) == 800


def test_interleave_spreads_the_dynamic_runs_through_the_static_ones():
    from practicum.practice.study import interleave

    # 3 dynamic runs (indices 0-2) and 7 static runs (3-9): each dynamic run, then its share of 3
    assert interleave(["dp0", "dp1", "dp2"], 7) == [0, 3, 4, 5, 1, 6, 7, 8, 2, 9]
    assert interleave([], 3) == [0, 1, 2]
    assert interleave(["dp0", "dp1"], 0) == [0, 1]
    assert sorted(interleave(["a"] * 6, 15)) == list(range(21))  # every item exactly once


def test_local_worker_processes_give_the_same_results_in_order():
    from practicum.engine import get_executor, shard_seed

    items = list(range(6))
    assert get_executor("local", processes=2).map(shard_seed, items) == [shard_seed(i) for i in items]
    with pytest.raises(ConfigError):
        get_executor("local", processes=0)


def test_study_with_a_shared_bank_in_an_outside_folder(tmp_path, tiny_model):
    """Runs read one bank in their seed's own order; the bank's fingerprint is a recorded input."""
    from practicum.practice.study import run_study, study_settings

    settings = study_settings({"data": "digits", "seeds": 2, "static_sizes": [20, 40], "strategies": ["static"],
                               "practice": {"initial_size": 20, "eval_every": 20, "arch": "mlp", "width": 8,
                                            "train": {"steps": 10, "batch_size": 8},
                                            "generator": {"model": tiny_model, "steps": 2}}})
    bank = tmp_path / "bank"
    run_study(tmp_path / "study", settings, bank=bank, workers=2)  # a registered model: runs in-process
    assert len(Pool(bank)) == 40 and not (tmp_path / "study" / "banks").exists()
    assert "bank" in json.loads((tmp_path / "study" / "inputs.json").read_text())
    sets = [Pool(tmp_path / "study" / "runs" / f"static-n20-s{seed}" / "pool").images() for seed in (0, 1)]
    assert not torch.equal(sets[0], sets[1])  # two seeds, two different draws of 20 from the bank
