"""Data sources: fixed digits splits, image folders, npz files."""

import numpy as np
import pytest
import torch

from practicum.data import load_digits, load_image_folder, load_npz, load_source
from practicum.errors import DataError


def test_digits_splits_are_fixed_disjoint_and_complete():
    splits = {s: load_digits(s) for s in ("train", "val", "tune", "test")}
    assert [len(splits[s]) for s in ("train", "val", "tune", "test")] == [987, 135, 135, 540]
    ids = [set(d.ids.tolist()) for d in splits.values()]
    assert sum(len(i) for i in ids) == len(set().union(*ids)) == 1797  # disjoint and complete
    train = splits["train"]
    assert train.images.dtype == torch.float32 and train.image_shape == (1, 8, 8)
    assert train.images.min() >= -1 and train.images.max() <= 1
    assert train.num_classes == 10 and train.class_counts().min() >= 95
    # stable: the same ids and pixels every call
    again = load_digits("train")
    assert (again.ids == train.ids).all() and torch.equal(again.images, train.images)


def test_fashion_splits_are_fixed_stratified_disjoint_and_complete():
    from practicum.data import fashion_split_indices, load_fashion

    index = fashion_split_indices()
    assert {s: len(i) for s, i in index.items()} == {"train": 50000, "val": 5000, "tune": 5000, "test": 10000}
    assert len(np.unique(np.concatenate(list(index.values())))) == 70000
    val = load_fashion("val")
    assert val.image_shape == (1, 28, 28) and val.images.dtype == torch.float32
    assert val.images.min() == -1 and val.images.max() == 1
    assert (val.class_counts() == 500).all() and val.class_names[9] == "Ankle boot"
    # ids name the row of the shipped file, so they are stable and the pixels can be found again
    row = int(val.ids[7].split("-")[1])
    assert val.ids[7] == f"fashion-{row:05d}" and row == index["val"][7]
    again = load_source("fashion", "val")
    assert (again.ids == val.ids).all() and torch.equal(again.images, val.images)


def test_fashion_file_is_the_documented_one():
    import hashlib

    from practicum.data.sources import FASHION_FILE

    digest = hashlib.sha256(FASHION_FILE.read_bytes()).hexdigest()
    assert digest == "680f8d9f40a1f30289935f64bcb142fb8283fe6328fac14f2ef06ae014334671"
    assert (FASHION_FILE.parent / "FASHION-MNIST-LICENSE.txt").exists()


def test_unknown_split_and_source():
    with pytest.raises(DataError, match="split"):
        load_digits("holdout")
    with pytest.raises(DataError, match="unknown data source"):
        load_source("nowhere")


def _write_folder(root, n_per_class=10, size=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_image_folder_roundtrip(tmp_path):
    _write_folder(tmp_path)
    parts = [load_image_folder(tmp_path, s) for s in ("train", "val", "tune", "test")]
    assert sum(len(p) for p in parts) == 20
    train = parts[0]
    assert train.class_names == ("cat", "dog") and train.image_shape == (1, 6, 6)
    assert train.ids[0].startswith("cat/") or train.ids[0].startswith("dog/")
    assert load_image_folder(tmp_path, "train", size=4, channels=3).image_shape == (3, 4, 4)
    assert torch.equal(load_source(f"folder:{tmp_path}", "train").images, train.images)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_image_folder(tmp_path / "empty")


def test_npz_source(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (30, 5, 5), dtype=np.uint8)
    y = np.arange(30) % 3
    split = np.array(["train"] * 20 + ["val"] * 5 + ["test"] * 5)
    np.savez(tmp_path / "d.npz", x=x, y=y, split=split, ids=np.array([f"e{i}" for i in range(30)]))
    train = load_npz(tmp_path / "d.npz", "train")
    assert len(train) == 20 and train.ids[0] == "e0" and train.image_shape == (1, 5, 5)
    assert np.allclose(train.images[0, 0].numpy(), x[0] / 127.5 - 1)
    np.savez(tmp_path / "bad.npz", x=x.astype(np.float32) * 3, y=y)
    with pytest.raises(DataError, match=r"\[-1, 1\]"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "noy.npz", x=x)
    with pytest.raises(DataError, match="no array 'y'"):
        load_npz(tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", x=x, y=y, ids=np.array([object()] * 30, dtype=object))
    with pytest.raises(DataError, match="pickles"):
        load_npz(tmp_path / "obj.npz")
