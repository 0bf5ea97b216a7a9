"""A picture of what the built-in generator draws: real digits, then samples at ω = 0, 0.05, 0.2.

Rows: real train digits; unguided samples (s = 2); entropy-guided (every 5 steps, full path) at
ω = 0.05 (the DP default) and ω = 0.2 (too much). Two samples per class, same noise in every
guided row. The guide is `generate`'s default classifier (600 steps, seed 0).

    python benchmarks/diffusion_samples.py   # → benchmarks/results/diffusion_samples.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import atomic_write_with, load_digits  # noqa: E402
from practicum.diffusion import EntropyGuidance, load_denoiser, sample  # noqa: E402
from practicum.diffusion.builtin import sampling_defaults  # noqa: E402
from practicum.learn import train_classifier  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "diffusion_samples.png"


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)
    den = load_denoiser("builtin")
    train = load_digits("train")
    guide = train_classifier(train, steps=600, seed=0).guide_model()
    labels = torch.arange(20) % 10
    real = torch.stack([train.images[(train.labels == int(c)).nonzero()[k, 0]] for k, c in
                        zip([0] * 10 + [1] * 10, labels)])
    rows = [("real train digits", real)]
    for omega in (0.0, 0.05, 0.2):
        terms = [EntropyGuidance(guide, omega, every=5)] if omega else []
        out = sample(den, labels, guidance=terms, seed=0, **sampling_defaults(den))
        rows.append((f"generated, ω = {omega}", out.images))
    fig, axes = plt.subplots(len(rows), 20, figsize=(12, 0.75 * len(rows) + 0.4))
    for r, (title, images) in enumerate(rows):
        for c in range(20):
            ax = axes[r, c]
            ax.imshow(images[c, 0].numpy(), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    atomic_write_with(OUT, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
