"""Issue 26, items 4-6: bad files and out-of-range numbers, each refused before work in one line.

The adversarial cases of the issue, rebuilt from their descriptions, run through the real CLI
in-process: exit 2, one `error:` line, no traceback, no run folder, answered within LIMIT_S.
The validating readers (practicum.files) and the memory estimate (practicum.limits) are also
checked directly against small hand-built cases.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from diffusers import UNet2DModel  # noqa: F401 - imported once here: LIMIT_S times validation, not imports
import numpy as np
import pytest
import torch

from practicum.errors import ConfigError, DataError, ModelError, PracticumError
from reliability_helpers import invoke
from tiny_models import save_tiny_rater

LIMIT_S = 10.0
ASSETS = Path(__file__).resolve().parents[1] / "practicum" / "assets"
CURVE = "curve,x,y,seed\n" + "".join(f"a,{x},{0.5 * x ** -0.3 + 0.05:.5f},{s}\n"
                                     for x in (100, 200, 400, 800, 1600) for s in (0, 1))


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    """Real artefacts written by practicum: a digits model folder, a learner, a rater, a fit.json."""
    from practicum.data import load_source
    from practicum.learn.learner import train_classifier

    root = tmp_path_factory.mktemp("art")
    (root / "model").mkdir()
    shutil.copy(ASSETS / "digits_unet.safetensors", root / "model" / "denoiser.safetensors")
    shutil.copy(ASSETS / "digits_unet.json", root / "model" / "denoiser.json")
    train_classifier(load_source("digits", "train"), steps=1, width=8).save(root / "learner")
    save_tiny_rater(root / "rater" / "rater.safetensors")
    (root / "good.csv").write_text(CURVE)
    assert invoke("fit", root / "good.csv", "--out", root / "fit", "--n-boot", "0", "--family", "pow2").code == 0
    return root


def refused(*args, needles=(), out: Path | None = None) -> str:
    result = invoke(*[str(a) for a in args], limit_s=LIMIT_S)
    line = result.assert_one_line_error(*needles)
    if out is not None:
        assert not out.exists(), f"{out} left behind: {line}"
    return line


# ---------------------------------------------------------------- sizes, rates, strengths (item 5)

@pytest.mark.parametrize("args, needle", [
    (["generate", "--data", "digits", "--n", "10000000000000"], "n"),
    (["generate", "--data", "digits", "--n", "2", "--threads", "100000000000"], "threads"),
    (["generate", "--data", "digits", "--n", "2", "--omega", "1e300"], "omega"),
    (["generate", "--data", "digits", "--n", "2", "--cfg-scale", "1e300"], "cfg_scale"),
    (["generate", "--data", "digits", "--n", "2", "--cfg-scale", "-1e300"], "cfg_scale"),
    (["practice", "--data", "digits", "--initial-size", "100000000000"], "initial_size"),
    (["rate", "--data", "digits", "--lr", "1e300"], "lr"),
    (["rate", "--data", "digits", "--proxy-lr", "-1"], "proxy_lr"),
    (["rate", "--data", "digits", "--epochs", "0"], "epochs"),
    (["rate", "--data", "digits", "--batch-size", "0"], "batch_size"),
    (["distill", "--data", "digits", "--seeds", "100000000000000000000000000000"], "seeds"),
    (["distill", "--data", "digits", "--seeds", "1,,2"], "empty"),
    (["distill", "--data", "digits", "--epoch-scale", "1e300"], "epoch_scale"),
    (["distill", "--data", "digits", "--image-size", "100000"], "image_size"),
    (["distill", "--data", "digits", "--student", "bogus"], "bogus"),
    (["theory", "--seeds", "1000000000000"], "seeds"),
    (["dedup", "--data", "digits", "--max-distance", "1000"], "max-distance"),
])
def test_out_of_range_settings_are_refused_before_work(tmp_path, args, needle):
    refused(*args, "--out", tmp_path / "OUT", needles=(needle,), out=tmp_path / "OUT")


def test_sizes_beyond_memory_are_refused_with_the_estimate(tmp_path, monkeypatch):
    import practicum.limits

    monkeypatch.setattr(practicum.limits, "available_memory", lambda: 2 ** 30)  # 1 GiB free
    line = refused("diffusion", "train", "--data", "digits", "--batch-size", "100000000", "--out", tmp_path / "a",
                   needles=("batch", "GiB", "--batch-size"), out=tmp_path / "a")
    assert "1 GiB is free" in line
    refused("practice", "--data", "digits", "--initial-size", "10000000", "--out", tmp_path / "b",
            needles=("pool of", "GiB"), out=tmp_path / "b")
    refused("generate", "--data", "digits", "--n", "100000000", "--out", tmp_path / "c",
            needles=("100000000 examples", "GiB"), out=tmp_path / "c")


def test_check_memory_compares_the_estimate_with_free_memory(monkeypatch):
    import practicum.limits as limits

    monkeypatch.setattr(limits, "available_memory", lambda: 3 * 2 ** 30)
    limits.check_memory(3 * 2 ** 30, "x", "y")  # exactly what is free: allowed
    with pytest.raises(ConfigError, match=r"about 3 GiB of memory but 3 GiB is free"):
        limits.check_memory(3 * 2 ** 30 + 2 ** 20, "x", "y")
    assert limits.available_memory.__call__() == 3 * 2 ** 30


def test_available_memory_reads_a_positive_number():
    from practicum.limits import available_memory

    assert 2 ** 20 < available_memory() < 2 ** 50


def test_distill_t_stop_past_the_steps_guides_nothing_and_is_refused(tmp_path):
    refused("distill", "--data", "digits", "--t-stop", "100000", "--out", tmp_path / "OUT",
            needles=("t-stop", "guides no step"), out=tmp_path / "OUT")


def test_fit_refuses_meaningless_levels_holdouts_and_curves(tmp_path, art):
    refused("fit", art / "good.csv", "--out", tmp_path / "a", "--n-boot", "1000000000000", needles=("n_boot",))
    refused("fit", art / "good.csv", "--out", tmp_path / "b", "--n-boot", "0", "--level", "0.999999999999",
            needles=("level",))
    refused("fit", art / "good.csv", "--out", tmp_path / "c", "--n-boot", "0", "--holdout-frac", "0.0001",
            needles=("holdout-frac", "fits 0"))
    zeros = tmp_path / "zeros.csv"
    zeros.write_text("curve,x,y\n" + "".join(f"z,{x},0\n" for x in (100, 200, 400, 800)))
    refused("fit", zeros, "--out", tmp_path / "d", "--n-boot", "0", needles=("all zeros",), out=tmp_path / "d")


def test_fit_on_two_sizes_warns_that_r2_says_nothing(tmp_path):
    two = tmp_path / "two.csv"
    two.write_text("curve,x,y\nt,100,0.3\nt,1000,0.2\n")
    result = invoke("fit", two, "--out", tmp_path / "OUT", "--n-boot", "0", "--family", "pow2", limit_s=LIMIT_S)
    assert result.traceback is None and result.code == 0, result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "R2 = 1 says nothing" in line]
    assert len(warnings) == 1, result.stdout


def test_generate_says_when_the_guidance_window_guides_nothing(tmp_path, art):
    from unittest import mock

    class Stop(Exception):
        pass

    with mock.patch("practicum.data.runstore.RunDir.create", side_effect=Stop):  # the warning comes before work
        result = invoke("generate", "--data", "digits", "--n", "2", "--learner", art / "learner",
                        "--guidance-every", "1000", "--out", tmp_path / "OUT", limit_s=LIMIT_S)
    assert result.traceback is not None and "Stop" in result.traceback.splitlines()[-1], result.stderr
    lines = [line for line in result.stderr.splitlines() if "--guidance-every 1000" in line]
    assert len(lines) == 1 and "50 sampling steps" in lines[0], result.stderr


# ---------------------------------------------------------------- pairing with the data (item 4)

def test_a_digits_learner_cannot_guide_fashion(tmp_path, art):
    refused("generate", "--data", "fashion", "--n", "2", "--learner", art / "learner", "--out", tmp_path / "OUT",
            needles=("1x8x8", "1x28x28"), out=tmp_path / "OUT")


def test_entropy_guidance_refuses_a_guide_for_other_images_or_classes(art):
    from practicum.learn.guide import load_guide
    from practicum.diffusion.guidance import EntropyGuidance

    guide = load_guide(art / "learner")  # 1x8x8, 10 classes
    term = EntropyGuidance(guide, 0.1)
    assert term.entropy(torch.zeros(2, 1, 8, 8)).shape == (2,)
    with pytest.raises(ConfigError, match="built for 1x8x8 images but the generator makes 1x28x28"):
        term.entropy(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="built for 1x8x8"):  # a resize cannot change the channels
        EntropyGuidance(guide, 0.1, input_size=(8, 8)).entropy(torch.zeros(2, 3, 28, 28))
    EntropyGuidance(guide, 0.1, input_size=(8, 8)).entropy(torch.zeros(2, 1, 28, 28))  # asked-for resize
    with pytest.raises(ConfigError, match="10 classes but the generator 7"):
        term.check_classes(7)


def test_a_digits_rater_cannot_score_fashion(tmp_path, art):
    refused("score", "--data", "fashion", "--rater", art / "rater", "--out", tmp_path / "OUT",
            needles=("1x8x8", "1x28x28"), out=tmp_path / "OUT")


def test_rater_json_names_the_same_checkpoint_as_its_folder(tmp_path, art):
    from practicum.select.rater import load_rater

    by_folder, by_json = load_rater(art / "rater"), load_rater(art / "rater" / "rater.json")
    assert by_folder[1] == by_json[1]
    for key, value in by_folder[0].state_dict().items():
        assert torch.equal(value, by_json[0].state_dict()[key])


# ---------------------------------------------------------------- corrupt artefacts (item 4)

def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_truncated_or_corrupt_model_files_are_one_error(tmp_path, art):
    from practicum.diffusion.builtin import load_trained

    weights = _copy(art / "model", tmp_path / "m1") / "denoiser.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelError, match="truncated"):
        load_trained(weights.parent)
    sidecar = _copy(art / "model", tmp_path / "m2") / "denoiser.json"
    sidecar.write_text(sidecar.read_text()[:40])
    with pytest.raises(ModelError, match="not valid JSON"):
        load_trained(sidecar.parent)
    meta = json.loads((art / "model" / "denoiser.json").read_text())
    sidecar = _copy(art / "model", tmp_path / "m3") / "denoiser.json"
    sidecar.write_text(json.dumps({**meta, "class_names": ["a", "b"]}))  # the weights have 11 class embeddings
    with pytest.raises(ModelError, match="2 class_names but 11 class embeddings"):
        load_trained(sidecar.parent)
    refused("generate", "--data", "digits", "--model", tmp_path / "m1", "--out", tmp_path / "OUT",
            needles=("denoiser.safetensors",), out=tmp_path / "OUT")


def test_nan_weights_are_refused_by_name(tmp_path, art):
    from safetensors.torch import load_file, save_file

    from practicum.learn import Learner

    folder = _copy(art / "learner", tmp_path / "l")
    tensors = load_file(str(folder / "learner.safetensors"))
    name = next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point())
    tensors[name][..., 0] = float("nan")
    save_file(tensors, str(folder / "learner.safetensors"))
    with pytest.raises(ModelError, match=f"tensor '{name}' holds NaN"):
        Learner.load(folder)


def test_learner_json_of_the_wrong_shape_is_refused(tmp_path, art):
    from practicum.learn import Learner

    meta = json.loads((art / "learner" / "learner.json").read_text())
    for broken, needle in [({**meta, "step": "7"}, "'step' is str"), ({**meta, "settings": []}, "'settings'"),
                           ({**meta, "model_spec": {**meta["model_spec"], "image_shape": [1, 8]}}, "model_spec"),
                           ({**meta, "model_spec": {**meta["model_spec"], "num_classes": 10 ** 12}}, "model_spec"),
                           ([meta], "JSON object")]:
        folder = _copy(art / "learner", tmp_path / f"l{len(list(tmp_path.iterdir()))}")
        (folder / "learner.json").write_text(json.dumps(broken))
        with pytest.raises(ModelError, match=needle):
            Learner.load(folder)
    refused("generate", "--data", "digits", "--learner", art / "learner" / "learner.json", "--out", tmp_path / "OUT",
            needles=("give the folder, not the file",), out=tmp_path / "OUT")


def test_a_latin1_yaml_config_is_one_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_bytes("# réglages\nsteps: 3\n".encode("latin-1"))
    for command in (["diffusion", "train"], ["study"]):
        refused(*command, "--config", config, "--out", tmp_path / "OUT", needles=("not UTF-8", "c.yaml"),
                out=tmp_path / "OUT")


def test_one_unet_key_adjusts_the_preset_and_does_not_replace_it():
    from practicum.diffusion.builtin import TRAIN_PRESETS
    from practicum.diffusion.train import DiffusionTrainSettings

    settings = DiffusionTrainSettings.build({"data": "digits", "unet": {"dropout": 0.1}})
    preset = TRAIN_PRESETS["digits"]["unet"]
    assert settings.unet == {**preset, "dropout": 0.1}
    own = {"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D"] * 2}  # a whole UNet of one's own
    assert DiffusionTrainSettings.build({"data": "digits", "unet": own}).unet == own


def _save_npz(path: Path, n: int = 40, **arrays) -> Path:
    base = {"x": np.zeros((n, 8, 8), np.uint8), "y": np.arange(n) % 4}
    np.savez(path, **{**base, **arrays})
    return path


@pytest.mark.parametrize("arrays, needle", [
    ({"split": np.array(["train"] * 39)}, "39 split for 40 labels"),
    ({"ids": np.array([f"i{k}" for k in range(41)])}, "41 ids for 40 labels"),
    ({"split": np.array(["train", "dev"] * 20)}, "unknown split name 'dev'"),
    ({"class_names": np.array([["a", "b"], ["c", "d"]])}, "class_names has shape (2, 2)"),
    ({"y": (np.arange(40) % 4).astype(np.uint64) + np.uint64(2 ** 64 - 8)}, "without gaps"),
    ({"y": np.arange(40) % 4 - 2}, "non-negative"),
])
def test_npz_files_whose_arrays_disagree_are_one_error(tmp_path, arrays, needle):
    from practicum.data import load_npz

    path = _save_npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=None) as caught:
        load_npz(path, "train")
    assert needle in str(caught.value) and str(path) in str(caught.value)
    refused("diffusion", "train", "--data", f"npz:{path}", "--out", tmp_path / "OUT", out=tmp_path / "OUT")


def test_diffusion_train_refuses_one_class_data(tmp_path):
    path = _save_npz(tmp_path / "one.npz", y=np.zeros(40, np.int64))
    refused("diffusion", "train", "--data", f"npz:{path}", "--out", tmp_path / "OUT", needles=("1 class",),
            out=tmp_path / "OUT")


def _png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _folder(root: Path, classes=("cat", "dog"), per_class: int = 10) -> Path:
    for name in classes:
        for i in range(per_class):
            _png(root / name / f"{i}.png", np.full((8, 8), i % 256, np.uint8))
    return root


def test_an_empty_class_folder_is_not_a_class(tmp_path):
    from practicum.data import load_image_folder

    root = _folder(tmp_path / "imgs")
    (root / "eel").mkdir()
    with pytest.raises(DataError, match="class folder .*eel holds no images"):
        load_image_folder(root, "train")


def test_a_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch):
    from PIL import Image

    from practicum.data import load_image_folder

    root = _folder(tmp_path / "imgs")
    _png(root / "dog" / "big.png", np.zeros((64, 64), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is "too large" here; 8x8 is not
    with pytest.raises(DataError, match="big.png is too large to decode"):
        load_image_folder(root, "train")


def test_mixed_modes_choose_colour_whatever_the_order(tmp_path):
    from practicum.data import load_image_folder

    root = _folder(tmp_path / "imgs", per_class=300)  # more files than a sample of the first 256 would see
    _png(root / "dog" / "zz.png", np.zeros((8, 8, 3), np.uint8))
    assert load_image_folder(root, "train").image_shape[0] == 3


def test_corrupt_image_is_one_error_naming_it(tmp_path):
    from practicum.data import load_image_folder

    root = _folder(tmp_path / "imgs")
    (root / "cat" / "3.png").write_bytes((root / "cat" / "3.png").read_bytes()[:30])
    errors = []
    for split in ("train", "val", "tune", "test"):  # the file lands in one split; that split's load refuses it
        try:
            load_image_folder(root, split)
        except DataError as exc:
            errors.append(str(exc))
    assert len(errors) == 1 and "3.png" in errors[0], errors


# ---------------------------------------------------------------- saved laws (predict)

def _law(art: Path) -> dict:
    return json.loads((art / "fit" / "fit.json").read_text())["curves"][0]


@pytest.mark.parametrize("change, needle", [
    (lambda c: {**c, "params": list(c["params"].values())}, "'params' must be a dict"),
    (lambda c: {**c, "params": {k: str(v) for k, v in c["params"].items()}}, "expected a finite number"),
    (lambda c: {**c, "params": {k: float("nan") for k in c["params"]}}, "is nan"),
    (lambda c: {**c, "x_scale": 0}, "x_scale is 0"),
    (lambda c: {**c, "x_range": [10, 1]}, "reversed"),
    (lambda c: {**c, "family": ["pow2"]}, "'family' must be a str"),
    (lambda c: [[c]], "list of laws"),
])
def test_predict_refuses_malformed_laws(tmp_path, art, change, needle):
    law = change(_law(art))
    path = tmp_path / "law.json"
    path.write_text(json.dumps({"curves": law} if isinstance(law, list) else {"curves": [law]}))
    refused("predict", path, "1000", needles=(needle, "law.json"))


def test_predict_on_a_good_law_still_predicts(art):
    result = invoke("predict", art / "fit" / "fit.json", "1000", limit_s=LIMIT_S)
    assert result.code == 0 and "y(1000) =" in result.stdout, result.stderr


# ---------------------------------------------------------------- scores (select)

@pytest.mark.parametrize("labels, needle", [
    (np.array([0, 1, -3, 1]), "labels are not class indices"),
    (np.array([0, 1, 2 ** 40, 1]), "labels are not class indices"),
    (np.array([0, 1, 2 ** 64 - 1, 1], np.uint64), "labels are not class indices"),
    (np.array([0, 1, 0.5, 1]), "labels are not class indices"),
])
def test_select_refuses_scores_with_impossible_labels(tmp_path, labels, needle):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "score": [0.1, 0.2, 0.3, 0.4], "label": labels}), path)
    refused("select", "--scores", path, "--keep", "2", "--out", tmp_path / "OUT", needles=(needle,),
            out=tmp_path / "OUT")


# ---------------------------------------------------------------- the readers themselves

def _safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors file written by hand: 8-byte header length, JSON header, raw little-endian data."""
    codes = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
    header, data, offset = {}, b"", 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": codes[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_safetensors_header_is_checked_against_a_hand_written_file(tmp_path):
    from safetensors.torch import load_file

    from practicum.files import read_safetensors, safetensors_header

    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([7])}))
    assert torch.equal(load_file(str(path))["a"], torch.arange(6.0).reshape(2, 3))  # the library agrees
    header = safetensors_header(path, ModelError, "fix")
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    tensors = read_safetensors(path, ModelError, "fix", expect={"a": ((2, 3), True), "b": ((1,), False)})
    assert tensors["b"].tolist() == [7]
    with pytest.raises(ModelError, match=r"tensor 'a' has shape \[2, 3\], expected \[3, 2\]"):
        read_safetensors(path, ModelError, "fix", expect={"a": ((3, 2), True), "b": ((1,), False)})
    with pytest.raises(ModelError, match="tensor 'b' is I64, expected floating point"):
        read_safetensors(path, ModelError, "fix", expect={"a": ((2, 3), True), "b": ((1,), True)})
    with pytest.raises(ModelError, match="lacks tensor 'c'"):
        read_safetensors(path, ModelError, "fix", expect={"a": ((2, 3), True), "b": ((1,), False),
                                                          "c": ((1,), True)})
    full = path.read_bytes()
    for cut, needle in [(len(full) - 1, "truncated or padded"), (5, "truncated"), (20, "exceeds the file")]:
        path.write_bytes(full[:cut])
        with pytest.raises(ModelError, match=needle):
            safetensors_header(path, ModelError, "fix")
    path.write_bytes(full + b"\x00")
    with pytest.raises(ModelError, match="truncated or padded"):
        safetensors_header(path, ModelError, "fix")
    path.write_bytes(full.replace(b'"F32"', b'"F16"'))  # the declared bytes no longer match the shape
    with pytest.raises(ModelError, match="entry for tensor 'a' is corrupt"):
        safetensors_header(path, ModelError, "fix")


def test_read_json_object_checks_types_without_coercion(tmp_path):
    from practicum.files import read_json_object

    path = tmp_path / "m.json"
    path.write_text('{"n": 3, "flag": true, "x": NaN}')
    assert read_json_object(path, DataError, "fix", {"n": int})["n"] == 3
    with pytest.raises(DataError, match="'flag' is bool"):
        read_json_object(path, DataError, "fix", {"flag": int})
    with pytest.raises(DataError, match="'x' is float"):
        read_json_object(path, DataError, "fix", {"x": float})
    path.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte 0xe9 at offset 7\)"):
        read_json_object(path, DataError, "fix")
    assert issubclass(DataError, PracticumError)
