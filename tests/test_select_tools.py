"""Curation tools: perceptual-hash and SemDeDup dedup, confident learning, thresholds/intersections, coverage."""

import numpy as np
import pytest

from practicum.errors import ConfigError
from practicum.select import coverage, dedup, filters, label_issues


def _images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random((n, 16, 16))
    return np.repeat(np.repeat(base[:, ::2, ::2], 2, axis=1), 2, axis=2)  # some structure to hash


def test_perceptual_hash_is_robust_to_small_changes_and_separates_images():
    imgs = _images()
    near = imgs[0] * 0.9 + 0.05 + np.random.default_rng(1).normal(0, 0.01, imgs[0].shape)  # contrast + noise
    h = dedup.perceptual_hash(np.concatenate([imgs, near[None]]))
    assert h.shape == (7, 64)
    d = dedup.hamming(h, h)
    assert d[0, 6] <= 4 and d[0, 0] == 0
    assert d[0, 1:6].min() > 12  # unrelated images differ in many bits


def test_hamming_and_hash_dedup_hand_checked():
    h = np.array([[1, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 1]], dtype=bool)
    assert dedup.hamming(h, h).tolist() == [[0, 1, 4], [1, 0, 3], [4, 3, 0]]
    assert dedup.hash_dedup(h, max_distance=1).tolist() == [True, False, True]
    # priority picks which copy survives; chunking does not change the answer
    assert dedup.hash_dedup(h, max_distance=1, priority=[0, 5, 1], chunk=1).tolist() == [False, True, True]


def test_semdedup_drops_near_copies_within_a_cluster():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(20, 8))
    copies = base[:5] + rng.normal(0, 1e-3, size=(5, 8))
    keep = dedup.semdedup(np.concatenate([base, copies]), eps=0.01, n_clusters=3)
    assert keep[:20].sum() + keep[20:].sum() == 20  # one of each copy pair survives, nothing else goes
    assert all(keep[i] != keep[20 + i] for i in range(5))


def test_confident_learning_hand_checked():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.75, 0.25]])  # dyadic: exact thresholds
    labels = np.array([0, 0, 1, 1])
    assert label_issues.per_class_thresholds(probs, labels).tolist() == [0.75, 0.625]
    assert label_issues.confident_joint(probs, labels).tolist() == [[1, 0], [1, 1]]
    assert label_issues.find_label_issues(probs, labels).tolist() == [False, False, False, True]
    assert label_issues.label_quality(probs, labels).tolist() == [1.0, 0.5, 1.0, 0.25]


def _flipped_blobs():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    x = rng.normal(0, 0.6, size=(120, 2)) + np.array([[0, 0], [4, 0], [0, 4]])[y]
    noisy = y.copy()
    flipped = rng.choice(120, size=8, replace=False)
    noisy[flipped] = (noisy[flipped] + 1) % 3
    return x, noisy, flipped


def test_cleanlab_agrees_with_the_confident_off_diagonal_rule():
    """cleanlab now counts; on a fixed case it flags exactly what practicum's own rule flagged."""
    x, noisy, _ = _flipped_blobs()
    probs = label_issues.out_of_sample_probs(x, noisy, folds=4)
    # the rule practicum implemented by hand before: j* = most probable class above its threshold
    thresholds = np.array([probs[noisy == j, j].mean() for j in range(3)])
    above = probs >= thresholds
    star = np.where(above.any(axis=1), np.where(above, probs, -np.inf).argmax(axis=1), -1)
    joint = np.zeros((3, 3), dtype=int)
    np.add.at(joint, (noisy[star >= 0], star[star >= 0]), 1)
    assert np.allclose(label_issues.per_class_thresholds(probs, noisy), thresholds)
    assert label_issues.confident_joint(probs, noisy).tolist() == joint.tolist()
    assert label_issues.find_label_issues(probs, noisy).tolist() == ((star >= 0) & (star != noisy)).tolist()


def test_imagehash_dedup_agrees_with_the_numpy_dct_hash():
    """imagehash now hashes; on a fixed case the keep mask is the one practicum's own DCT hash gave."""
    rng = np.random.default_rng(0)
    originals = np.kron(rng.random((12, 7, 7)), np.ones((4, 4)))  # 28x28, some structure to hash
    copies = originals[:6] * 0.8 + 0.1 + rng.normal(0, 0.005, originals[:6].shape)
    pool = np.concatenate([originals, copies])
    # practicum's former hash: bilinear 32x32, orthonormal 2-D DCT, 8x8 low block above its AC median
    n = 32
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    dct = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    dct[0] /= np.sqrt(2.0)
    src = np.linspace(0, 27, n)
    lo = np.minimum(src.astype(int), 26)
    w = src - lo
    rows = pool[:, lo] * (1 - w)[None, :, None] + pool[:, lo + 1] * w[None, :, None]
    small = rows[:, :, lo] * (1 - w) + rows[:, :, lo + 1] * w
    coeffs = np.einsum("ij,njk,lk->nil", dct, small, dct)[:, :8, :8].reshape(len(pool), -1)
    before = coeffs > np.median(coeffs[:, 1:], axis=1, keepdims=True)
    now = dedup.perceptual_hash(pool)
    assert now.shape == before.shape == (18, 64)
    expected = [True] * 12 + [False] * 6  # every copy goes, every original stays
    assert dedup.hash_dedup(before, max_distance=8).tolist() == expected
    assert dedup.hash_dedup(now, max_distance=8).tolist() == expected


def test_out_of_sample_probabilities_find_flipped_labels():
    x, noisy, flipped = _flipped_blobs()
    issues = label_issues.find_label_issues(label_issues.out_of_sample_probs(x, noisy, folds=4), noisy)
    assert issues[flipped].sum() >= 7 and issues.sum() <= 10


def test_thresholds_intersections_and_budget_within():
    s = np.array([0.1, 0.5, 0.9, 0.7, np.nan])
    assert filters.threshold(s, low=0.5).tolist() == [False, True, True, True, False]
    assert filters.threshold(s, high=0.5).tolist() == [True, True, False, False, False]
    other = np.array([True, True, False, True, True])
    both = filters.intersect(filters.threshold(s, low=0.5), other)
    assert both.tolist() == [False, True, False, True, False]
    assert filters.union(both, [True, False, False, False, False]).tolist() == [True, True, False, True, False]
    scores = np.nan_to_num(s)
    assert filters.select_within(both, "top-k", scores, 1).tolist() == [3]  # best survivor, a pool index
    assert filters.select_within(both, "top-k", scores, 1.0).tolist() == [1, 3]
    with pytest.raises(ConfigError):
        filters.threshold(s)


def test_coverage_selectors_hand_checked():
    line = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert coverage.k_center_greedy(line, 3, first=0).tolist() == [0, 2, 3]
    pts = np.array([[-1.0], [1.0], [0.1], [5.0]])  # mean 1.275
    assert coverage.herding(pts, 2).tolist() == [1, 2]
    clusters = np.array([[0.0], [0.1], [10.0], [10.1], [10.2]])
    chosen = coverage.facility_location(clusters, 2).tolist()
    assert chosen[0] in (0, 1) and chosen[1] in (2, 3, 4)
