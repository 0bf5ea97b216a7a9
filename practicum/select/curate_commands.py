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


LIMIT_HELP = "Use a fixed random subset of this many pool examples (the full 50k pool takes minutes)."
RESUME_HELP = "Reuse a finished run in --out (a bare --resume uses its own settings)."


def _values(cls, out: Path, resume: bool, data, embeddings, defects, **flags) -> dict:
    """The run's own settings on --resume, updated by the flags given (one --resume behaviour everywhere)."""
    values = cls.base_values(None, out, resume)
    source = dict(values.get("source") or {})
    source.update({k: v for k, v in dict(data=data, embeddings=embeddings, defects=defects).items() if v is not None})
    return {**values, "source": source, **{k: v for k, v in flags.items() if v is not None}}


def _print(summary: dict) -> None:
    from practicum.select.pipeline import print_summary

    print_summary(summary)


def dedup(
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory for the keep scores."),
    method: Optional[str] = typer.Option(None, "--method", help="phash (default: perceptual hash, images) or "
                                                                "semdedup (embedding clusters)."),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help=EMB_HELP),
    defects: Optional[bool] = typer.Option(None, "--defects/--no-defects", help="The defect-injected train split."),
    split: Optional[str] = typer.Option(None, "--split", help="train (default), val or test."),
    max_distance: Optional[int] = typer.Option(None, "--max-distance", help="phash: Hamming bits (of 64) counted as "
                                                                            "one image (default 4)."),
    eps: Optional[float] = typer.Option(None, "--eps", help="semdedup: cosine distance counted as one example "
                                                            "(default 0.05)."),
    clusters: Optional[int] = typer.Option(None, "--clusters", help="semdedup: k-means clusters (default 10)."),
    priority: Optional[str] = typer.Option(None, "--priority", help="Scores file: keep the best-scored of a group."),
    limit: Optional[int] = typer.Option(None, "--limit", help=LIMIT_HELP),
    seed: Optional[int] = typer.Option(None, "--seed"),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run again into --out."),
) -> None:
    """Near-duplicate removal → scores.parquet (1 kept, 0 duplicate) for select --filter RUN:1:."""
    from practicum.select.curate import DedupSettings, run_dedup

    config = DedupSettings.build(_values(DedupSettings, out, resume, data, embeddings, defects, split=split,
                                       method=method, max_distance=max_distance, eps=eps, clusters=clusters,
                                       priority=priority, limit=limit, seed=seed))
    _print(run_dedup(config, out, resume=resume, overwrite=overwrite))


def label_issues(
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory for the label scores."),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help=EMB_HELP),
    defects: Optional[bool] = typer.Option(None, "--defects/--no-defects", help="The defect-injected train split."),
    split: Optional[str] = typer.Option(None, "--split", help="train (default), val or test."),
    folds: Optional[int] = typer.Option(None, "--folds", help="Folds of the out-of-sample logistic regression "
                                                              "(default 5)."),
    limit: Optional[int] = typer.Option(None, "--limit", help=LIMIT_HELP),
    seed: Optional[int] = typer.Option(None, "--seed"),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run again into --out."),
) -> None:
    """Confident-learning label issues → scores.parquet (1 looks right, 0 issue) for select --filter RUN:1:."""
    from practicum.select.curate import LabelIssueSettings, run_label_issues

    config = LabelIssueSettings.build(_values(LabelIssueSettings, out, resume, data, embeddings, defects, split=split,
                                            folds=folds, limit=limit, seed=seed))
    _print(run_label_issues(config, out, resume=resume, overwrite=overwrite))


def cover(
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory for the manifest."),
    method: Optional[str] = typer.Option(None, "--method", help="k-center (default, greedy), herding or "
                                                                "facility-location."),
    keep: Optional[float] = typer.Option(None, "--keep", help="Fraction (default 0.2) or count (1000) to keep."),
    balance: Optional[bool] = typer.Option(None, "--balance/--no-balance", help="Select within each class "
                                                                                "(default: yes)."),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help=EMB_HELP),
    defects: Optional[bool] = typer.Option(None, "--defects/--no-defects", help="The defect-injected train split."),
    split: Optional[str] = typer.Option(None, "--split", help="train (default), val or test."),
    limit: Optional[int] = typer.Option(None, "--limit", help=LIMIT_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help="k-center's first point."),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run again into --out."),
) -> None:
    """A coverage selection → manifest.parquet of ids + summary.json."""
    from practicum.select.curate import CoverSettings, run_cover

    config = CoverSettings.build(_values(CoverSettings, out, resume, data, embeddings, defects, split=split,
                                       method=method, keep=keep, balance=balance, limit=limit, seed=seed))
    _print(run_cover(config, out, resume=resume, overwrite=overwrite))
