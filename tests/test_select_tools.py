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
    assert label_issues.confident_labels(probs, labels).tolist() == [0, -1, 1, 0]
    assert label_issues.confident_joint(probs, labels).tolist() == [[1, 0], [1, 1]]
    assert label_issues.find_label_issues(probs, labels).tolist() == [False, False, False, True]
    assert label_issues.label_quality(probs, labels).tolist() == [1.0, 0.5, 1.0, 0.25]


def test_out_of_sample_probabilities_find_flipped_labels():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    x = rng.normal(0, 0.6, size=(120, 2)) + np.array([[0, 0], [4, 0], [0, 4]])[y]
    noisy = y.copy()
    flipped = rng.choice(120, size=8, replace=False)
    noisy[flipped] = (noisy[flipped] + 1) % 3
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
