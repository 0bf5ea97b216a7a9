"""`practicum dedup | label-issues | cover`: the curation tools beside rate / score / select.

dedup and label-issues write a scores file (1 = passes, 0 = flagged) that `practicum select --filter RUN:1:`
intersects with thresholds and budgets; cover writes a manifest like `practicum select`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from practicum.cli_options import (config_option, defects_option, embeddings_option, overwrite_option,
                                   pool_data_option, resume_option, run_folder_option, seed_option, split_option)


def register(app: typer.Typer) -> None:
    app.command("dedup")(dedup)
    app.command("label-issues")(label_issues)
    app.command("cover")(cover)


EMB_HELP = "Pool embeddings parquet (id, label, embedding) instead of images."
RESUME_HELP = "Reuse a finished run in --out (a bare --resume uses its own settings)."


def _closing_flags(seed_help: str | None = None):
    """Give a curation command the flags that close its list, declared once here: --limit, --seed,
    --config, --resume and --overwrite (the command names them as keyword-only parameters)."""
    flags = {"limit": typer.Option(None, "--limit", help="Use a fixed random subset of this many pool examples (the "
                                                        "full 50k pool takes minutes)."),
             "seed": seed_option(seed_help), "config": config_option(), "resume": resume_option(RESUME_HELP),
             "overwrite": overwrite_option()}

    def declare(command):
        signature = inspect.signature(command, eval_str=True)  # typer reads this signature
        command.__signature__ = signature.replace(parameters=[
            p.replace(default=flags[p.name]) if p.name in flags else p for p in signature.parameters.values()])
        return command
    return declare


def _run(settings_type, runner, out: Path, config: Optional[Path], resume: bool, overwrite: bool, **flags) -> None:
    """Settings from --config and the flags, then the run; prints its summary."""
    from practicum.select.pipeline import print_summary  # lazy: CLI start-up

    settings = settings_type.from_flags(config, out, resume, flags)
    print_summary(runner(settings, out, resume=resume, overwrite=overwrite))


@_closing_flags()
def dedup(
    out: Path = run_folder_option(help="Run directory for the keep scores."),
    method: Optional[str] = typer.Option(None, "--method", help="phash (default: perceptual hash, images) or "
                                                                "semdedup (embedding clusters)."),
    data: Optional[str] = pool_data_option(),
    embeddings: Optional[str] = embeddings_option(EMB_HELP),
    defects: Optional[bool] = defects_option(),
    split: Optional[str] = split_option(),
    max_distance: Optional[int] = typer.Option(None, "--max-distance", help="phash: Hamming bits (of 64) counted as "
                                                                            "one image (default 4)."),
    eps: Optional[float] = typer.Option(None, "--eps", help="semdedup: cosine distance counted as one example "
                                                            "(default 0.05)."),
    clusters: Optional[int] = typer.Option(None, "--clusters", help="semdedup: k-means clusters (default 10)."),
    priority: Optional[str] = typer.Option(None, "--priority", help="Scores file: keep the best-scored of a group."),
    *, limit: Optional[int], seed: Optional[int], config: Optional[Path], resume: bool, overwrite: bool,
) -> None:
    """Near-duplicate removal → scores.parquet (1 kept, 0 duplicate) for select --filter RUN:1:."""
    from practicum.select.curate import DedupSettings, run_dedup  # lazy: CLI start-up

    _run(DedupSettings, run_dedup, out, config, resume, overwrite,
         source=dict(data=data, embeddings=embeddings, defects=defects), split=split, method=method,
         max_distance=max_distance, eps=eps, clusters=clusters, priority=priority, limit=limit, seed=seed)


@_closing_flags()
def label_issues(
    out: Path = run_folder_option(help="Run directory for the label scores."),
    data: Optional[str] = pool_data_option(),
    embeddings: Optional[str] = embeddings_option(EMB_HELP),
    defects: Optional[bool] = defects_option(),
    split: Optional[str] = split_option(),
    folds: Optional[int] = typer.Option(None, "--folds", help="Folds of the out-of-sample logistic regression "
                                                              "(default 5)."),
    *, limit: Optional[int], seed: Optional[int], config: Optional[Path], resume: bool, overwrite: bool,
) -> None:
    """Confident-learning label issues → scores.parquet (1 looks right, 0 issue) for select --filter RUN:1:."""
    from practicum.select.curate import LabelIssueSettings, run_label_issues  # lazy: CLI start-up

    _run(LabelIssueSettings, run_label_issues, out, config, resume, overwrite,
         source=dict(data=data, embeddings=embeddings, defects=defects), split=split, folds=folds, limit=limit,
         seed=seed)


@_closing_flags(seed_help="k-center's first point.")
def cover(
    out: Path = run_folder_option(help="Run directory for the manifest."),
    method: Optional[str] = typer.Option(None, "--method", help="k-center (default, greedy), herding or "
                                                                "facility-location."),
    keep: Optional[float] = typer.Option(None, "--keep", help="Fraction (default 0.2) or count (1000) to keep."),
    balance: Optional[bool] = typer.Option(None, "--balance/--no-balance", help="Select within each class "
                                                                                "(default: yes)."),
    data: Optional[str] = pool_data_option(),
    embeddings: Optional[str] = embeddings_option(EMB_HELP),
    defects: Optional[bool] = defects_option(),
    split: Optional[str] = split_option(),
    *, limit: Optional[int], seed: Optional[int], config: Optional[Path], resume: bool, overwrite: bool,
) -> None:
    """A coverage selection → manifest.parquet of ids + summary.json."""
    from practicum.select.curate import CoverSettings, run_cover  # lazy: CLI start-up

    _run(CoverSettings, run_cover, out, config, resume, overwrite,
         source=dict(data=data, embeddings=embeddings, defects=defects), split=split, method=method, keep=keep,
         balance=balance, limit=limit, seed=seed)
