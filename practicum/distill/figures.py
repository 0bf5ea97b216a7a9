"""Pictures of a distillation run: sample grids, t-SNE of real vs distilled, accuracy and metric plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from practicum.report import Section, new_figure, save_figure, write_report


def _to_display(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → (N, H, W, C) or (N, H, W) in [0, 1]."""
    arr = ((images.clamp(-1, 1) + 1) / 2).numpy()
    return arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)


def sample_grid(images: torch.Tensor, labels: torch.Tensor, class_names, path: str | Path, title: str,
                max_per_class: int = 10) -> Path:
    """One mosaic: rows are classes, columns the first `max_per_class` images of each class."""
    labels = labels.numpy()
    classes = sorted(set(labels.tolist()))
    cols = max(1, min(max_per_class, max(int((labels == c).sum()) for c in classes)))
    shown = _to_display(images)
    h, w = shown.shape[1:3]
    pad = max(1, h // 8)
    mosaic = np.ones((len(classes) * (h + pad) + pad, cols * (w + pad) + pad, *shown.shape[3:]))
    for r, c in enumerate(classes):
        for k, row in enumerate(np.flatnonzero(labels == c)[:cols]):
            top, left = pad + r * (h + pad), pad + k * (w + pad)
            mosaic[top:top + h, left:left + w] = shown[row]
    fig, ax = new_figure(width=min(12.0, 0.5 * cols + 1.5), height=min(12.0, 0.5 * len(classes) + 0.8))
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([pad + r * (h + pad) + h / 2 for r in range(len(classes))], [str(class_names[c]) for c in classes])
    ax.set_title(title)
    return save_figure(fig, path)


def tsne_figure(embeddings: dict, method: str, path: str | Path) -> Path:
    """Per class: the joint t-SNE of real (grey) and distilled (red) samples, unit square."""
    classes = sorted(embeddings)
    cols = min(5, len(classes))
    rows = int(np.ceil(len(classes) / cols))
    fig, axes = new_figure(width=2.2 * cols, height=2.2 * rows + 0.4, ncols=cols, nrows=rows)
    axes = np.asarray(axes).reshape(-1)
    for ax, c in zip(axes, classes):
        real, dist = embeddings[c]
        ax.scatter(real[:, 0], real[:, 1], s=5, c="0.6", label="real")
        ax.scatter(dist[:, 0], dist[:, 1], s=18, c="tab:red", marker="x", label="distilled")
        ax.set_title(f"class {c}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in axes[len(classes):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"t-SNE of real vs distilled ({method})")
    return save_figure(fig, path)


def accuracy_figure(summary: dict, path: str | Path) -> Path:
    names = list(summary["methods"])
    best = [100 * summary["methods"][m]["accuracy_mean"] for m in names]
    best_err = [100 * summary["methods"][m]["accuracy_std"] for m in names]
    last = [100 * summary["methods"][m]["last_accuracy_mean"] for m in names]
    fig, ax = new_figure(width=7, height=3.6)
    x = np.arange(len(names))
    ax.bar(x - 0.2, best, 0.4, yerr=best_err, label="best over training", color="tab:blue")
    ax.bar(x + 0.2, last, 0.4, label="last", color="tab:gray")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel(f"{summary['evaluated_on']} accuracy (%)")
    ax.set_title(f"IPC {summary['ipc']}: student accuracy, mean ± std over seeds")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def metrics_figure(summary: dict, path: str | Path) -> Path:
    """Diversity vs 1 − representativeness (t-SNE scores; up and right is better)."""
    fig, ax = new_figure(width=5, height=4)
    for name, m in summary["methods"].items():
        if m.get("diversity") is None or m.get("representativeness") is None:
            continue
        ax.scatter(1 - m["representativeness"], m["diversity"], s=40)
        ax.annotate(name, (1 - m["representativeness"], m["diversity"]), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xlabel("1 − representativeness (t-SNE)")
    ax.set_ylabel("diversity (t-SNE)")
    ax.set_title("diversity vs representativeness")
    return save_figure(fig, path)


def write_figures_and_report(settings, run, pool, summary: dict) -> Path:
    figures = run.sub("figures")
    grids = []
    index = pool.index()
    class_names = pool.meta().get("class_names") or [str(c) for c in range(int(index["label"].max()) + 1)]
    for method in summary["methods"]:
        shard = f"{method}-seed{settings.seeds[0]}"
        if not pool.has_shard(shard):
            continue
        labels = torch.as_tensor(index[index["shard"] == shard]["label"].to_numpy().copy())
        grids.append(sample_grid(pool.images([shard]), labels, class_names, figures / f"samples-{method}.png",
                                 f"{method} (seed {settings.seeds[0]})"))
    acc = accuracy_figure(summary, figures / "accuracy.png")
    sections = []
    rows = []
    for name, m in summary["methods"].items():
        rows.append({"method": name, "best acc %": f"{100 * m['accuracy_mean']:.1f} ± {100 * m['accuracy_std']:.1f}",
                     "last acc %": f"{100 * m['last_accuracy_mean']:.1f} ± {100 * m['last_accuracy_std']:.1f}",
                     "diversity (t-SNE)": m.get("diversity") if m.get("diversity") is not None else "-",
                     "representativeness (t-SNE, lower better)": m.get("representativeness")
                     if m.get("representativeness") is not None else "-",
                     "diversity (cosine)": m.get("diversity_cosine") if m.get("diversity_cosine") is not None else "-",
                     "seconds": m["seconds"]})
    sections.append(Section(
        "Results",
        [f"IPC {summary['ipc']} on {summary['data']}, model {summary['model']}, student {summary['student']}, "
         f"λ = {summary['lam']}, t_stop = {summary['t_stop']} of {summary['steps']} steps.",
         f"Protocol {summary.get('protocol', 'A')}: {summary.get('accuracy', '')}. Standard deviations use ddof=1. "
         "Seconds: time to make one distilled set (mode discovery included for the methods that use modes)."],
        [rows], [acc]))
    tsne = sorted(figures.glob("tsne-*.png"))
    extra = [metrics_figure(summary, figures / "diversity.png")] if any(
        m.get("diversity") is not None for m in summary["methods"].values()) else []
    sections.append(Section("Diversity and representativeness",
                            ["Diversity: distance to the nearest same-class distilled sample; representativeness: "
                             "mean distance to the 50 nearest real samples of the class (lower is better); both in "
                             "one t-SNE per class fitted jointly on the real samples and every method's distilled "
                             "samples, min-max normalised to the unit square."], [], extra + tsne))
    sections.append(Section("Samples", [], [], grids))
    return write_report(run.path / "report.html", f"MGD³ distillation, IPC {summary['ipc']}", sections,
                        subtitle=str(run.path))
