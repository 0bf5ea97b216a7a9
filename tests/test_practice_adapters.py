"""Deliberate Practice in a user's own training loop: a plain loop, Lightning and the Hugging Face Trainer.

Each trains a tiny user model on a pool grown by a tiny random diffusers UNet (8x8 digits shape)
and checks that every round was triggered by patience running out and was entropy-guided."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from practicum.data import load_digits
from practicum.errors import ConfigError, DataError
from practicum.learn.patience import Patience, round_due
from practicum.practice import DeliberatePractice, DiffusionGenerator, GrowingPool, GrowingSampler
from tiny_models import save_tiny_pixel_unet


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    folder = save_tiny_pixel_unet(tmp_path_factory.mktemp("tiny_unet"))
    return DiffusionGenerator(str(folder), sampling={"steps": 3}, guidance={"every": 1})


@pytest.fixture(scope="module")
def val():
    return load_digits("val")


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def _accuracy(net, data):
    with torch.no_grad():
        return float((net(data.images).argmax(1) == data.labels).float().mean())


def _dp(net, generator, **options):
    settings = dict(num_classes=10, image_shape=(1, 8, 8), initial_size=20, add_size=10, t_init=1, max_rounds=2)
    return DeliberatePractice(net, generator, **{**settings, **options})


def _check_rounds(dp, initial=20, added=10):
    """The pool grew by guided rounds, each right after an evaluation that exhausted patience."""
    rounds = [e for e in dp.events if e["event"] == "injection"]
    assert dp.rounds == len(rounds) >= 1
    assert len(dp.pool) == initial + added * dp.rounds
    assert torch.bincount(dp.pool.rounds).tolist() == [initial] + [added] * dp.rounds
    for i, event in enumerate(dp.events):
        if event["event"] == "injection":
            before = dp.events[i - 1]
            assert before["event"] == "eval" and not before["improved"] and before["patience"] >= before["t_max"]
            assert event["omega"] > 0 and np.isfinite(event["new_entropy_mean"])


# ---------------------------------------------------------------- the pieces

def test_round_due_is_the_loops_rule():
    patience = Patience(t_init=2, initial_size=10)
    patience.update(0.5)
    patience.update(0.4)
    assert not round_due(patience, 0, None)  # one miss of two
    patience.update(0.4)
    assert round_due(patience, 0, None) and round_due(patience, 2, 3)
    assert not round_due(patience, 3, 3)  # no rounds left
    assert not round_due(patience, 0, None, step=5, first_step=10)  # in the warm-up
    assert not round_due(patience, 0, None, step=90, stop_step=90)  # in the cool-down
    assert round_due(patience, 0, None, step=50, first_step=10, stop_step=90)


def test_sampler_draws_from_the_pool_as_it_grows():
    pool = GrowingPool(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long))
    sampler = iter(GrowingSampler(pool, num_samples=400, seed=0))
    first = [next(sampler) for _ in range(200)]
    pool.add(torch.ones(4, 1, 2, 2), torch.ones(4, dtype=torch.long), round_index=1)
    later = [next(sampler) for _ in range(200)]
    assert max(first) == 3 and max(later) == 7  # the new round is drawn in the same epoch
    assert 0.35 < np.mean(np.array(later) >= 4) < 0.65
    assert pool[5][1] == 1 and pool.rounds.tolist() == [0] * 4 + [1] * 4
    keyed = GrowingPool(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), keys=("pixel_values", "labels"))
    assert set(keyed[1]) == {"pixel_values", "labels"}
    with pytest.raises(DataError, match="cannot add"):
        pool.add(torch.zeros(2, 3, 2, 2), torch.zeros(2), round_index=2)


def test_a_loss_metric_counts_a_fall_as_an_improvement(generator):
    dp = _dp(_net(), generator, higher_is_better=False, t_init=2)
    assert dp.step(1.0) is None and dp.step(0.9) is None and dp.events[-1]["improved"]
    assert dp.step(0.95) is None and dp.step(0.95) is not None  # two evaluations without a lower loss
    assert dp.rounds == 1 and len(dp.pool) == 30


def test_track_needs_a_folder(generator):
    with pytest.raises(ConfigError, match="out="):
        _dp(_net(), generator, track="tensorboard")


# ---------------------------------------------------------------- a plain loop

def test_plain_loop_grows_the_pool_when_patience_runs_out(generator, val, tmp_path):
    net = _net()
    dp = _dp(net, generator, out=tmp_path / "dp", first_step=10)
    loader = DataLoader(dp.pool, batch_size=16, sampler=GrowingSampler(dp.pool, num_samples=16 * 10, seed=0))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    step = 0
    for _ in range(6):
        for images, labels in loader:
            loss = nn.functional.cross_entropy(net(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        dp.step(_accuracy(net, val), step=step)
    dp.close()
    _check_rounds(dp)
    assert all(e["step"] >= 10 for e in dp.events if e["event"] == "injection")
    logged = [json.loads(line) for line in (tmp_path / "dp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in logged] == [e["event"] for e in dp.events]
    from practicum.data.pool import Pool

    assert len(Pool(tmp_path / "dp" / "pool")) == len(dp.pool)  # the rounds are on disk too


# ---------------------------------------------------------------- Lightning

def test_lightning_callback_grows_the_pool(generator, val):
    import lightning.pytorch as L
    from practicum.practice.lightning import DeliberatePracticeCallback

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _net()

        def forward(self, images):
            return self.net(images)

        def training_step(self, batch, _):
            images, labels = batch
            return nn.functional.cross_entropy(self(images), labels)

        def validation_step(self, batch, _):
            images, labels = batch
            self.log("val_accuracy", (self(images).argmax(1) == labels).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    model = Classifier()
    dp = _dp(model.net, generator)
    train = DataLoader(dp.pool, batch_size=16, sampler=GrowingSampler(dp.pool, num_samples=16 * 5, seed=0))
    valid = DataLoader(torch.utils.data.TensorDataset(val.images, val.labels), batch_size=512)
    trainer = L.Trainer(max_epochs=8, callbacks=[DeliberatePracticeCallback(dp)], accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, train, valid)
    _check_rounds(dp)
    assert [e["step"] for e in dp.events if e["event"] == "eval"] == [5 * (i + 1) for i in range(8)]


# ---------------------------------------------------------------- the Hugging Face Trainer

def test_hf_trainer_callback_grows_the_pool(generator, val, tmp_path):
    import transformers
    from practicum.practice.hf import DeliberatePracticeCallback

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _net()

        def forward(self, pixel_values, labels=None):
            logits = self.net(pixel_values)
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = nn.functional.cross_entropy(logits, labels)
            return out

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(1) == prediction.label_ids).mean())}

    model = Classifier()
    dp = _dp(model, generator)  # the whole HF model: DeliberatePractice reads its `logits`
    dp.pool.keys = ("pixel_values", "labels")
    valid = GrowingPool(val.images, val.labels, keys=("pixel_values", "labels"))
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=40, eval_strategy="steps",
                                          eval_steps=5, per_device_train_batch_size=8, learning_rate=0.05,
                                          save_strategy="no", report_to=[], use_cpu=True, logging_strategy="no",
                                          dataloader_num_workers=0, disable_tqdm=True, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=dp.pool, eval_dataset=valid,
                                   compute_metrics=accuracy, callbacks=[DeliberatePracticeCallback(dp)])
    trainer.train()
    _check_rounds(dp)
    assert [e["step"] for e in dp.events if e["event"] == "eval"] == list(range(5, 41, 5))
