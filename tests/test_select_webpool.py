"""The web-like Fashion pool: fractions, harmful share, ids, confusable flips, graded severity, determinism."""

import numpy as np
import torch

from practicum.data import Dataset
from practicum.select import webpool
from practicum.select.pipeline import DataSettings, load_split


def _clean(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    base = torch.linspace(-1, 1, 28)[None, :].expand(28, 28)
    images = (base[None, None] * (labels[:, None, None, None] / 9.0) + 0.3 * torch.rand(n, 1, 28, 28, generator=g))
    return Dataset(images.clamp(-1, 1).float(), labels, np.array([f"x{i}" for i in range(n)]),
                   tuple(str(c) for c in range(10)))


def test_web_pool_kinds_fractions_and_harmful_share():
    clean = _clean()
    pool, info = webpool.build_web_pool(clean, duplicate_sources=20, seed=0)
    assert np.array_equal(pool.ids, clean.ids) and pool.images.shape == clean.images.shape
    counts = {k: int((info["kind"] == k).sum()) for k in webpool.WEB_FRACTIONS}
    assert counts == {k: round(f * 1000) for k, f in webpool.WEB_FRACTIONS.items()}
    assert 0.1 < info["harmful"].mean() <= 0.20
    flips = info["kind"] == "label_flip"
    assert all(webpool.CONFUSABLE[int(a)] == int(b) for a, b in zip(clean.labels[flips], pool.labels[flips]))
    untouched = info["kind"] == "clean"
    assert torch.equal(pool.images[untouched], clean.images[untouched])
    dups = pool.images[info["kind"] == "duplicate"].reshape(100, -1)
    # near-copies of at most 20 plain sources: every duplicate has a close twin
    d = torch.cdist(dups, dups) + torch.eye(100) * 1e9
    assert (d.min(dim=1).values < 2.0).float().mean() > 0.9
    again, info2 = webpool.build_web_pool(clean, duplicate_sources=20, seed=0)
    assert torch.equal(again.images, pool.images) and np.array_equal(info2["kind"], info["kind"])


def test_graded_severity_degrades_more():
    clean = _clean()
    pool, info = webpool.build_web_pool(clean, seed=1)
    rows = np.flatnonzero(info["kind"] == "noise")
    change = (pool.images[rows] - clean.images[rows]).pow(2).mean(dim=(1, 2, 3)).numpy()
    assert np.corrcoef(info["severity"][rows], change)[0, 1] > 0.8


def test_rank_by_kind_and_the_fashion_web_source():
    ranks = webpool.rank_by_kind(np.array([3.0, 2.0, 1.0, 0.0]), np.array(["a", "a", "b", "b"]),
                                 harmful=np.array([False, False, False, True]))
    assert np.isclose(ranks["a"]["mean_rank_pct"], 1 / 6) and np.isclose(ranks["b"]["mean_rank_pct"], 5 / 6)
    assert ranks["(harmful)"] == {"count": 1, "mean_rank_pct": 1.0}
    val, _ = load_split(DataSettings(data="fashion-web"), "val")
    assert len(val) == 3000 and np.bincount(val.labels.numpy()).tolist() == [300] * 10  # the 3,000-row hold-out
