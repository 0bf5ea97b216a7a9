"""`practicum dedup | label-issues | cover`: the curation tools beside rate / score / select.

dedup and label-issues write a scores file (1 = passes, 0 = flagged) that `practicum select --filter RUN:1:`
intersects with thresholds and budgets; cover writes a manifest like `practicum select`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from practicum.validate import out_option


def register(app: typer.Typer) -> None:
    app.command("dedup")(dedup)
    app.command("label-issues")(label_issues)
    app.command("cover")(cover)


DATA_HELP = "fashion-web (default: the web-like Fashion pool), fashion, digits, folder:PATH or npz:PATH."
EMB_HELP = "Pool embeddings parquet (id, label, embedding) instead of images."


def _source(data, embeddings, defects) -> dict:
    return {k: v for k, v in dict(data=data, embeddings=embeddings, defects=defects).items() if v is not None}


def _print(summary: dict) -> None:
    from practicum.select.pipeline import print_summary

    print_summary(summary)


def dedup(
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory for the keep scores."),
    method: str = typer.Option("phash", "--method", help="phash (perceptual hash, images) or semdedup (embedding "
                                                         "clusters)."),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help=EMB_HELP),
    defects: Optional[bool] = typer.Option(None, "--defects/--no-defects", help="The defect-injected train split."),
    split: str = typer.Option("train", "--split", help="train (default), val or test."),
    max_distance: int = typer.Option(4, "--max-distance", help="phash: Hamming bits (of 64) counted as one image."),
    eps: float = typer.Option(0.05, "--eps", help="semdedup: cosine distance counted as one example."),
    clusters: int = typer.Option(10, "--clusters", help="semdedup: k-means clusters."),
    priority: Optional[str] = typer.Option(None, "--priority", help="Scores file: keep the best-scored of a group."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Reuse a finished run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run again into --out."),
) -> None:
    """Near-duplicate removal → scores.parquet (1 kept, 0 duplicate) for select --filter RUN:1:."""
    from practicum.select.curate import DedupConfig, run_dedup

    config = DedupConfig.build({"source": _source(data, embeddings, defects), "split": split, "method": method,
                                "max_distance": max_distance, "eps": eps, "clusters": clusters,
                                "priority": priority, "seed": seed})
    _print(run_dedup(config, out, resume=resume, overwrite=overwrite))


def label_issues(
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory for the label scores."),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help=EMB_HELP),
    defects: Optional[bool] = typer.Option(None, "--defects/--no-defects", help="The defect-injected train split."),
    split: str = typer.Option("train", "--split", help="train (default), val or test."),
    folds: int = typer.Option(5, "--folds", help="Folds of the out-of-sample logistic regression."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Reuse a finished run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run again into --out."),
) -> None:
    """Confident-learning label issues → scores.parquet (1 looks right, 0 issue) for select --filter RUN:1:."""
    from practicum.select.curate import LabelIssueConfig, run_label_issues

    config = LabelIssueConfig.build({"source": _source(data, embeddings, defects), "split": split, "folds": folds,
                                     "seed": seed})
    _print(run_label_issues(config, out, resume=resume, overwrite=overwrite))


def cover(
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory for the manifest."),
    method: str = typer.Option("k-center", "--method", help="k-center (greedy), herding or facility-location."),
    keep: float = typer.Option(0.2, "--keep", help="Fraction (0.2) or count (1000) to keep."),
    balance: bool = typer.Option(True, "--balance/--no-balance", help="Select within each class (default: yes)."),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help=EMB_HELP),
    defects: Optional[bool] = typer.Option(None, "--defects/--no-defects", help="The defect-injected train split."),
    split: str = typer.Option("train", "--split", help="train (default), val or test."),
    seed: int = typer.Option(0, "--seed", help="k-center's first point."),
    resume: bool = typer.Option(False, "--resume", help="Reuse a finished run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run again into --out."),
) -> None:
    """A coverage selection → manifest.parquet of ids + summary.json."""
    from practicum.select.curate import CoverConfig, run_cover

    config = CoverConfig.build({"source": _source(data, embeddings, defects), "split": split, "method": method,
                                "keep": keep, "balance": balance, "seed": seed})
    _print(run_cover(config, out, resume=resume, overwrite=overwrite))
