"""The rater: heads, the first-order gradient, schedules, learning on a tiny noisy case, checkpoints."""

import math

import numpy as np
import pytest
import torch

from practicum.errors import ConfigError
from practicum.select.nets import DiffusionProxy, RaterNet
from practicum.select.pool import MemoryPool, ParquetPool, diffusion_draws, write_embeddings
from practicum.select.rater import (
    RaterSettings,
    RaterTrainer,
    gamma_at,
    lin0,
    load_rater,
    rate,
    rater_meta,
    save_rater,
    train_rater,
)


def blobs(n: int, classes: int = 4, dim: int = 8, flip: float = 0.0, seed: int = 0):
    """Well-separated Gaussian classes in `dim` dimensions; a `flip` fraction gets a wrong label."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 3, size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    x = centres[y] + rng.normal(0, 0.7, size=(n, dim))
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=int(flip * n), replace=False)] = True
    y_obs = y.copy()
    y_obs[flipped] = (y[flipped] + rng.integers(1, classes, size=flipped.sum())) % classes
    ids = np.array([f"ex-{seed}-{i}" for i in range(n)])
    return MemoryPool(torch.tensor(x, dtype=torch.float32), torch.tensor(y_obs), ids, classes), flipped


def test_heads_score_is_p_times_g():
    torch.manual_seed(0)
    rater = RaterNet((1, 8, 8), 10)
    x, y = torch.randn(6, 1, 8, 8), torch.arange(6)
    out = rater(x, y)
    assert out["p"].sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(out["p"], torch.softmax(out["a"], 0))
    assert out["g"].ndim == 0 and 0 < out["g"].item() < 1
    assert torch.allclose(out["score"], out["p"] * out["g"])
    single = RaterNet((5,), 3, heads="single")
    s = single(torch.randn(4, 5), torch.tensor([0, 1, 2, 0]))
    assert "g" not in s and torch.equal(s["score"], s["a"])


def test_first_order_gradient_formula():
    """∂R/∂s_i = (1/B) · w_i · (ℓ_i − Σ_j w_j ℓ_j) for R = (1/B) Σ softmax(s)_i ℓ_i."""
    s = torch.tensor([0.3, -0.2, 0.9, 0.1], requires_grad=True)
    ell = torch.tensor([1.0, 2.5, 0.2, 0.7])
    w = torch.softmax(s, 0)
    ((w * ell).sum() / 4).backward()
    expected = w.detach() * (ell - (w.detach() * ell).sum()) / 4
    assert torch.allclose(s.grad, expected, atol=1e-7)


def test_gamma_and_lin0_schedules():
    settings = RaterSettings()
    assert gamma_at(settings, 0) == 1.0
    assert gamma_at(settings, 2) == pytest.approx(0.94)
    assert gamma_at(settings, 100) == 0.0  # clipped at the floor
    total = 1000
    assert lin0(0, total) == pytest.approx(0.005)
    assert lin0(20, total) == 1.0 and lin0(60, total) == 1.0  # warm 20 steps, flat 50
    assert lin0(total, total) == pytest.approx(0.01)
    assert 0.01 < lin0(500, total) < 1.0


@pytest.mark.parametrize("field, value", [("gamma_start", 1.5), ("gamma_floor", -0.1), ("gamma_step", -0.03),
                                          ("grad_clip", 0.0), ("weight_decay", -0.05)])
def test_gamma_and_optimiser_settings_out_of_range_are_refused(field, value):
    # γ mixes γ·L_val + (1 − γ)·L_w, so it must stay in [0, 1]; a clip norm of 0 or a negative decay means nothing
    with pytest.raises(ConfigError, match=field):
        RaterSettings.build({field: value})
    assert getattr(RaterSettings.build({field: 0.5}), field) == 0.5


def test_diffusion_draws_depend_only_on_the_id():
    t1, n1 = diffusion_draws(np.array(["a", "b"]), 4, 3, 1000)
    t2, n2 = diffusion_draws(np.array(["b", "a"]), 4, 3, 1000)
    assert torch.equal(t1[0], t2[1]) and torch.equal(n1[1], n2[0])
    proxy = DiffusionProxy((4,), 2)
    losses = proxy(torch.zeros(2, 4), torch.tensor([0, 1]), (t1, n1))
    assert losses.shape == (2,) and torch.isfinite(losses).all()


def _auc(scores_bad: np.ndarray, scores_good: np.ndarray) -> float:
    """P(a good example outranks a bad one)."""
    return float((scores_good[:, None] > scores_bad[None, :]).mean())


def test_rater_learns_to_down_weight_wrong_labels():
    train, flipped = blobs(384, flip=0.3, seed=1)
    val, _ = blobs(192, seed=2)
    settings = RaterSettings(epochs=8, iterations_per_epoch=25, batch_size=32, lr=3e-4, proxy_lr=3e-3, proxy_warmup=50, seed=0)
    trainer = train_rater(settings, train, val)
    instance = rate(trainer.rater, train.x, train.y, mode="instance")
    assert _auc(instance[flipped], instance[~flipped]) > 0.9
    group = rate(trainer.rater, train.x, train.y, mode="group", batch_size=128)  # three equal batches
    assert _auc(group[flipped], group[~flipped]) > 0.75


@pytest.mark.parametrize("rule", ["unrolled", "two_model"])
def test_other_update_rules_train_the_rater(rule):
    train, flipped = blobs(128, flip=0.3, seed=3)
    val, _ = blobs(64, seed=4)
    settings = RaterSettings(update_rule=rule, epochs=2, iterations_per_epoch=5, batch_size=32, seed=0)
    trainer = RaterTrainer(settings, train.input_shape, 4)
    before = {k: v.clone() for k, v in trainer.rater.state_dict().items()}
    record = trainer.run_epoch(0, train, val, 5)
    assert all(math.isfinite(v) for v in record.values())
    assert any(not torch.equal(before[k], v) for k, v in trainer.rater.state_dict().items())
    if rule == "two_model":
        assert trainer.second is not None and "excess_mean" in record
    else:
        assert "loss_val_lookahead" in record


def test_unrolled_objective_is_the_lookahead_validation_loss():
    train, _ = blobs(16, seed=5)
    val, _ = blobs(16, seed=6)
    trainer = RaterTrainer(RaterSettings(update_rule="unrolled", lookahead_lr=0.5), train.input_shape, 4)
    theta = {k: v.detach().clone() for k, v in trainer.proxy.named_parameters()}
    batch_tr = next(train.shuffled_batches(16, 0))
    batch_val = next(val.shuffled_batches(16, 0))
    weights = torch.full((16,), 1 / 16)
    objective = trainer._lookahead_objective(theta, batch_tr, batch_val, weights, None, None)
    # by hand: one SGD step of the proxy on the uniformly weighted train loss
    proxy = trainer.proxy
    proxy.zero_grad()
    proxy(batch_tr.x, batch_tr.y).mean().backward()
    with torch.no_grad():
        for p in proxy.parameters():
            p -= 0.5 * p.grad
        expected = proxy(batch_val.x, batch_val.y).mean()
    assert objective.item() == pytest.approx(expected.item(), rel=1e-5)


def test_checkpoint_round_trip(tmp_path):
    train, _ = blobs(64, seed=7)
    trainer = RaterTrainer(RaterSettings(), train.input_shape, 4)
    save_rater(tmp_path / "r.safetensors", trainer.rater, rater_meta(trainer, 0))
    loaded, meta = load_rater(tmp_path / "r.safetensors")
    assert meta["epoch"] == 0
    assert np.array_equal(rate(trainer.rater, train.x, train.y), rate(loaded, train.x, train.y))


def test_parquet_pool_streams_embeddings(tmp_path):
    pool, _ = blobs(100, seed=8)
    path = tmp_path / "emb.parquet"
    write_embeddings(path, pool.ids, pool.y.numpy(), pool.x.numpy(), row_group_size=16)
    streamed = ParquetPool(path)
    assert len(streamed) == 100 and streamed.dim == 8 and streamed.num_classes == 4
    assert streamed.num_row_groups == 7
    batches = streamed.shuffled_batches(32, seed=0)
    seen = np.concatenate([next(batches).ids for _ in range(3)])
    assert len(set(seen.tolist())) == 96  # one pass without repeats
    first = next(streamed.groups([0]))
    assert torch.allclose(first.x, pool.x[:16])


@pytest.mark.parametrize("model", ["tiny", "builtin"])
def test_diffusion_proxies_train_with_the_rater(model):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(16, 1, 8, 8, generator=gen) * 2 - 1
    pool = MemoryPool(images, torch.arange(16) % 10, np.array([f"img-{i}" for i in range(16)]), 10)
    settings = RaterSettings(proxy="diffusion", diffusion_model=model, batch_size=4, diffusion_draws=2)
    trainer = RaterTrainer(settings, pool.input_shape, 10)
    record = trainer.run_epoch(0, pool, pool, 1)
    assert math.isfinite(record["loss_val"]) and record["loss_val"] > 0
    batch = next(pool.shuffled_batches(4, 0))
    with torch.no_grad():
        first = trainer.proxy(batch.x, batch.y, trainer._draws(batch))
        again = trainer.proxy(batch.x, batch.y, trainer._draws(batch))
    assert torch.equal(first, again)  # fixed draws per id: the loss changes only with the model
