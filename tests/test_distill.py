"""MGD³ distillation: modes, metrics, the reference sampler, the protocol and the students."""

import math

import numpy as np
import pytest
import torch

from practicum.errors import ConfigError, DataError
from practicum.distill.metrics import (
    distillation_scores,
    diversity_per_sample,
    pairwise_distances,
    representativeness_per_sample,
    scores_in_embedding,
)
from practicum.distill.modes import class_modes, discover_modes, nearest_rows
from practicum.distill.protocol import (
    StudentSettings,
    augment,
    cutmix,
    epochs_for_ipc,
    milestones,
    train_student,
)


# ---------------------------------------------------------------- mode discovery

def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-5.0, 5.0, 0.0]])
    return np.concatenate([c + 0.1 * rng.standard_normal((20, 3)) for c in centres]), centres


def test_kmeans_modes_shape_determinism_and_centres():
    x, truth = _blobs()
    centres, nearest = discover_modes(x, 3)
    again, _ = discover_modes(x, 3)
    assert centres.shape == (3, 3) and centres.dtype == np.float32
    np.testing.assert_array_equal(centres, again)  # random_state 0: same modes every time
    # each true blob centre is recovered by one mode
    for c in truth:
        assert np.min(np.linalg.norm(centres - c, axis=1)) < 0.1
    # nearest are real rows closest to each centre
    np.testing.assert_array_equal(nearest, nearest_rows(x, centres))


def test_mode_options_closest_point_gmm_pca_random():
    x, _ = _blobs()
    closest, nearest = discover_modes(x, 3, closest_point=True)
    np.testing.assert_allclose(closest, x[nearest].astype(np.float32))
    assert discover_modes(x, 3, method="gmm")[0].shape == (3, 3)
    assert discover_modes(x, 3, pca=2)[0].shape == (3, 3)
    rand, _ = discover_modes(x, 4, method="random")
    assert all(any(np.allclose(r, row) for row in x.astype(np.float32)) for r in rand)


def test_class_modes_per_class_and_errors():
    x, _ = _blobs()
    labels = np.repeat([0, 1, 2], 20)
    modes = class_modes(x.reshape(60, 1, 1, 3).reshape(60, -1), labels, ipc=2, num_classes=3)
    assert [m.label for m in modes] == [0, 1, 2]
    assert all(m.centres.shape == (2, 3) for m in modes)
    assert all((labels[m.nearest] == m.label).all() for m in modes)  # nearest rows are of the class
    with pytest.raises(DataError, match="fewer than ipc"):
        discover_modes(x[:2], 3)
    with pytest.raises(ConfigError):
        discover_modes(x, 3, method="dbscan")
    with pytest.raises(DataError, match="NaN"):
        discover_modes(np.full((5, 2), np.nan), 2)


# ---------------------------------------------------------------- metrics (hand-checked)

def test_diversity_and_representativeness_by_hand():
    # three distilled points on a line at 0, 1, 3: nearest-other distances 1, 1, 2
    d = np.array([[0.0], [1.0], [3.0]])
    np.testing.assert_allclose(diversity_per_sample(d), [1.0, 1.0, 2.0])
    assert np.isnan(diversity_per_sample(d[:1])).all()  # IPC 1: undefined
    # real points at 0 and 10; with k=1 the closest, with k=2 the mean of both
    real = np.array([[0.0], [10.0]])
    np.testing.assert_allclose(representativeness_per_sample(d, real, k=1), [0.0, 1.0, 3.0])
    np.testing.assert_allclose(representativeness_per_sample(d, real, k=2), [5.0, 5.0, 5.0])
    np.testing.assert_allclose(representativeness_per_sample(d, real, k=50), [5.0, 5.0, 5.0])  # k clipped


def test_scores_average_per_class_then_over_classes():
    real = np.array([[0.0], [0.0], [10.0], [10.0]])
    real_labels = np.array([0, 0, 1, 1])
    dist = np.array([[0.0], [2.0], [10.0], [14.0]])
    dist_labels = np.array([0, 0, 1, 1])
    s = scores_in_embedding(real, real_labels, dist, dist_labels, scale=2.0)
    # class 0: diversity (2+2)/2 = 2, repr (0+2)/2 = 1; class 1: diversity 4, repr 2; then / scale 2
    assert s["per_class"][0] == {"diversity": 1.0, "representativeness": 0.5}
    assert s["diversity"] == pytest.approx(1.5) and s["representativeness"] == pytest.approx(0.75)


def test_cosine_distance_and_tsne_scores_in_unit_range():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(pairwise_distances(a[:1], a, "cosine"), [[0.0, 0.5, 1.0]], atol=1e-12)
    rng = np.random.default_rng(0)
    real = rng.standard_normal((40, 5))
    labels = np.repeat([0, 1], 20)
    dist = rng.standard_normal((6, 5))
    out = distillation_scores(real, labels, dist, np.repeat([0, 1], 3))
    for space in ("tsne", "cosine"):
        assert 0.0 <= out[space]["diversity"] <= 1.0 and 0.0 <= out[space]["representativeness"] <= 1.0
    r_emb, d_emb = out["tsne"]["embeddings"][0]
    joint = np.concatenate([r_emb, d_emb])
    np.testing.assert_allclose(joint.min(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(joint.max(0), 1.0, atol=1e-12)


# ---------------------------------------------------------------- evaluation protocol

def test_epoch_rule():
    assert [epochs_for_ipc(i) for i in (1, 10, 20, 50, 70, 100, 200)] == [3000, 2000, 1500, 1500, 1000, 1000, 1000]
    assert epochs_for_ipc(100, rule="paper") == 1500 and epochs_for_ipc(70, rule="paper") == 1500
    assert epochs_for_ipc(10, num_classes=100) == 1300  # ×2/3, down to a multiple of 100
    assert milestones(600) == (400, 500)
    with pytest.raises(ConfigError):
        epochs_for_ipc(0)


def test_augment_and_cutmix_keep_shapes_and_range():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    out = augment(x, StudentSettings(protocol="B", image_size=12), gen)
    assert out.shape == (8, 3, 12, 12) and out.min() >= -1 and out.max() <= 1
    mixed, perm, lam = cutmix(x, 1.0, gen)
    changed = (mixed != x).flatten(1).any(1)
    assert 0.0 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(8))
    # the pasted box covers exactly 1 − λ of each image
    box = (mixed != x).any(1).float().mean((1, 2))
    assert torch.all(box[changed] <= (1 - lam) + 1e-6)


def _toy_sets(per_class=3):
    rng = np.random.default_rng(0)
    from practicum.data import Dataset

    def make(n):
        labels = np.repeat(np.arange(2), n)
        images = np.where(labels[:, None, None, None] == 0, -0.8, 0.8) + 0.1 * rng.standard_normal((2 * n, 1, 8, 8))
        return Dataset(torch.as_tensor(images, dtype=torch.float32).clamp(-1, 1), torch.as_tensor(labels),
                       np.array([f"x{i}" for i in range(2 * n)]), ("a", "b"))

    return make(per_class), make(10)


def test_student_reports_best_and_last_and_is_deterministic():
    train, test = _toy_sets()
    settings = StudentSettings(protocol="B", arch="convnet", width=8, epochs=20, eval_points=5, hflip=False,
                               students=1)
    first = train_student(train, test, settings, seed=0)
    again = train_student(train, test, settings, seed=0)
    assert first.to_dict() == again.to_dict()
    assert len(first.curve) == 5 and [e for e, _ in first.curve] == [4, 8, 12, 16, 20]
    assert first.best_accuracy == max(a for _, a in first.curve) >= first.last_accuracy == first.curve[-1][1]
    assert first.best_accuracy > 0.9  # two trivially separable classes
    with pytest.raises(DataError, match="classes"):
        from practicum.data import Dataset

        other = Dataset(test.images, test.labels, test.ids, ("a", "b", "c"))
        train_student(train, other, settings, seed=0)


def test_soft_labels_need_a_teacher_and_train_with_one():
    from practicum.distill.protocol import train_teacher

    train, test = _toy_sets()
    soft = StudentSettings(arch="convnet", width=8, epochs=4, eval_points=2, labels="soft", teacher_epochs=3,
                           teacher_arch="convnet", students=1, batch_size=64)
    with pytest.raises(ConfigError, match="teacher"):
        train_student(train, test, soft, seed=0)
    seen = []
    import practicum.distill.protocol as protocol

    original = protocol.accuracy
    try:  # the teacher's reported accuracy is measured on the val split it is given, not on train
        protocol.accuracy = lambda model, data, size=None: seen.append(data) or original(model, data, size)
        teacher = train_teacher(test, soft, seed=0, val=train)
    finally:
        protocol.accuracy = original
    assert seen and all(d is train for d in seen)
    assert teacher.practicum_val_accuracy == original(teacher, train)
    result = train_student(train, test, soft, seed=0, teacher=teacher)
    assert 0.0 <= result.best_accuracy <= 1.0 and result.steps == 4


def test_protocol_a_tests_once_averages_students_and_halves_nothing_else():
    train, test = _toy_sets()
    settings = StudentSettings(width=8, epochs=6, students=3)  # protocol A by default
    assert settings.protocol == "A" and settings.batch() == 256 and settings.epochs_for(10, 10) == 6
    assert StudentSettings().epochs_for(10, 10) == 1000 and StudentSettings(protocol="B").epochs_for(10, 10) == 2000
    result = train_student(train, test, settings, seed=1)
    assert len(result.curve) == 1 and result.curve[0][0] == 6  # the test split is evaluated once, at the end
    assert result.best_accuracy == result.last_accuracy == pytest.approx(np.mean(result.per_student))
    assert len(result.per_student) == 3
    assert result.to_dict() == train_student(train, test, settings, seed=1).to_dict()


def test_dsa_ops_keep_shape_and_are_deterministic():
    from practicum.distill.protocol import DSA_OPS, dsa_augment

    x = torch.rand(6, 1, 12, 12) * 2 - 1
    for op in DSA_OPS:
        a = dsa_augment(x, torch.Generator().manual_seed(3), ops=(op,))
        b = dsa_augment(x, torch.Generator().manual_seed(3), ops=(op,))
        assert a.shape == x.shape and torch.equal(a, b) and torch.isfinite(a).all(), op
    flipped = dsa_augment(x, torch.Generator().manual_seed(0), ops=("flip",))
    for k in range(6):  # each image is itself or its mirror
        assert torch.equal(flipped[k], x[k]) or torch.equal(flipped[k], x[k].flip(-1))
    cut = dsa_augment(x, torch.Generator().manual_seed(0), ops=("cutout",))
    holes = ((cut == -1) & (x != -1)).flatten(1).sum(1)
    assert holes.max() <= 36 and holes.min() >= 9  # a 6×6 hole, cut by the border at worst to 3×3
    crop = dsa_augment(torch.zeros(4, 1, 8, 8), torch.Generator().manual_seed(1), ops=("crop",))
    assert set(crop.unique().tolist()) <= {-1.0, 0.0}  # integer shifts, background fill


def test_summary_std_is_the_sample_std_and_t_interval():
    from practicum.distill.protocol import summarise, t_interval

    mean, std = summarise([0.1, 0.2, 0.3, 0.4])
    assert mean == pytest.approx(0.25) and std == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1))
    assert summarise([0.5]) == (0.5, 0.0)
    lo, hi = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5)  # t_{0.975, 4}
    assert (lo, hi) == pytest.approx((3 - half, 3 + half)) and t_interval([1.0]) is None


def test_paired_differences_need_five_seeds_for_an_interval():
    from practicum.distill.pipeline import paired_differences

    def entry(values):
        return {"per_seed": [{"seed": s, "last_accuracy": v} for s, v in enumerate(values)]}

    few = paired_differences({"mgd3": entry([0.8, 0.7]), "unguided": entry([0.7, 0.7])})
    assert few["mgd3 - unguided"]["per_seed"] == pytest.approx([0.1, 0.0]) and few["mgd3 - unguided"]["ci"] is None
    assert few["mgd3 - unguided"]["ci_note"].startswith("fewer than 5 seeds (2)")
    five = paired_differences({"mgd3": entry([0.8, 0.7, 0.9, 0.8, 0.8]), "unguided": entry([0.7] * 5)})
    lo, hi = five["mgd3 - unguided"]["ci"]
    assert lo < five["mgd3 - unguided"]["mean"] < hi and five["mgd3 - unguided"]["mean"] == pytest.approx(0.1)
    assert five["mgd3 - unguided"]["ci_note"] is None and five["mgd3 - unguided"]["level"] == 0.95


def test_print_summary_reads_the_stats_keys_and_a_summary_written_with_the_old_ones(capsys):
    from practicum.distill.pipeline import print_summary

    base = {"ipc": 10, "data": "digits", "evaluated_on": "test", "protocol": "A", "accuracy": "final", "methods": {}}
    new = {"seeds": [0, 1, 2, 3, 4], "per_seed": [0.1] * 5, "mean": 0.1, "ci": [0.05, 0.15], "ci_note": None,
           "level": 0.95}
    old = {"seeds": [0, 1], "per_seed": [0.2, 0.0], "mean": 0.1, "ci95": None,
           "why_no_interval": "2 seeds: a t interval needs at least 5 to be worth printing"}
    old_ci = {"seeds": [0, 1, 2, 3, 4], "per_seed": [0.1] * 5, "mean": 0.1, "ci95": [0.04, 0.16]}
    print_summary({**base, "paired": {"mgd3 - unguided": new, "mgd3 - herding": old, "mgd3 - random-real": old_ci}})
    out = capsys.readouterr().out
    assert "paired mgd3 - unguided: +10.0 points over 5 seeds; 95% t interval [+5.0, +15.0]" in out
    assert "paired mgd3 - herding: +10.0 points over 2 seeds; 2 seeds: a t interval needs at least 5" in out
    assert "paired mgd3 - random-real: +10.0 points over 5 seeds; 95% t interval [+4.0, +16.0]" in out


def test_herding_by_hand():
    from practicum.distill.methods import real_selection
    from practicum.select.coverage import herding_order

    f = np.array([[0.5], [10.0], [3.0], [6.5], [-10.0]])  # mean 2
    # step 1: the row nearest 2 is 3.0 (row 2); step 2: (3 + r)/2 nearest 2 → r = 0.5 (row 0)
    assert herding_order(f, 2).tolist() == [2, 0]
    rows = np.array([10, 11, 12, 13, 14])
    assert real_selection("herding", rows, 2, None, seed=0, features=f).tolist() == [12, 10]


def test_joint_tsne_puts_every_method_in_one_embedding():
    from practicum.distill.metrics import joint_scores

    rng = np.random.default_rng(0)
    real = rng.standard_normal((60, 5))
    labels = np.repeat([0, 1], 30)
    sets = {"a": (real[[0, 1, 30, 31]] + 0.01, np.array([0, 0, 1, 1])),
            "b": (rng.standard_normal((4, 5)) * 3, np.array([0, 0, 1, 1]))}
    out = joint_scores(real, labels, sets, spaces=("tsne", "cosine"), real_per_class=None, k=1)
    for c in (0, 1):  # the real points sit at the same place for both methods: one fit per class
        np.testing.assert_array_equal(out["a"]["tsne"]["embeddings"][c][0], out["b"]["tsne"]["embeddings"][c][0])
    assert out["a"]["cosine"]["representativeness"] < out["b"]["cosine"]["representativeness"]


# ---------------------------------------------------------------- students

@pytest.mark.parametrize("arch", ["convnet", "resnetap10", "resnet18"])
def test_students_build_by_name_for_small_and_large_images(arch):
    from practicum.learn.models import build_model

    for shape in ((1, 8, 8), (3, 64, 64)):
        model = build_model(arch, 7, shape, width=8, seed=0)
        assert model(torch.randn(2, *shape)).shape == (2, 7)
