"""The pool format: shards + index.parquet, round trip, resume, errors."""

from __future__ import annotations

import pytest
import torch

from practicum.data.pool import Pool, decode_images, encode_images
from practicum.errors import DataError


def _images(n, seed=0, shape=(1, 8, 8)):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_round_trip_uint8_and_index(tmp_path):
    pool = Pool(tmp_path / "pool")
    images = _images(5)
    assert pool.append("r0000-s00000", images, [0, 1, 2, 3, 4], round_index=0, seeds=17,
                       settings={"omega": 0.05, "form": "latent"}, values={"entropy": torch.arange(5.0)},
                       class_names=[str(c) for c in range(10)])
    assert pool.append("r0001-s00000", _images(3, 1), [5, 6, 7], round_index=1, seeds=[1, 2, 3])
    data = pool.to_dataset()
    assert len(data) == 8 and data.class_names == tuple(str(c) for c in range(10))
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert (data.images[:5] - images).abs().max() <= 0.5 / 127.5 + 1e-6  # uint8 quantisation
    index = Pool(tmp_path / "pool").index()  # read back from disk
    assert list(index.columns[:6]) == ["id", "shard", "row", "label", "seed", "round"]
    assert index["seed"].tolist() == [17] * 5 + [1, 2, 3]
    assert index["entropy"].iloc[:5].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert index["omega"].iloc[0] == 0.05 and index["form"].iloc[0] == "latent"
    assert len(set(index["id"])) == 8
    assert pool.to_dataset(rounds=[1]).labels.tolist() == [5, 6, 7]
    assert pool.table().num_rows == 8


def test_float16_pool_keeps_more_precision(tmp_path):
    pool = Pool(tmp_path / "pool", dtype="float16")
    images = _images(4)
    pool.append("a", images, [0, 1, 0, 1])
    assert (pool.to_dataset().images - images).abs().max() < 1e-3


def test_append_is_idempotent_for_resume(tmp_path):
    pool = Pool(tmp_path / "pool")
    assert pool.append("s0", _images(4), [0, 1, 2, 3])
    before = (tmp_path / "pool" / "index.parquet").read_bytes()
    assert not Pool(tmp_path / "pool").append("s0", _images(4, 9), [3, 3, 3, 3])  # already there: skipped
    assert (tmp_path / "pool" / "index.parquet").read_bytes() == before
    assert Pool(tmp_path / "pool").shards() == ["s0"]


def test_a_shard_file_without_an_index_entry_is_rewritten(tmp_path):
    # a crash between writing the shard and the index leaves an orphan shard: appending again repairs it
    pool = Pool(tmp_path / "pool")
    pool.append("s0", _images(2), [0, 1])
    (tmp_path / "pool" / "shard-s1.safetensors").write_bytes(b"torn")
    assert not pool.has_shard("s1")
    assert pool.append("s1", _images(2, 1), [1, 0])
    assert len(pool.to_dataset()) == 4


def test_same_inputs_same_bytes(tmp_path):
    for name in ("a", "b"):
        Pool(tmp_path / name).append("s0", _images(3), [0, 1, 2], seeds=5, values={"entropy": [0.1, 0.2, 0.3]})
    for file in ("index.parquet", "shard-s0.safetensors", "pool.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_bad_appends_are_data_errors(tmp_path):
    pool = Pool(tmp_path / "pool")
    with pytest.raises(DataError):
        pool.append("bad name!", _images(1), [0])
    with pytest.raises(DataError):
        pool.append("s0", _images(2), [0])
    with pytest.raises(DataError, match="non-finite"):
        pool.append("s0", torch.full((1, 1, 8, 8), float("nan")), [0])
    pool.append("s0", _images(1), [0])
    with pytest.raises(DataError, match="holds"):
        pool.append("s1", _images(1, shape=(1, 4, 4)), [0])
    with pytest.raises(DataError):
        Pool(tmp_path / "x", dtype="int8")
    with pytest.raises(DataError, match="ids"):
        pool.append("s2", _images(1), [0], ids=["s0-00000"])


def test_missing_shard_file_is_reported(tmp_path):
    pool = Pool(tmp_path / "pool")
    pool.append("s0", _images(2), [0, 1])
    (tmp_path / "pool" / "shard-s0.safetensors").unlink()
    with pytest.raises(DataError, match="missing"):
        pool.to_dataset()


def test_encoding_round_trip_bounds():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 3.0]).view(1, 1, 2, 3)
    stored = encode_images(x, "uint8")
    assert stored.dtype == torch.uint8 and stored.min() == 0 and stored.max() == 255
    assert decode_images(stored).max() == 1.0
