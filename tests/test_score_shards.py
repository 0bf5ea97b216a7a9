"""`practicum score` shards: each worker gets its own rows, never the whole split (issue 16, item 6)."""

import pickle

import numpy as np
import pytest
import torch

from practicum.data import ShardRows
from practicum.select import pipeline
from practicum.select.rater import RaterSettings, RaterTrainer, rater_meta, save_rater


@pytest.fixture()
def rater_file(tmp_path):
    trainer = RaterTrainer(RaterSettings(), (1, 8, 8), 10)
    save_rater(tmp_path / "r.safetensors", trainer.rater, rater_meta(trainer, 0))
    return str(tmp_path / "r.safetensors")


def test_shard_rows_pickle_only_their_rows():
    images = torch.arange(40, dtype=torch.float32).reshape(10, 1, 2, 2)
    rows = ShardRows({"images": images, "ids": np.array([f"e{i}" for i in range(10)])}, [7, 2, 5])
    local = rows.read()
    assert torch.equal(local["images"], images[[7, 2, 5]]) and local["ids"].tolist() == ["e7", "e2", "e5"]
    shipped = pickle.loads(pickle.dumps(rows))
    assert {name: len(column) for name, column in shipped.columns.items()} == {"images": 3, "ids": 3}
    again = shipped.read()
    assert torch.equal(again["images"], local["images"]) and again["ids"].tolist() == local["ids"].tolist()
    assert isinstance(again["images"], torch.Tensor) and again["images"].dtype == torch.float32


def test_a_score_shard_travels_with_its_rows_alone_and_scores_the_same(rater_file, monkeypatch):
    config = pipeline.ScoreSettings(rater=rater_file, mode="group", shard_size=256, batch_size=64,
                                  source=pipeline.DataSettings(data="digits", defects=True))
    items, total = pipeline.score_items(config, rater_file)
    assert len(items) == 4 and sum(len(item["rows"]) for item in items) == total == 987  # 16 batches of 61-62
    split_bytes = len(pickle.dumps(items[0]["rows"].columns))  # the whole split, every column

    def no_split(*args, **kwargs):
        raise AssertionError("a shard loaded the split")

    monkeypatch.setattr(pipeline, "load_split", no_split)
    monkeypatch.setattr("practicum.data.load_source", no_split)
    for item in (items[0], items[-1]):
        blob = pickle.dumps(item)  # what the Ray engine sends a worker
        assert len(blob) < 0.3 * split_bytes  # about 1/4 of the split (247 of 987 rows), not all of it
        shipped = pickle.loads(blob)
        assert len(shipped["rows"].columns["images"]) == len(item["rows"]) == sum(item["batch_sizes"])
        here, there = pipeline.score_shard(item), pipeline.score_shard(shipped)
        assert set(here) == {"id", "label", "score", "kind"}
        for name in here:
            assert here[name].tobytes() == there[name].tobytes()
