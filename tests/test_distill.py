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
from practicum.distill.sampler import RespacedSchedule, linear_alphas_cumprod, mode_guided_sample, respaced_timesteps


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


# ---------------------------------------------------------------- the reference sampler (spec §3–§4)

def test_respaced_timesteps_match_the_spec():
    tau = respaced_timesteps(1000, 50)
    assert list(tau[:3]) == [0, 20, 41] and tau[-1] == 999 and len(tau) == 50


def test_learned_range_variance_endpoints():
    sched = RespacedSchedule.build(linear_alphas_cumprod(), 50)
    for i in (1, 10, 49):
        lo = sched.log_variance(i, torch.tensor(-1.0))
        hi = sched.log_variance(i, torch.tensor(1.0))
        assert float(lo) == pytest.approx(math.log(float(sched.posterior_variance[i])))
        assert float(hi) == pytest.approx(math.log(float(sched.beta[i])))
    # the posterior log-variance at i = 0 is clipped to β̃'_1
    assert float(sched.log_posterior_variance[0]) == pytest.approx(math.log(float(sched.posterior_variance[1])))


_ALPHA_BAR = linear_alphas_cumprod()


def _toy_eps(x, t, labels):
    # the exact noise predictor when the data are N(0, I): ε = √(1−ᾱ_t) x_t, so x̂0 = √ᾱ_t x_t
    ab = _ALPHA_BAR[t].float().view(-1, 1, 1, 1)
    return (1 - ab).sqrt() * x


def _run(lam, modes, t_stop=2, form="ddpm", steps=6, trace=None):
    return mode_guided_sample(_toy_eps, torch.zeros(4, dtype=torch.long), (1, 4, 4),
                              alphas_cumprod=_ALPHA_BAR, seeds=[0, 1, 2, 3], steps=steps,
                              modes=modes, lam=lam, t_stop=t_stop, form=form, on_step=trace)


def test_lambda_zero_equals_the_unguided_sampler_exactly():
    modes = torch.ones(4, 1, 4, 4)
    for form in ("ddpm", "ddim"):
        plain = _run(0.0, None, form=form)
        zero = _run(0.0, modes, form=form)
        assert torch.equal(plain.samples, zero.samples) and zero.guided_steps == []


@pytest.mark.parametrize("form", ["ddpm", "ddim"])
def test_a_guided_step_moves_towards_the_mode(form):
    modes = torch.full((4, 1, 4, 4), 0.8)
    # one step from the same noise: compare x̂0 at the second step with and without guidance
    seen = {}

    def recorder(key):
        def on_step(i, x0, guided):
            seen.setdefault(key, []).append(x0.clone())
        return on_step

    _run(0.0, modes, t_stop=-1, form=form, trace=recorder("free"))
    _run(0.3, modes, t_stop=-1, form=form, trace=recorder("guided"))
    d_free = (seen["free"][1] - modes).flatten(1).norm(dim=1)
    d_guided = (seen["guided"][1] - modes).flatten(1).norm(dim=1)
    assert torch.equal(seen["free"][0], seen["guided"][0])  # same start
    assert (d_guided < d_free).all()
    # and the final samples end closer to their modes
    final_free = (_run(0.0, modes, t_stop=-1, form=form).samples - modes).flatten(1).norm(dim=1)
    final_guided = (_run(0.3, modes, t_stop=-1, form=form).samples - modes).flatten(1).norm(dim=1)
    assert (final_guided < final_free).all()


def test_stop_window_guides_the_first_steps_only():
    modes = torch.zeros(4, 1, 4, 4)
    for steps, t_stop in ((50, 25), (10, 5), (10, 0), (10, -1), (10, 9)):
        trace = _run(0.1, modes, t_stop=t_stop, steps=steps)
        assert len(trace.guided_steps) == max(0, steps - 1 - t_stop)
        assert all(i > t_stop for i in trace.guided_steps)  # the high-noise end, i = S-1 down
        assert trace.guided_steps == sorted(trace.guided_steps, reverse=True)


def test_sampler_rejects_bad_settings():
    with pytest.raises(ConfigError):
        _run(0.1, torch.zeros(4, 1, 4, 4), form="euler")
    with pytest.raises(ConfigError):
        mode_guided_sample(_toy_eps, torch.zeros(2, dtype=torch.long), (1, 4, 4),
                           alphas_cumprod=linear_alphas_cumprod(), seeds=[0], steps=4)


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
    out = augment(x, StudentSettings(image_size=12), gen)
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
    settings = StudentSettings(arch="convnet", width=8, epochs=20, eval_points=5, hflip=False)
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
    soft = StudentSettings(arch="convnet", width=8, epochs=4, eval_points=2, labels="soft", teacher_epochs=3)
    with pytest.raises(ConfigError, match="teacher"):
        train_student(train, test, soft, seed=0)
    teacher = train_teacher(test, soft, seed=0)
    result = train_student(train, test, soft, seed=0, teacher=teacher)
    assert 0.0 <= result.best_accuracy <= 1.0 and result.steps == 4


# ---------------------------------------------------------------- students

@pytest.mark.parametrize("arch", ["convnet", "resnetap10", "resnet18"])
def test_students_build_by_name_for_small_and_large_images(arch):
    from practicum.learn.models import build_model

    for shape in ((1, 8, 8), (3, 64, 64)):
        model = build_model(arch, 7, shape, width=8, seed=0)
        assert model(torch.randn(2, *shape)).shape == (2, 7)
