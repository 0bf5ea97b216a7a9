import math

import numpy as np
import pytest
import torch
from torch import nn

from practicum.data import Dataset, load_digits
from practicum.errors import ConfigError, ModelError
from practicum.learn import (ARCHS, Learner, Patience, TrainSettings, build_model, cooldown_start,
                             train_classifier, wsd_factor)
from practicum.learn.augment import mix_batch, random_shift


def _tiny(n=40, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    images = torch.randn(n, 1, 8, 8, generator=g).clamp(-1, 1) * 0.3
    images[:, 0, 0, :] = labels[:, None].float() / k  # a learnable cue
    return Dataset(images, labels, np.array([f"x{i}" for i in range(n)]), tuple(map(str, range(k))))


def test_wsd_schedule_shape():
    total = 100
    f = [wsd_factor(s, total, 0.1, 0.2) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)  # linear warm-up over 10 steps
    assert all(a < b for a, b in zip(f[:10], f[1:10]))
    assert all(v == 1.0 for v in f[10:80])  # stable
    assert cooldown_start(total, 0.2) == 80
    assert all(a > b for a, b in zip(f[80:], f[81:]))  # cosine decay
    assert f[-1] == pytest.approx(0.0, abs=1e-12)
    # half-way through the cool-down the cosine is at one half
    assert wsd_factor(89, total, 0.1, 0.2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 20)))
    assert wsd_factor(total, total) == 0.0


def test_settings_validate():
    with pytest.raises(ConfigError):
        TrainSettings.build({"warmup_fraction": 0.7, "cooldown_fraction": 0.5})
    with pytest.raises(ConfigError):
        TrainSettings.build({"unknown": 1})
    assert TrainSettings(steps=50).cooldown_start == 40


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_models_give_logits(arch, shape):
    model = build_model(arch, 7, shape, seed=1)
    # same seed, same initial weights
    other = build_model(arch, 7, shape, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    assert model(torch.zeros(2, *shape)).shape == (2, 7)
    assert "cnn" in ARCHS and "mlp" in ARCHS


def test_unknown_arch():
    with pytest.raises(ConfigError, match="unknown learner architecture"):
        build_model("transformer-xxl", 10, (1, 8, 8))


def test_ema_follows_the_model_as_an_average():
    data = _tiny()
    learner = Learner(build_model("mlp", 4, (1, 8, 8), width=16, seed=0),
                      TrainSettings(steps=30, ema_decay=0.9, augment=False, lr=1e-2), seed=0)
    before = [p.detach().clone() for p in learner.ema.parameters()]
    learner.train_on(data.images, data.labels)
    # after step 1 the warm-up decay is min(0.9, 2/11): ema = 2/11 * old + 9/11 * new
    d = min(0.9, 2 / 11)
    for e, old, new in zip(learner.ema.parameters(), before, learner.model.parameters()):
        assert torch.allclose(e, d * old + (1 - d) * new.detach(), atol=1e-6)
    learner.fit(data, steps=20)
    diffs = [float((e - p.detach()).abs().max()) for e, p in zip(learner.ema.parameters(), learner.model.parameters())]
    assert max(diffs) > 0  # an average, not a copy
    off = Learner(build_model("mlp", 4, (1, 8, 8), width=16), TrainSettings(steps=5, ema_decay=None))
    assert off.ema is None and off.logits(data.images).shape == (40, 4)


def test_save_load_continues_bit_identically(tmp_path):
    data = _tiny()
    settings = dict(steps=24, augment=True, mixup_alpha=0.4, cutmix_alpha=1.0, lr=5e-3)
    straight = Learner(build_model("cnn", 4, (1, 8, 8), width=8, seed=3), TrainSettings(**settings), seed=3)
    losses_a = [straight.train_on(data.images, data.labels) for _ in range(24)]

    first = Learner(build_model("cnn", 4, (1, 8, 8), width=8, seed=3), TrainSettings(**settings), seed=3)
    losses_b = [first.train_on(data.images, data.labels) for _ in range(10)]
    first.save(tmp_path / "ckpt")
    resumed = Learner.load(tmp_path / "ckpt")
    assert resumed.step == 10
    losses_b += [resumed.train_on(data.images, data.labels) for _ in range(14)]
    assert losses_a == losses_b
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(straight.logits(data.images), resumed.logits(data.images))


def test_channels_last_learner_trains_the_same_model_in_another_layout(tmp_path):
    data = _tiny()
    settings = dict(steps=12, augment=True, lr=5e-3)
    plain = Learner(build_model("cnn", 4, (1, 8, 8), width=8, seed=3), TrainSettings(**settings), seed=3)
    fast = Learner(build_model("cnn", 4, (1, 8, 8), width=8, seed=3),
                   TrainSettings(**settings, memory_format="channels_last"), seed=3)
    conv = next(p for p in fast.model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    losses_plain = [plain.train_on(data.images, data.labels) for _ in range(6)]
    losses_fast = [fast.train_on(data.images, data.labels) for _ in range(6)]
    # the same arithmetic up to rounding: same batches, same updates, logits agree to float precision
    assert np.allclose(losses_plain, losses_fast, rtol=1e-4)
    assert torch.allclose(plain.logits(data.images), fast.logits(data.images), atol=1e-4)
    # a checkpoint (stored contiguous) resumes in the run's layout and continues bit-identically
    fast.save(tmp_path / "ckpt")
    resumed = Learner.load(tmp_path / "ckpt")
    conv = next(p for p in resumed.model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert [fast.train_on(data.images, data.labels) for _ in range(3)] == \
        [resumed.train_on(data.images, data.labels) for _ in range(3)]
    assert torch.equal(fast.logits(data.images), resumed.logits(data.images))


def test_copy_is_independent():
    data = _tiny()
    learner = Learner(build_model("mlp", 4, (1, 8, 8), width=16, seed=0), TrainSettings(steps=20), seed=0)
    learner.fit(data, steps=5)
    twin = learner.copy()
    a = [learner.train_on(data.images, data.labels) for _ in range(3)]
    b = [twin.train_on(data.images, data.labels) for _ in range(3)]
    assert a == b and twin.step == learner.step == 8


def test_user_model_and_load_errors(tmp_path):
    data = _tiny()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    learner = Learner(model, TrainSettings(steps=4, ema_decay=None), seed=0).fit(data)
    learner.save(tmp_path / "user")
    with pytest.raises(ModelError, match="user model"):
        Learner.load(tmp_path / "user")
    again = Learner.load(tmp_path / "user", model=nn.Sequential(nn.Flatten(), nn.Linear(64, 4)))
    assert torch.equal(again.logits(data.images), learner.logits(data.images))
    with pytest.raises(ModelError, match="no saved learner"):
        Learner.load(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="budget"):
        learner.fit(data, steps=1)
    with pytest.raises(ConfigError, match="nn.Module"):
        Learner("not a model")


def test_guide_model_is_frozen_differentiable_copy():
    data = _tiny()
    learner = Learner(build_model("cnn", 4, (1, 8, 8), width=8, seed=0), TrainSettings(steps=5), seed=0).fit(data)
    guide = learner.guide_model()
    assert not guide.training and all(not p.requires_grad for p in guide.parameters())
    x = data.images[:3].clone().requires_grad_(True)
    logp = torch.log_softmax(guide(x), 1)
    (-(logp.exp() * logp).sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert learner.model.training  # the learner itself is untouched
    assert torch.allclose(learner.entropy(data.images[:3]), -(logp.exp() * logp).sum(1).detach(), atol=1e-5)


def test_augmentations_keep_shapes_and_targets_sum_to_one():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    shifted = random_shift(x, g, max_shift=1)
    assert shifted.shape == x.shape and shifted.min() >= -1
    y = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    for alphas in [(0.5, 0.0), (0.0, 1.0)]:
        mx, my = mix_batch(x, y, g, *alphas)
        assert mx.shape == x.shape and torch.allclose(my.sum(1), torch.ones(6))


def test_learns_digits_quickly():
    torch.manual_seed(0)
    learner = train_classifier(load_digits("train"), steps=250, arch="mlp", seed=0)
    result = learner.evaluate(load_digits("val"))
    assert result["n"] == 135 and result["accuracy"] > 0.93


def test_patience_rules():
    p = Patience(t_init=2, initial_size=100)
    assert p.t_max == 2
    assert p.update(0.5) and not p.update(0.5) and not p.exhausted
    assert not p.update(0.4) and p.exhausted
    p.new_round(pool_size=150)
    assert p.t_max == 3 and p.count == 0 and p.best == 0.5 and p.rounds == 1
    p.new_round(pool_size=200)
    assert p.t_max == 4
    inc = Patience(t_init=1, initial_size=100, rule="increment")
    inc.new_round(500)
    inc.new_round(900)
    assert inc.t_max == 3
    fixed = Patience(t_init=3, initial_size=100, rule="fixed", reset_best=True)
    fixed.update(0.9)
    fixed.new_round(1000)
    assert fixed.t_max == 3 and fixed.best == float("-inf")
    assert Patience.from_state(p.state()) == p
