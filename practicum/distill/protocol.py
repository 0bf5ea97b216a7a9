"""How a distilled set is evaluated: two protocols, both selectable (issue 13).

**Protocol A** (`protocol: A`, default) — the dataset-distillation community's (Zhao et al., DC/DSA/DM),
so numbers sit next to the Fashion-MNIST literature rows:
- ConvNet-3 (width 128, instance norm, average pooling);
- DSA augmentation (`dsa_augment`): per batch one of color / crop / cutout / flip / scale / rotate,
  with per-sample parameters (DSA's "color_crop_cutout_flip_scale_rotate", mode S);
- SGD 0.01, momentum 0.9, weight decay 5e-4, batch 256, lr × 0.1 at half of training;
- 1000 epochs (DSA/DM); the **final-epoch** test accuracy (test evaluated once), averaged over
  `students` freshly initialised networks per distilled set.

**Protocol B** (`protocol: B`) — MGD³'s own hard-label protocol (spec §7.1):
- RandomResizedCrop(scale 0.5–1), flip, ColorJitter(0.4), PCA lighting 0.1 (RGB only); CutMix with
  β = 1, probability 1, mix-weighted cross-entropy;
- SGD 0.01, momentum 0.9, weight decay 5e-4, batch 64; MultiStepLR at 2/3 and 5/6, γ = 0.2;
- epochs by IPC (`epochs_for_ipc`, the code's or App. I's rule);
- test accuracy `eval_points` times over training: the **best** (the protocol's number, which peeks
  at the test set as the reference code does) and the **last**, both reported.

Soft labels (`labels: soft`, spec §7.2, RDED's protocol): a teacher (`teacher_arch`, ResNet-18 by
default) trained on the real train split, its accuracy measured on the **val** split; students learn
by KL at temperature 20 from the teacher's outputs recomputed on every augmented, CutMixed batch,
with AdamW (1e-3, weight decay 0.01) and RDED's cosine schedule.

**Protocol A-full** (`protocol: A-full`, issue 27) — protocol A exactly as the literature's code runs it:
normalised inputs, the DC code's ConvNet-3 and DSA in those units, ≥ 5 students (`literature.py`).

Budget knobs (`width`, `epochs`/`epoch_scale`, `students`) shrink the CPU cost; reports say when
they were used (A-full lists them as `departures()`). A and B keep images in [-1, 1] (an affine change the
first layer absorbs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from practicum.config import Settings
from practicum.data import Dataset
from practicum.distill.literature import (LITERATURE_SETTINGS, MIN_STUDENTS, build_literature_convnet, channel_stats,
                                          dsa, normalise)
from practicum.errors import ConfigError, DataError
from practicum.learn.augment import cutmix_box, paste_box
from practicum.learn.models import build_model
from practicum.limits import MAX_IMAGE_SIZE, Count, LearningRate
from practicum.runtime import resolve_device
from practicum.stats import t_interval  # noqa: F401  (re-exported: benchmarks import it from here)

# AlexNet's PCA lighting constants for ImageNet RGB (eigenvalues and eigenvectors of pixel covariance).
_PCA_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
_PCA_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


PROTOCOLS = ("A", "A-full", "B")


class StudentSettings(Settings):
    protocol: Literal["A", "A-full", "B"] = "A"
    arch: str = "convnet"
    width: int | None = Field(default=None, ge=1, le=4096, description="None: the architecture's default width (128)")
    students: int | None = Field(default=None, ge=1, le=1000,
                                 description="student networks per distilled set; None: A-full → 5, else 3")
    epochs: Count | None = Field(default=None, description="None: A → 1000, B → by IPC (epoch_rule)")
    epoch_rule: Literal["code", "paper"] = "code"
    epoch_scale: float = Field(default=1.0, gt=0, le=100, description="multiplies the epoch count (budget knob)")
    batch_size: Count | None = Field(default=None, description="None: A → 256, B → 64")
    lr: LearningRate = 0.01
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-4, ge=0)
    augment: bool = True
    crop_scale: tuple[float, float] = (0.5, 1.0)
    hflip: bool = True
    color_jitter: float = Field(default=0.4, ge=0)
    lighting: float = Field(default=0.1, ge=0)
    cutmix_prob: float = Field(default=1.0, ge=0, le=1)
    cutmix_beta: float = Field(default=1.0, gt=0)
    image_size: int | None = Field(default=None, ge=4, le=MAX_IMAGE_SIZE,
                                   description="resize student inputs (224 in the paper)")
    eval_points: int = Field(default=10, ge=1, description="protocol B: test evaluations over training")
    labels: Literal["hard", "soft"] = "hard"
    kd_temperature: float = Field(default=20.0, gt=0)
    teacher_arch: str = "resnet18"
    device: str = Field(default="cpu", description="cpu, cuda, or auto (cuda when available)")
    teacher_epochs: Count = 40

    @model_validator(mode="after")
    def _full_is_hard_label(self) -> "StudentSettings":
        if self.protocol == "A-full" and self.labels == "soft":
            raise ValueError("protocol A-full is the literature's hard-label evaluation; soft labels need a teacher "
                             "that sees [-1, 1] images. Use labels: hard with A-full, or soft labels with A or B")
        return self

    def batch(self) -> int:
        return self.batch_size or (64 if self.protocol == "B" else 256)

    def n_students(self) -> int:
        return self.students or (MIN_STUDENTS if self.protocol == "A-full" else 3)

    def epochs_for(self, ipc: int, num_classes: int) -> int:
        base = self.epochs or (epochs_for_ipc(ipc, num_classes, self.epoch_rule) if self.protocol == "B" else 1000)
        return max(1, int(round(base * self.epoch_scale)))

    def departures(self) -> dict[str, object]:
        """A-full: every setting that differs from the literature's protocol (empty: the protocol as published)."""
        if self.protocol != "A-full":
            return {}
        actual = {"arch": self.arch, "width": self.width or 128, "epochs": self.epochs or 1000,
                  "epoch_scale": self.epoch_scale, "batch": self.batch(), "lr": self.lr, "momentum": self.momentum,
                  "weight_decay": self.weight_decay, "augment": self.augment, "labels": self.labels,
                  "image_size": self.image_size}
        out: dict[str, object] = {k: v for k, v in actual.items() if v != LITERATURE_SETTINGS[k]}
        if self.n_students() < MIN_STUDENTS:
            out["students"] = self.n_students()
        return out


def epochs_for_ipc(ipc: int, num_classes: int = 10, rule: str = "code") -> int:
    """Training epochs of the hard-label protocol.

    `code` (reference): IPC 1 → 3000, ≤ 10 → 2000, ≤ 50 → 1500, ≤ 200 → 1000, beyond → 500.
    `paper` (App. I): the same, except 1500 for every IPC from 20 up to 100.
    With 100 or more classes the count is ×2/3, rounded down to a multiple of 100 (IPC10 → 1300).
    """
    if ipc < 1:
        raise ConfigError(f"ipc must be at least 1, not {ipc}")
    if rule not in ("code", "paper"):
        raise ConfigError(f"unknown epoch rule {rule!r}", "use code or paper")
    if ipc == 1:
        epochs = 3000
    elif ipc <= 10:
        epochs = 2000
    elif ipc <= 50 or (rule == "paper" and ipc <= 100):
        epochs = 1500
    elif ipc <= 200:
        epochs = 1000
    else:
        epochs = 500
    if num_classes >= 100:
        epochs = (epochs * 2 // 3) // 100 * 100
    return epochs


def milestones(total_steps: int) -> tuple[int, int]:
    """MultiStepLR milestones at 2/3 and 5/6 of training."""
    return (total_steps * 2 // 3, total_steps * 5 // 6)


# ---------------------------------------------------------------- augmentation

def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], gen: torch.Generator,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Per-sample random crop (area fraction in `scale`, aspect in `ratio`) resized to size×size."""
    n = len(x)
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=gen)
    log_r = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the full width / height
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * (1 - w) + w / 2) * 2 - 1  # centre in [-1, 1] coordinates
    cy = (torch.rand(n, generator=gen) * (1 - h) + h / 2) * 2 - 1
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, (n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and (RGB) saturation factors in [1−s, 1+s], on [-1, 1] images."""
    n = len(x)
    img = (x + 1) / 2

    def factor() -> torch.Tensor:
        return torch.empty(n, 1, 1, 1).uniform_(1 - strength, 1 + strength, generator=gen)

    img = img * factor()
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = (img - mean) * factor() + mean
    if x.shape[1] == 3:
        grey = (0.299 * img[:, :1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
        img = (img - grey) * factor() + grey
    return img.clamp(0, 1) * 2 - 1


def pca_lighting(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """AlexNet-style lighting noise along ImageNet's RGB principal components (RGB images only)."""
    if x.shape[1] != 3 or strength == 0:
        return x
    alpha = torch.randn(len(x), 3, generator=gen) * strength
    shift = (alpha * _PCA_EIGVAL) @ _PCA_EIGVEC.T  # (n, 3) in [0, 1] units
    return (x + 2 * shift[:, :, None, None]).clamp(-1, 1)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, x.shape, align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


def dsa_augment(x: torch.Tensor, gen: torch.Generator, ops: tuple[str, ...] = DSA_OPS) -> torch.Tensor:
    """DSA's differentiable augmentation, mode "S": one op group per batch, parameters per sample.

    Parameters are DSA's defaults (Zhao & Bilen 2021): brightness ±0.5 (of a [0, 1] image), saturation
    ×[0, 2], contrast ×[0.5, 1.5]; crop = translation up to 1/8 of the side; cutout of half the side;
    scale ×[1/1.2, 1.2] per axis; rotation ±15°; flip with probability 1/2. Written from the paper's
    description, on [-1, 1] images.
    """
    n, _, h, w = x.shape
    op = ops[int(torch.randint(0, len(ops), (1,), generator=gen))]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.empty(n, *shape).uniform_(lo, hi, generator=gen)

    if op == "color":
        x = x + 2 * (u(0, 1, 1, 1, 1) - 0.5)  # brightness in [0, 1] units is ±0.5 → ±1 here
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * u(0, 2, 1, 1, 1) + mean  # saturation (identity for one channel)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * u(0.5, 1.5, 1, 1, 1) + mean
    if op == "crop":  # integer translation with zero padding (the background is -1 here)
        shift = 0.125
        dy = torch.randint(-int(h * shift + 0.5), int(h * shift + 0.5) + 1, (n,), generator=gen)
        dx = torch.randint(-int(w * shift + 0.5), int(w * shift + 0.5) + 1, (n,), generator=gen)
        padded = F.pad(x, (w, w, h, h), value=-1.0)
        return torch.stack([padded[k, :, h - int(dy[k]):2 * h - int(dy[k]), w - int(dx[k]):2 * w - int(dx[k])]
                            for k in range(n)])
    if op == "cutout":
        ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
        top = torch.randint(0, h, (n,), generator=gen).view(n, 1, 1) - ch // 2  # centre anywhere: DSA's
        left = torch.randint(0, w, (n,), generator=gen).view(n, 1, 1) - cw // 2
        yy = torch.arange(h).view(1, h, 1)
        xx = torch.arange(w).view(1, 1, w)
        inside = (yy >= top) & (yy < top + ch) & (xx >= left) & (xx < left + cw)
        return torch.where(inside[:, None], torch.full_like(x, -1.0), x)
    if op == "flip":
        flip = torch.rand(n, generator=gen) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    theta = torch.zeros(n, 2, 3)
    if op == "scale":
        theta[:, 0, 0], theta[:, 1, 1] = u(1 / 1.2, 1.2), u(1 / 1.2, 1.2)
    else:  # rotate
        angle = u(-15.0, 15.0) * math.pi / 180
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), torch.sin(-angle)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return _affine(x + 1.0, theta) - 1.0  # pad with the background (-1)


def augment(x: torch.Tensor, settings: StudentSettings, gen: torch.Generator) -> torch.Tensor:
    if settings.protocol == "A-full":  # x is already normalised (train_student)
        return dsa(_resize(x, settings.image_size), gen)[0]
    if settings.protocol == "A":
        return dsa_augment(_resize(x, settings.image_size), gen)
    size = settings.image_size or x.shape[-1]
    x = random_resized_crop(x, size, settings.crop_scale, gen)
    if settings.hflip:
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if settings.color_jitter > 0:
        x = color_jitter(x, settings.color_jitter, gen)
    return pca_lighting(x, settings.lighting, gen)


def cutmix(x: torch.Tensor, beta: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix: paste a box from a shuffled batch; returns (mixed x, permutation, λ = kept area fraction)."""
    n, _, height, width = x.shape
    # Beta(β, β) from a numpy generator seeded by `gen`, so the draw is reproducible.
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen))).beta(beta, beta))
    perm = torch.randperm(n, generator=gen)
    cy = int(torch.randint(0, height, (1,), generator=gen))
    cx = int(torch.randint(0, width, (1,), generator=gen))
    mixed, lam = paste_box(x, perm, cutmix_box(height, width, lam, cy, cx, floor=True))
    return mixed, perm, lam


# ---------------------------------------------------------------- training

@dataclass
class StudentResult:
    best_accuracy: float
    last_accuracy: float
    epochs: int
    steps: int
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, test accuracy)
    per_student: list[float] = field(default_factory=list)  # each student's last accuracy

    def to_dict(self) -> dict:
        return {"best_accuracy": self.best_accuracy, "last_accuracy": self.last_accuracy,
                "epochs": self.epochs, "steps": self.steps, "curve": self.curve, "per_student": self.per_student}


def build_student(settings: StudentSettings, num_classes: int, image_shape: tuple[int, int, int], seed: int):
    if settings.protocol == "A-full" and settings.arch == "convnet" and settings.image_size is None:
        return build_literature_convnet(num_classes, image_shape, settings.width, seed)
    if settings.image_size is not None:
        image_shape = (image_shape[0], settings.image_size, settings.image_size)
    return build_model(settings.arch, num_classes, image_shape, width=settings.width, seed=seed)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Dataset, image_size: int | None = None, batch: int = 512) -> float:
    model.eval()
    correct = 0
    device = next(model.parameters()).device
    for start in range(0, len(data), batch):
        x = _resize(data.images[start:start + batch].to(device), image_size)
        correct += int((model(x).argmax(1).cpu() == data.labels[start:start + batch]).sum())
    model.train()
    return correct / max(len(data), 1)


def _check_pair(train: Dataset, test: Dataset) -> None:
    if len(train) == 0:
        raise DataError("the distilled set is empty", "distil at least one image per class")
    if train.image_shape != test.image_shape:
        raise DataError(f"distilled images are {train.image_shape} but test images are {test.image_shape}",
                        "distil at the test set's image size")
    if train.num_classes != test.num_classes:
        raise DataError(f"the distilled set has {train.num_classes} classes, the test split {test.num_classes}",
                        "use the test split of the same dataset")


def train_student(train: Dataset, test: Dataset, settings: StudentSettings, seed: int, *,
                  ipc: int | None = None, teacher: torch.nn.Module | None = None,
                  epochs: int | None = None, norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
                  done: dict[int, dict] | None = None,
                  on_student: Callable[[int, StudentResult], None] | None = None) -> StudentResult:
    """Train `settings.n_students()` fresh students on `train` (the distilled set); test them on `test`.

    The result's accuracies are the means over the students; `per_student` keeps each one's.
    A-full normalises both sets by `norm` (per-channel mean and std in [0, 1] units; pass the real
    train split's, `literature.channel_stats`); without it, the distilled set's own are used.
    `done` holds students already trained (index → `StudentResult.to_dict()`), which are not
    trained again; `on_student(k, result)` is called after each new one, so a caller can save it.
    """
    _check_pair(train, test)
    if settings.labels == "soft" and teacher is None:
        raise ConfigError("soft labels need a teacher", "pass a teacher or use labels: hard")
    if ipc is None:
        ipc = max(1, int(np.ceil(len(train) / train.num_classes)))
    epochs = epochs or settings.epochs_for(ipc, train.num_classes)
    if settings.protocol == "A-full":
        norm = norm or channel_stats(train.images)
        train = Dataset(normalise(train.images, norm), train.labels, train.ids, train.class_names)
        test = Dataset(normalise(test.images, norm), test.labels, test.ids, test.class_names)
    done = dict(done or {})
    results = []
    for k in range(settings.n_students()):
        if k in done:
            results.append(StudentResult(**{f: done[k][f] for f in ("best_accuracy", "last_accuracy", "epochs",
                                                                      "steps")},
                                         curve=[tuple(c) for c in done[k].get("curve", [])]))
            continue
        student_seed = int(seed) * 1000 + k  # distinct initialisations and batch orders per student
        model = build_student(settings, train.num_classes, train.image_shape, student_seed)
        result = fit(model, train, test, settings, student_seed, epochs, teacher=teacher)
        if on_student is not None:
            on_student(k, result)
        results.append(result)
    return StudentResult(best_accuracy=float(np.mean([r.best_accuracy for r in results])),
                         last_accuracy=float(np.mean([r.last_accuracy for r in results])),
                         epochs=epochs, steps=results[0].steps, curve=results[0].curve,
                         per_student=[r.last_accuracy for r in results])


def fit(model: torch.nn.Module, train: Dataset, test: Dataset, settings: StudentSettings, seed: int,
        epochs: int, teacher: torch.nn.Module | None = None) -> StudentResult:
    """The protocol's training loop on `model`.

    Protocols A and A-full test once, after the final epoch (best = last); B tests `eval_points` times.
    """
    gen = torch.Generator().manual_seed(int(seed))
    device = resolve_device(settings.device)
    model.to(device).train()
    if teacher is not None:
        teacher.to(device).eval()
    soft = settings.labels == "soft"
    n = len(train)
    batch = settings.batch()
    per_epoch = math.ceil(n / batch)
    total = epochs * per_epoch
    if soft:  # RDED: AdamW and a half-cosine schedule over the epochs
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * (s // per_epoch) / epochs / 2)))
    else:
        optimiser = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                    weight_decay=settings.weight_decay)
        if settings.protocol != "B":  # A and A-full: lr × 0.1 at half of training
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=[total // 2], gamma=0.1)
        else:
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=list(milestones(total)),
                                                             gamma=0.2)
    mix_prob = settings.cutmix_prob if (settings.protocol == "B" or soft) else 0.0
    eval_every = max(1, epochs // settings.eval_points) if settings.protocol == "B" else epochs
    curve: list[tuple[int, float]] = []
    step = 0
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            x, y = train.images[idx], train.labels[idx]
            x = augment(x, settings, gen) if settings.augment else _resize(x, settings.image_size)
            x, y = x.to(device), y.to(device)
            use_mix = mix_prob > 0 and float(torch.rand(1, generator=gen)) < mix_prob
            perm, lam = None, 1.0
            if use_mix:
                x, perm, lam = cutmix(x, settings.cutmix_beta, gen)
            logits = model(x)
            if soft:
                with torch.no_grad():  # soft labels recomputed on the augmented, mixed batch
                    target = F.softmax(teacher(x) / settings.kd_temperature, dim=1)
                loss = F.kl_div(F.log_softmax(logits / settings.kd_temperature, dim=1), target,
                                reduction="batchmean") * settings.kd_temperature**2
            elif perm is not None:
                loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
            else:
                loss = F.cross_entropy(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            step += 1
        if epoch % eval_every == 0 or epoch == epochs:
            curve.append((epoch, accuracy(model, test, settings.image_size)))
    accs = [a for _, a in curve]
    return StudentResult(best_accuracy=max(accs), last_accuracy=accs[-1], epochs=epochs, steps=step, curve=curve)


def train_teacher(real_train: Dataset, settings: StudentSettings, seed: int, val: Dataset) -> torch.nn.Module:
    """The soft-label teacher (RDED's protocol, spec §7.2): `teacher_arch` trained on the real train split.

    Hard labels, protocol B's augmentation and CutMix, `teacher_epochs` epochs. Its accuracy is
    measured on `val` (never on train or test) and kept as `practicum_val_accuracy`; eval mode.
    """
    hard = settings.model_copy(update={"labels": "hard", "eval_points": 1, "protocol": "B", "arch":
                                       settings.teacher_arch, "width": None, "batch_size": 256})
    teacher = build_student(hard, real_train.num_classes, real_train.image_shape, seed + 7919)
    result = fit(teacher, real_train, val, hard, seed + 7919, settings.teacher_epochs)
    teacher.eval()
    teacher.practicum_val_accuracy = result.last_accuracy
    return teacher


def summarise(values: list[float]) -> tuple[float, float]:
    """(mean, sample std with ddof=1; 0 for a single value) of per-seed accuracies."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


__all__ = ["DSA_OPS", "PROTOCOLS", "StudentResult", "StudentSettings", "accuracy", "augment", "build_student",
           "color_jitter", "cutmix", "dsa_augment", "epochs_for_ipc", "fit", "milestones", "pca_lighting",
           "random_resized_crop", "summarise", "t_interval", "train_student", "train_teacher"]
