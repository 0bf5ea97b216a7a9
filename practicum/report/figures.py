"""Matplotlib without a screen, and PNGs written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402

from practicum.data.runstore import atomic_write_with  # noqa: E402


def new_figure(width: float = 6.0, height: float = 4.0, ncols: int = 1, nrows: int = 1):
    """`(fig, axes)` with a consistent look for every practicum plot."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.25)
    return fig, (axes[0, 0] if ncols * nrows == 1 else axes)


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    path = Path(path)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)
    return path
