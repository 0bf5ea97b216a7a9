"""Issue 17: bad input never crashes, never silently corrupts, and no pickle is ever loaded.

Each test here failed before the fix it names. Commands run in-process through the real entry
point (`reliability_helpers.invoke`), so the one-line `error:` / exit 2 contract is what is tested.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time

import numpy as np
import pytest
import yaml

from reliability_helpers import invoke
from tiny_models import TINY_UNET

CSV = "curve,x,y,seed\n" + "".join(f"a,{x},{0.5 * x ** -0.3 + 0.05:.5f},{s}\n"
                                   for x in (100, 200, 400, 800, 1600) for s in (0, 1))


def _npz(path, classes=3, per_class=20, labels=None, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), per_class) if labels is None else np.asarray(labels)
    x = rng.integers(0, 256, size=(len(y), 8, 8), dtype=np.uint8)
    np.savez(path, x=x, y=y)
    return path


def _tiny_yaml(path, **extra):
    path.write_text(yaml.safe_dump({"unet": TINY_UNET, "batch_size": 8, "warmup": 1, "checkpoint_every": 2,
                                    **extra}))
    return path


# ---------------------------------------------------------------- 1. no pickle is ever loaded

@pytest.fixture(scope="module")
def pickled_model(tmp_path_factory):
    from diffusers import UNet2DModel

    folder = tmp_path_factory.mktemp("model_bin")
    UNet2DModel(sample_size=8, in_channels=1, out_channels=1, num_class_embeds=11, **TINY_UNET).save_pretrained(
        folder, safe_serialization=False)
    assert (folder / "diffusion_pytorch_model.bin").exists()
    return folder


def test_a_pickled_model_folder_is_refused(pickled_model):
    from practicum.diffusion.loading import load_denoiser
    from practicum.errors import ModelError

    with pytest.raises(ModelError, match="pickled weights") as info:
        load_denoiser(pickled_model)
    assert "safe_serialization=True" in str(info.value)  # says how to convert


def test_generate_refuses_a_pickled_model_in_one_line(pickled_model, tmp_path):
    out = invoke("generate", "--n", "10", "--out", tmp_path / "G", "--model", pickled_model, "--omega", "0",
                 "--data", "digits")
    out.assert_one_line_error("pickled")
    assert not (tmp_path / "G").exists()


def test_safetensors_is_demanded_even_without_the_check(pickled_model, monkeypatch):
    """use_safetensors=True on from_pretrained: diffusers itself refuses the .bin."""
    from practicum.diffusion import denoisers, loading
    from practicum.errors import ModelError

    monkeypatch.setattr(denoisers, "refuse_pickled_weights", lambda folder: None)
    with pytest.raises(ModelError):
        loading.load_denoiser(pickled_model)


def test_a_model_file_is_not_called_a_missing_folder(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"x")
    invoke("generate", "--out", tmp_path / "G", "--model", tmp_path / "model.pt", "--data", "digits") \
        .assert_one_line_error("is a file")


# ---------------------------------------------------------------- 2. bad --out, in every command

COMMANDS = [["fit", "c.csv"], ["compare", "a.csv", "b.csv"], ["generate"], ["practice"], ["diffusion", "train"],
            ["study"], ["distill"], ["rate"], ["score"], ["select"], ["theory"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_refuses_a_bad_out_in_one_line(command, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, needle in [(afile, "existing file"), (afile / "run", "under"), ("", "empty"),
                        ("/proc/practicum-nope/run", "cannot write")]:
        invoke(*command, "--out", out).assert_one_line_error(needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_folder_holding_only_a_failed_start_is_reused(tmp_path):
    from practicum.data import RunDir

    run = tmp_path / "run"
    RunDir.create(run, "old: 1\n").release()  # a start killed before its first output
    assert (run / "config.yaml").read_text() == "old: 1\n"
    with RunDir.create(run, "new: 2\n") as r:  # no --resume/--overwrite needed: nothing to lose
        r.log_metric({"event": "x"})
        r.finish()
    assert (run / "config.yaml").read_text() == "new: 2\n"


def test_a_failed_fit_leaves_nothing_and_the_corrected_rerun_works(tmp_path, monkeypatch):
    from practicum.scaling import cli_fit

    (tmp_path / "c.csv").write_text(CSV)
    real_imap_fit = cli_fit.fit_one

    def boom(item):
        raise cli_fit.FitError("simulated")

    monkeypatch.setattr(cli_fit, "fit_one", boom)
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--n-boot", "0").assert_one_line_error("simulated")
    assert not (tmp_path / "F").exists()
    monkeypatch.setattr(cli_fit, "fit_one", real_imap_fit)
    assert invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--n-boot", "0").code == 0


# ---------------------------------------------------------------- 3. silent corruption

def test_lr_inf_is_refused_before_any_work(tmp_path):
    invoke("diffusion", "train", "--out", tmp_path / "D", "--lr", "inf").assert_one_line_error("lr", "finite")
    assert not (tmp_path / "D").exists()


def test_a_loss_that_becomes_nan_stops_training(tmp_path):
    # the largest learning rate the settings allow: the loss overflows within a few steps
    config = _tiny_yaml(tmp_path / "t.yaml", steps=12, lr=10, warmup=0)
    out = invoke("diffusion", "train", "--out", tmp_path / "D", "--config", config, "--data", "digits")
    out.assert_one_line_error("non-finite" if "weights" in out.stderr else "loss became")
    assert not list((tmp_path).glob("D/*.safetensors"))  # no NaN weights written


def test_fit_resume_refuses_a_changed_csv(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text(CSV)
    args = ["fit", csv, "--out", tmp_path / "F", "--n-boot", "0"]
    assert invoke(*args).code == 0
    csv.write_text(CSV.replace("a,100,", "a,101,"))
    invoke(*args, "--resume").assert_one_line_error("changed since")
    assert invoke(*args, "--overwrite").code == 0  # refit from the new CSV
    assert invoke(*args, "--resume").code == 0  # and that run resumes: its inputs.json is the new CSV's


@pytest.mark.parametrize("args,needle", [
    (["--target", "nan"], "target"),
    (["--extrapolate-to", "inf"], "extrapolate_to"),
    (["--level", "nan"], "level"),
])
def test_fit_refuses_non_finite_numbers(tmp_path, args, needle):
    (tmp_path / "c.csv").write_text(CSV)
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", *args).assert_one_line_error(needle)
    assert not (tmp_path / "F").exists()


def test_fit_refuses_a_non_numeric_seed_and_a_folder_for_a_csv(tmp_path):
    (tmp_path / "c.csv").write_text(CSV.replace(",1\n", ",one\n", 1))
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F").assert_one_line_error("seed='one'")
    invoke("fit", tmp_path, "--out", tmp_path / "F").assert_one_line_error("is a folder")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_threads_must_be_positive(tmp_path, value):
    for command in (["generate"], ["diffusion", "train"]):
        invoke(*command, "--threads", value, "--out", tmp_path / "X").assert_one_line_error("threads")


def test_gapped_npz_labels_are_refused_with_the_remap(tmp_path):
    npz = _npz(tmp_path / "d.npz", labels=np.repeat(np.arange(1000, 1010), 10))
    line = invoke("diffusion", "train", "--out", tmp_path / "D", "--data", f"npz:{npz}").assert_one_line_error(
        "0..K-1")
    assert "np.unique" in line and "1000..1009" in line


# ---------------------------------------------------------------- 4. own-data generators

def test_a_three_class_npz_trains_and_generates(tmp_path):
    from practicum.diffusion.loading import load_denoiser
    from practicum.learn import train_classifier
    from practicum.data import load_source

    npz = _npz(tmp_path / "three.npz")
    config = _tiny_yaml(tmp_path / "t.yaml", steps=4)
    assert invoke("diffusion", "train", "--out", tmp_path / "D", "--config", config,
                  "--data", f"npz:{npz}").code == 0
    den = load_denoiser(tmp_path / "D")
    assert den.num_classes == 3
    train_classifier(load_source(f"npz:{npz}", "train"), steps=3, arch="mlp").save(tmp_path / "guide")
    out = invoke("generate", "--n", "6", "--out", tmp_path / "G", "--model", tmp_path / "D", "--data", f"npz:{npz}",
                 "--learner", tmp_path / "guide", "--steps", "2", "--shard-size", "3")
    assert out.code == 0, out.stderr
    assert json.loads((tmp_path / "G" / "summary.json").read_text())["n"] == 6


# ---------------------------------------------------------------- 5. early validation and the rest

@pytest.mark.parametrize("flag,value", [("--omega", "nan"), ("--omega", "inf"), ("--cfg-scale", "nan")])
def test_guidance_numbers_are_checked_before_any_work(tmp_path, flag, value):
    start = time.perf_counter()
    invoke("generate", "--out", tmp_path / "G", flag, value).assert_one_line_error(flag.strip("-").replace("-", "_"))
    assert time.perf_counter() - start < 3 and not (tmp_path / "G").exists()


def test_practice_and_study_refuse_omega_nan(tmp_path):
    invoke("practice", "--out", tmp_path / "P", "--omega", "nan").assert_one_line_error("omega")
    invoke("study", "--out", tmp_path / "S", "--omega", "nan").assert_one_line_error("omega")
    assert not list(tmp_path.iterdir())


def test_a_bad_flag_value_is_one_line_not_a_box(tmp_path):
    invoke("generate", "--out", tmp_path / "G", "--omega", "abc").assert_one_line_error("--omega")


def test_an_unknown_unet_key_is_one_line(tmp_path):
    config = _tiny_yaml(tmp_path / "t.yaml", steps=2)
    values = yaml.safe_load(config.read_text())
    values["unet"]["block_out_chanels"] = [8, 16]
    config.write_text(yaml.safe_dump(values))
    invoke("diffusion", "train", "--out", tmp_path / "D", "--config", config).assert_one_line_error(
        "block_out_chanels")


def test_npz_with_zero_rows_and_a_text_file_named_npz(tmp_path):
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    (tmp_path / "text.npz").write_text("not an archive")
    for name, needle in [("empty.npz", "zero rows"), ("text.npz", "not an npz archive")]:
        invoke("diffusion", "train", "--out", tmp_path / "D", "--data", f"npz:{tmp_path / name}") \
            .assert_one_line_error(needle)


def test_class_folders_without_images(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        (tmp_path / "imgs" / c / "notes.txt").write_text("hello")
        for i in range(10):
            (tmp_path / "imgs" / c / f"fake{i}.png").write_text("not a png")
    invoke("diffusion", "train", "--out", tmp_path / "D", "--data", f"folder:{tmp_path / 'imgs'}") \
        .assert_one_line_error("cannot read image")
    for fake in (tmp_path / "imgs").rglob("fake*.png"):
        fake.unlink()
    invoke("diffusion", "train", "--out", tmp_path / "D", "--data", f"folder:{tmp_path / 'imgs'}") \
        .assert_one_line_error("no images")


def test_a_full_disk_is_one_line(tmp_path, monkeypatch):
    from practicum.scaling import cli_fit

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "F" / "figures" / "fit.png"))

    monkeypatch.setattr(cli_fit, "_plot", full)
    (tmp_path / "c.csv").write_text(CSV)
    invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "F", "--n-boot", "0").assert_one_line_error("no space")
    assert json.loads((tmp_path / "F" / "run.json").read_text())["status"] == "failed"  # consistent, resumable


def test_atomic_files_get_the_mode_of_ordinary_files(tmp_path):
    from practicum.data import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode)


# ---------------------------------------------------------------- 6. resume gaps

def test_train_resume_drops_metrics_logged_after_the_checkpoint(tmp_path):
    config = _tiny_yaml(tmp_path / "t.yaml", steps=4)
    args = ["diffusion", "train", "--out", tmp_path / "D", "--config", config, "--data", "digits"]
    assert invoke(*args).code == 0
    rows = (tmp_path / "D" / "metrics.jsonl").read_text().splitlines()
    with open(tmp_path / "D" / "metrics.jsonl", "a") as handle:  # as if logged by steps a kill then lost
        handle.write(json.dumps({"event": "train", "step": 99, "loss": 1.0}) + "\n")
    assert invoke(*args, "--resume").code == 0
    assert (tmp_path / "D" / "metrics.jsonl").read_text().splitlines() == rows
