"""Issue 26, item 8: a fuzz suite over files, not flags.

Real artefacts written by practicum itself (a learner folder, a rater folder, a diffusion model
folder, a fit.json, settings YAML, an npz, a scores parquet, an image folder, a curves CSV) are
built once per module, then corrupted by hypothesis: truncated, bytes flipped or inserted, JSON
fields swapped, retyped or deleted, tensors dropped, renamed, reshaped, retyped or filled with
NaN, npz arrays of other lengths, dtypes or label ranges. Each corrupted file goes through the
one reader of its kind; the reader must return a usable object or raise one PracticumError
(never another exception), within LIMIT_S. Corruptions that leave no valid file (a truncated
safetensors or JSON object, a missing, misshapen or NaN tensor) must be refused, by file name.

A second part throws extreme values (1e300, -1, 2**64, 1e-300...) at every numeric flag of every
command; each must be refused in one `error:` line or pass validation, and reaching the run
folder counts as passing (the run itself is not started: `RunDir.create` is replaced by a stop).

Cases per run (derandomized, so CI is deterministic): learner 100, rater 150, model 40, safetensors
header 200, law 200, YAML 200, CSV 120, npz 180, scores 130, image folder 40, CLI files 30, numeric
flags 110 = 1,500 (about 2 minutes on a busy 2-core box).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import tempfile
from pathlib import Path
from unittest import mock

from diffusers import UNet2DModel  # noqa: F401 - imported up front: LIMIT_S times the readers, not imports
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practicum.errors import PracticumError
from reliability_helpers import invoke
from tiny_models import save_tiny_rater
from test_bad_input_properties import NUMERIC_FLAGS, POSITIONAL, VALID_CSV

LIMIT_S = 10.0
FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
ASSETS = Path(__file__).resolve().parents[1] / "practicum" / "assets"


# ---------------------------------------------------------------- the artefacts, built once

@pytest.fixture(scope="module")
def art(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """{kind: {file name: bytes}} of artefacts practicum wrote."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from practicum.data import load_source
    from practicum.diffusion.generate_run import GenerateSettings
    from practicum.diffusion.train import DiffusionTrainSettings
    from practicum.learn.learner import train_classifier

    root = tmp_path_factory.mktemp("fuzz-art")
    digits = load_source("digits", "train")
    train_classifier(digits, steps=1, width=8).save(root / "learner")
    save_tiny_rater(root / "rater" / "rater.safetensors")
    (root / "curves.csv").write_text(VALID_CSV)
    assert invoke("fit", root / "curves.csv", "--out", root / "fit", "--n-boot", "0", "--family", "pow2").code == 0
    x = ((digits.images[:60] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()[:, 0]
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=digits.labels[:60].numpy(), ids=np.asarray(digits.ids[:60]),
             split=np.array((["train"] * 4 + ["val", "test"]) * 10))
    scores = io.BytesIO()
    pq.write_table(pa.table({"id": [f"e{i}" for i in range(40)], "label": np.arange(40) % 4,
                             "score": np.linspace(0, 1, 40)}), scores)
    png = io.BytesIO()
    Image.fromarray(x[0]).save(png, format="PNG")
    return {
        "learner": {n: (root / "learner" / n).read_bytes() for n in ("learner.json", "learner.safetensors")},
        "rater": {n: (root / "rater" / n).read_bytes() for n in ("rater.json", "rater.safetensors")},
        "model": {"denoiser.json": (ASSETS / "digits_unet.json").read_bytes(),
                  "denoiser.safetensors": (ASSETS / "digits_unet.safetensors").read_bytes()},
        "law": {"fit.json": (root / "fit" / "fit.json").read_bytes()},
        "yaml": {"generate.yaml": GenerateSettings().to_yaml().encode(),
                 "train.yaml": DiffusionTrainSettings.build(data="digits").to_yaml().encode(),
                 "fit.yaml": (root / "fit" / "config.yaml").read_bytes()},
        "npz": {"d.npz": buffer.getvalue()},
        "scores": {"scores.parquet": scores.getvalue()},
        "png": {"0.png": png.getvalue()},
        "csv": {"curves.csv": VALID_CSV.encode()},
    }


class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = LIMIT_S):
    def stop(signum, frame):
        raise TookTooLong(f"a reader ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(read, must_fail: bool, names: tuple[str, ...]) -> PracticumError | None:
    """Run a reader: a PracticumError is returned, any other exception fails the case."""
    try:
        with time_limit():
            read()
    except PracticumError as exc:
        assert "\n" not in str(exc).strip(), str(exc)
        if must_fail:
            assert any(name in str(exc) for name in names), f"the error does not name the file: {exc}"
        return exc
    assert not must_fail, "a corrupt file was accepted"
    return None


# ---------------------------------------------------------------- corruptions

@st.composite
def corrupt_bytes(draw, data: bytes) -> tuple[bytes, bool]:
    """(corrupted bytes, whether no valid file can remain): truncation is fatal, flips may not be."""
    how = draw(st.sampled_from(["truncate", "truncate", "flip", "insert", "empty", "garbage"]))
    if how == "truncate":
        return data[:draw(st.integers(1, len(data.rstrip()) - 1))], True
    if how == "empty":
        return b"", True
    if how == "garbage":
        return draw(st.binary(min_size=1, max_size=64)), False
    position = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        return data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1:], False
    return data[:position] + draw(st.binary(min_size=1, max_size=16)) + data[position:], False


ODD_VALUES = [None, "text", "7", [], [1, 2], {}, {"a": 1}, -1, 0, 10 ** 30, 1e308, -1e308, True, 0.5,
              float("nan"), float("inf")]


def _paths(value, prefix=()):
    """Every (path of keys) into a JSON value, so a mutation can reach nested fields."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list) and value:
        yield from _paths(value[0], (*prefix, 0))


@st.composite
def mutated_json(draw, data: bytes) -> bytes:
    """Change one field anywhere in the document: delete it, retype it, or swap it with another."""
    doc = json.loads(data)
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["retype", "retype", "delete", "swap"]))
    if how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "swap":
        other = draw(st.sampled_from(paths))
        holder = doc
        for key in other[:-1]:
            holder = holder[key]
        with contextlib.suppress(KeyError, IndexError, TypeError):
            parent[path[-1]], holder[other[-1]] = holder[other[-1]], parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.sampled_from(ODD_VALUES))
    return json.dumps(doc).encode()


TENSOR_FATAL = {"drop", "rename", "reshape", "nan", "integer"}


@st.composite
def mutated_tensors(draw, data: bytes, names: list[str] | None = None) -> tuple[bytes, bool]:
    """Re-save the tensors with one changed: dropped, renamed, reshaped, retyped, NaN, or one added."""
    from safetensors.torch import load, save

    tensors = load(data)
    name = draw(st.sampled_from(sorted(names if names is not None else tensors)))
    how = draw(st.sampled_from(["drop", "rename", "reshape", "nan", "integer", "half", "extra"]))
    tensor = tensors[name]
    fatal = how in TENSOR_FATAL
    if how == "drop":
        del tensors[name]
        fatal = not name.endswith("num_batches_tracked")  # BatchNorm loads without its step counter
    elif how == "rename":
        tensors[name + "_renamed"] = tensors.pop(name)
    elif how == "reshape":
        tensors[name] = torch.zeros(tensor.numel() + draw(st.integers(1, 3)), dtype=tensor.dtype)
    elif how == "nan":
        if not tensor.is_floating_point() or tensor.numel() == 0:
            return data, False
        tensor = tensor.clone()
        tensor.view(-1)[draw(st.integers(0, tensor.numel() - 1))] = draw(st.sampled_from([math.nan, math.inf]))
        tensors[name] = tensor
    elif how == "integer":
        fatal = tensor.is_floating_point()
        tensors[name] = tensor.to(torch.int64)
    elif how == "half":
        fatal = not tensor.is_floating_point()
        tensors[name] = tensor.to(torch.float16)
    else:
        tensors["zz_extra"] = torch.zeros(3)
    return save(tensors), fatal


def _folder(files: dict[str, bytes]):
    tmp = tempfile.TemporaryDirectory(prefix="practicum-fuzz-")
    root = Path(tmp.name) / "artefact"
    root.mkdir()
    for name, payload in files.items():
        (root / name).write_bytes(payload)
    return tmp, root


def _corrupted(draw, files: dict[str, bytes], tensor_names=None) -> tuple[dict[str, bytes], bool, str]:
    """One file of an artefact folder corrupted; (files, fatal, the corrupted file's name)."""
    name = draw(st.sampled_from(sorted(files)))
    data = files[name]
    if name.endswith(".json"):
        how = draw(st.sampled_from(["bytes", "json", "json"]))
        if how == "json":
            return {**files, name: draw(mutated_json(data))}, False, name
        changed, fatal = draw(corrupt_bytes(data))
        return {**files, name: changed}, fatal, name
    how = draw(st.sampled_from(["bytes", "tensors", "tensors"]))
    if how == "tensors":
        changed, fatal = draw(mutated_tensors(data, tensor_names))
    else:
        changed, fatal = draw(corrupt_bytes(data))
    return {**files, name: changed}, fatal, name


# ---------------------------------------------------------------- model, learner, rater folders

def _learner_weight_names(data: bytes) -> list[str]:
    """The network's tensors: a change to any of them must be refused (optimiser moments may be recast)."""
    from safetensors.torch import load

    return [k for k in load(data) if k.startswith(("model.", "ema."))]


@settings(FAST, max_examples=100)
@given(data=st.data())
def test_corrupt_learner_folders_are_one_error(art, data):
    from practicum.learn import Learner

    files = art["learner"]
    changed, fatal, name = _corrupted(data.draw, files, _learner_weight_names(files["learner.safetensors"]))
    tmp, root = _folder(changed)
    with tmp:
        outcome(lambda: Learner.load(root), fatal, (name,))


@settings(FAST, max_examples=150)
@given(data=st.data())
def test_corrupt_rater_folders_are_one_error(art, data):
    from practicum.select.rater import load_rater

    _exact_layout_folder_case(data, art["rater"], load_rater)


def _exact_layout_folder_case(data, files, load) -> None:
    """A corrupted copy of a folder whose reader knows the exact layout (an added tensor is refused too)."""
    changed, fatal, name = _corrupted(data.draw, files)
    tmp, root = _folder(changed)
    with tmp:
        outcome(lambda: load(root), fatal or name.endswith(".safetensors") and _extra(changed[name]), (name,))


def _extra(data: bytes) -> bool:
    """An added tensor is refused by the readers that know the exact layout (rater, model)."""
    from practicum.errors import ModelError
    from practicum.files import safetensors_header

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(data)
        handle.flush()
        try:
            return "zz_extra" in safetensors_header(handle.name, ModelError, "fix")
        except PracticumError:
            return False


@settings(FAST, max_examples=40)
@given(data=st.data())
def test_corrupt_model_folders_are_one_error(art, data):
    from practicum.diffusion.builtin import load_trained

    _exact_layout_folder_case(data, art["model"], load_trained)


@settings(FAST, max_examples=200)
@given(data=st.data())
def test_safetensors_headers_are_checked_against_the_file(art, data):
    """Any byte-level damage to a weights file: the header check refuses it, or the library loads it whole."""
    from practicum.errors import ModelError
    from practicum.files import read_safetensors

    source = data.draw(st.sampled_from(["learner", "rater"]))
    name = f"{source}.safetensors"
    changed, fatal = data.draw(corrupt_bytes(art[source][name]))
    tmp, root = _folder({name: changed})
    with tmp:
        outcome(lambda: read_safetensors(root / name, ModelError, "fix"), fatal, (name,))


# ---------------------------------------------------------------- laws, settings, curves

@settings(FAST, max_examples=200)
@given(data=st.data())
def test_corrupt_laws_are_one_error(art, data):
    from practicum.scaling.cli_fit import load_law, run_predict

    original = art["law"]["fit.json"]
    if data.draw(st.booleans()):
        changed, fatal = data.draw(corrupt_bytes(original))
    else:
        changed, fatal = data.draw(mutated_json(original)), False
    tmp, root = _folder({"fit.json": changed})
    with tmp, contextlib.redirect_stdout(io.StringIO()):
        if outcome(lambda: load_law(root / "fit.json"), fatal, ("fit.json",)) is None:
            outcome(lambda: run_predict(root / "fit.json", [1e3, 1e9], target=0.1), False, ())


@settings(FAST, max_examples=200)
@given(data=st.data())
def test_corrupt_yaml_settings_are_one_error(art, data):
    from practicum.diffusion.generate_run import GenerateSettings
    from practicum.diffusion.train import DiffusionTrainSettings
    from practicum.scaling.cli_fit import FitSettings

    name = data.draw(st.sampled_from(sorted(art["yaml"])))
    cls = {"generate.yaml": GenerateSettings, "train.yaml": DiffusionTrainSettings, "fit.yaml": FitSettings}[name]
    original = art["yaml"][name]
    how = data.draw(st.sampled_from(["bytes", "latin1", "value"]))
    if how == "bytes":
        changed, _ = data.draw(corrupt_bytes(original))
    elif how == "latin1":
        changed = original + "# réglé\n".encode("latin-1")
    else:
        import yaml

        doc = yaml.safe_load(original)
        key = data.draw(st.sampled_from(sorted(doc)))
        doc[key] = data.draw(st.sampled_from(ODD_VALUES[:14]))
        changed = yaml.safe_dump(doc).encode()
    tmp, root = _folder({name: changed})
    with tmp:
        outcome(lambda: cls.from_yaml(root / name), how == "latin1", (name,))


@settings(FAST, max_examples=120)
@given(data=st.data())
def test_corrupt_curve_csvs_are_one_error(art, data):
    from practicum.scaling.io import read_curves

    changed, _ = data.draw(corrupt_bytes(art["csv"]["curves.csv"]))
    tmp, root = _folder({"curves.csv": changed})
    with tmp:
        outcome(lambda: read_curves(root / "curves.csv"), False, ())


# ---------------------------------------------------------------- npz, scores, image folders

@st.composite
def mutated_npz(draw, data: bytes) -> tuple[bytes, bool]:
    with np.load(io.BytesIO(data)) as stored:
        arrays = {k: stored[k] for k in stored.files}
    key = draw(st.sampled_from(sorted(arrays)))
    how = draw(st.sampled_from(["length", "dtype", "labels", "drop", "ndim", "nan"]))
    value = arrays[key]
    fatal = True
    if how == "length":
        arrays[key] = value[:draw(st.integers(0, len(value) - 1))]
    elif how == "dtype":
        fatal = False
        with contextlib.suppress(ValueError, TypeError, OverflowError):  # e.g. ids that are not numbers
            arrays[key] = value.astype(draw(st.sampled_from([np.float64, np.int8, np.uint64, np.bool_, "U3"])))
    elif how == "labels":
        arrays["y"] = arrays["y"].astype(np.int64) + draw(st.sampled_from([-5, 10 ** 6, 2 ** 40]))
        if draw(st.booleans()):
            arrays["y"] = (arrays["y"] % 4).astype(np.uint64) + np.uint64(2 ** 64 - 8)
    elif how == "drop":
        del arrays[key]
        fatal = key in ("x", "y")
    elif how == "ndim":
        arrays[key] = value[:, None] if value.ndim < 4 else value[:, 0]
        fatal = key != "x"
    else:
        arrays["x"] = arrays["x"].astype(np.float32)
        arrays["x"][draw(st.integers(0, len(arrays["x"]) - 1)), 0, 0] = draw(st.sampled_from([np.nan, np.inf]))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), fatal


@settings(FAST, max_examples=180)
@given(data=st.data())
def test_corrupt_npz_files_are_one_error(art, data):
    from practicum.data import load_npz

    original = art["npz"]["d.npz"]
    if data.draw(st.integers(0, 3)) == 0:
        changed, fatal = data.draw(corrupt_bytes(original))
    else:
        changed, fatal = data.draw(mutated_npz(original))
    tmp, root = _folder({"d.npz": changed})
    with tmp:
        split = data.draw(st.sampled_from(["train", "val", "test"]))
        result = outcome(lambda: load_npz(root / "d.npz", split), fatal, ("d.npz",))
        if result is None:  # accepted: then it is a usable dataset
            dataset = load_npz(root / "d.npz", split)
            assert torch.isfinite(dataset.images).all() and dataset.images.abs().max() <= 1.0001
            assert int(dataset.labels.max()) < dataset.num_classes and int(dataset.labels.min()) >= 0


@settings(FAST, max_examples=130)
@given(data=st.data())
def test_corrupt_scores_are_one_error(art, data):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from practicum.select.pipeline import read_scores

    original = art["scores"]["scores.parquet"]
    how = data.draw(st.sampled_from(["bytes", "column", "column"]))
    if how == "bytes":
        changed, fatal = data.draw(corrupt_bytes(original))
    else:
        table = pq.read_table(io.BytesIO(original)).to_pydict()
        column = data.draw(st.sampled_from(["label", "score", "id"]))
        row = data.draw(st.integers(0, 39))
        odd = data.draw(st.sampled_from([-1, 2 ** 62, math.nan, math.inf, 0.5, "x", None]))
        values = list(table[column])
        values[row] = odd
        try:
            table[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a string among numbers: the column becomes text
            table[column] = pa.array([str(v) for v in values])
        buffer = io.BytesIO()
        pq.write_table(pa.table(table), buffer)
        # any odd label is refused; a score only when it is not a finite number; ids are free text
        fatal = {"label": True, "id": False}.get(column, odd in ("x", None) or not math.isfinite(odd))
        changed = buffer.getvalue()
    tmp, root = _folder({"scores.parquet": changed})
    with tmp:
        outcome(lambda: read_scores(root / "scores.parquet"), fatal, ("scores.parquet",))


@settings(FAST, max_examples=40)
@given(data=st.data())
def test_corrupt_images_in_a_folder_are_one_error(art, data):
    from PIL import Image

    from practicum.data import load_image_folder

    png = art["png"]["0.png"]
    changed, _ = data.draw(corrupt_bytes(png))
    with tempfile.TemporaryDirectory(prefix="practicum-fuzz-") as tmp:
        root = Path(tmp)
        for c in ("a", "b"):
            (root / "train" / c).mkdir(parents=True)
            (root / "val" / c).mkdir(parents=True)
            (root / "test" / c).mkdir(parents=True)
            for split in ("train", "val", "test"):
                (root / split / c / "0.png").write_bytes(png)
        (root / "train" / "a" / "1.png").write_bytes(changed)
        limit = data.draw(st.sampled_from([None, 32]))
        with mock.patch.object(Image, "MAX_IMAGE_PIXELS", limit or Image.MAX_IMAGE_PIXELS):
            outcome(lambda: load_image_folder(root, "train"), limit is not None, ("png",))


# ---------------------------------------------------------------- the same files through the CLI

@settings(FAST, max_examples=30)
@given(data=st.data())
def test_corrupt_files_through_the_cli_are_one_line(art, data):
    kind = data.draw(st.sampled_from(["law", "law", "scores", "scores", "learner"]))
    if kind == "law":
        changed, _ = data.draw(corrupt_bytes(art["law"]["fit.json"]))
        files = {"fit.json": changed}
    elif kind == "scores":
        changed, _ = data.draw(corrupt_bytes(art["scores"]["scores.parquet"]))
        files = {"scores.parquet": changed}
    else:
        files, _, _ = _corrupted(data.draw, art["learner"],
                                 _learner_weight_names(art["learner"]["learner.safetensors"]))
    tmp, root = _folder(files)
    with tmp:
        args = {"law": ["predict", root / "fit.json", "1000"],
                "scores": ["select", "--scores", root / "scores.parquet", "--keep", "10", "--out", root / "OUT"],
                "learner": ["generate", "--data", "digits", "--n", "2", "--steps", "2", "--learner", root,
                            "--out", root / "OUT"]}[kind]
        with mock.patch("practicum.data.runstore.RunDir.create", side_effect=ReachedWork):
            result = invoke(*args, limit_s=LIMIT_S)
        _refused_or_started(result)


# ---------------------------------------------------------------- extreme values of every numeric flag

class ReachedWork(Exception):
    """Validation passed and the run folder was about to be made: the case is answered."""


def _refused_or_started(result) -> None:
    if result.traceback is not None and "ReachedWork" in result.traceback.strip().splitlines()[-1]:
        return
    if result.code == 0:
        assert result.traceback is None
        return
    result.assert_one_line_error()


EXTREME = {"float": ["1e300", "-1e300", "1e-300", "-1e-300", "0", "-0.0", "1e13", "-1", "4294967296",
                     "1.7976931348623157e308", "5e-324"],
           "int": ["0", "-1", "10000000000000", "-10000000000000", str(2 ** 63), str(2 ** 64), str(10 ** 29),
                   "2147483648", "4294967296"]}


DIGITS_COMMANDS = {("generate",), ("practice",), ("distill",), ("rate",), ("diffusion", "train"), ("dedup",),
                   ("label-issues",), ("cover",), ("score",)}


@settings(FAST, max_examples=110)
@given(flag=st.sampled_from(NUMERIC_FLAGS), data=st.data())
def test_extreme_numeric_flags_are_refused_or_validated_in_time(art, flag, data):
    path, name, kind = flag
    value = data.draw(st.sampled_from(EXTREME[kind]))
    tmp_dir, tmp = _folder({**art["rater"], **art["law"], **art["scores"]})
    with tmp_dir:
        (tmp / "CSV").write_text(VALID_CSV)
        needs = {("predict",): [tmp / "fit.json", "1000"], ("score",): ["--rater", tmp],
                 ("select",): ["--scores", tmp / "scores.parquet"]}.get(path, [])
        extra = ["--data", "digits"] if path in DIGITS_COMMANDS else []
        out = [] if path == ("predict",) else ["--out", tmp / "OUT"]
        args = [*path, *[str(tmp / a) for a in POSITIONAL.get(path, [])], *needs, f"{name}={value}", *extra, *out]
        with mock.patch("practicum.data.runstore.RunDir.create", side_effect=ReachedWork):
            result = invoke(*args, limit_s=LIMIT_S)
        _refused_or_started(result)
        assert not (tmp / "OUT").exists()


def test_the_suite_covers_every_kind_of_file(art):
    assert set(art) == {"learner", "rater", "model", "law", "yaml", "npz", "scores", "png", "csv"}
    assert len(NUMERIC_FLAGS) >= 20
