"""Issue 16: the streaming learner pipeline (lazy folders, DataLoader workers, device-side
augmentation, AMP) and the ResNet-50 / ViT-B/16 / module:factory learners."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from practicum.errors import ConfigError, DataError
from practicum.learn import build_model
from practicum.learn.streaming import (
    DeviceAugment,
    evaluate_stream,
    make_loader,
    mix_on_device,
    normalization_for,
    open_stream,
    train_stream,
)


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, name in enumerate(("n01440764", "n01443537", "n01484850")):
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for i in range(4):
                arr = np.full((24, 40, 3), 60 * c, dtype=np.uint8) + rng.integers(0, 20, (24, 40, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    return tmp_path


def test_folder_stream_decodes_lazily_to_uint8(folder):
    stream = open_stream(f"folder:{folder}", "train", load_size=16)
    assert len(stream) == 12 and stream.class_names[0] == "n01440764"
    x, y = stream[5]
    assert x.dtype == torch.uint8 and x.shape == (3, 16, 16) and y == 1  # shorter side 24 → 16, centre crop
    batches = list(make_loader(stream, 5, workers=0, seed=0))
    assert [len(b[0]) for b in batches] == [5, 5]  # drop_last
    again = [b[1].tolist() for b in make_loader(stream, 5, workers=0, seed=0)]
    assert again == [b[1].tolist() for b in batches]  # seeded shuffle
    with pytest.raises(ConfigError, match="cannot stream"):
        open_stream("npz:x", "train")


def test_hf_source_needs_the_optional_package(tmp_path):
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="datasets"):
            open_stream(f"hf:{tmp_path}", "train")
    else:
        with pytest.raises(DataError):
            open_stream(f"hf:{tmp_path / 'missing'}", "train")


def test_device_augment_is_batched_and_normalises():
    aug = DeviceAugment(8, normalization="minus_one_one", scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0)
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    # a full-image crop without flip at the same size is the identity (up to interpolation at 8px)
    out = aug(images, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, images.float() / 127.5 - 1, atol=1e-4, rtol=0)
    flip = DeviceAugment(8, normalization="minus_one_one", scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0)
    torch.testing.assert_close(flip(images, torch.Generator().manual_seed(0)), out.flip(-1), atol=1e-4, rtol=0)
    rrc = DeviceAugment(6)
    a = rrc(images, torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 6, 6) and torch.equal(a, rrc(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, rrc(images, torch.Generator().manual_seed(2)))
    assert normalization_for("resnet50") == "imagenet" and normalization_for("cnn") == "minus_one_one"
    with pytest.raises(ConfigError):
        DeviceAugment(8, scale=(0.0, 1.0))


def test_mix_on_device_keeps_soft_targets_normalised():
    x = torch.randn(6, 3, 8, 8)
    t = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    for kwargs in ({"mixup_alpha": 0.5}, {"cutmix_alpha": 1.0}):
        mx, mt = mix_on_device(x, t, torch.Generator().manual_seed(0), **kwargs)
        assert mx.shape == x.shape and torch.allclose(mt.sum(1), torch.ones(6))
        assert not torch.equal(mt, t)


def test_train_stream_with_amp_on_a_tiny_resnet50(folder):
    stream = open_stream(f"folder:{folder}", "train", load_size=20)
    model = build_model("resnet50", 3, (3, 16, 16), width=4, seed=0)
    aug = DeviceAugment(16, normalization=normalization_for("resnet50"), scale=(0.5, 1.0))
    stats = train_stream(model, make_loader(stream, 4, workers=0), steps=4, num_classes=3, augment=aug,
                         amp_dtype="bf16", mixup_alpha=0.5, cutmix_alpha=1.0)
    assert stats["steps"] == 4 and stats["images"] == 16 and np.isfinite(stats["mean_loss"])
    val = open_stream(f"folder:{folder}", "val", load_size=20)
    result = evaluate_stream(model, make_loader(val, 4, workers=0, shuffle=False, drop_last=False), aug)
    assert result["n"] == 12 and 0 <= result["accuracy"] <= 1


def test_resnet50_and_vit_shapes():
    m = build_model("resnet50", 1000, (3, 224, 224))
    assert sum(p.numel() for p in m.parameters()) == 25_557_032  # the published ResNet-50 size
    v = build_model("vit_b16", 5, (3, 32, 32), width=64, seed=0)
    assert v(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ConfigError, match="patches"):
        build_model("vit_b16", 5, (3, 30, 30), width=64)


def test_module_factory_learner(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(
        "import torch.nn as nn\n"
        "def build(num_classes, image_shape):\n"
        "    c, h, w = image_shape\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))\n"
        "def bad(num_classes):\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    m = build_model("my_nets:build", 4, (1, 8, 8), seed=0)
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 4) and m.practicum_spec["arch"] is None  # no code name is saved
    with pytest.raises(ConfigError, match="not a torch nn.Module"):
        build_model("my_nets:bad", 4, (1, 8, 8))
    with pytest.raises(ConfigError, match="cannot import"):
        build_model("my_nets:missing", 4, (1, 8, 8))
