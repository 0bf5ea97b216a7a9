"""`practicum fit` and `practicum compare`: learning-curve laws from CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from practicum.cli_options import config_option, overwrite_option, resume_option, run_folder_option


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
    app.command("compare")(compare_command)
    app.command("predict")(predict_command)


def fit_command(
    curves: Optional[Path] = typer.Argument(None, help="Long-format CSV: curve,x,y[,seed] (a bare --resume: the run's)."),
    out: Path = run_folder_option(help="Run directory (fit.json, figures/fit.png, metrics.jsonl)."),
    family: Optional[str] = typer.Option(None, "--family", "-f", help="auto (default: chosen by extrapolation on "
                                                                      "prefixes) or a family name."),
    metric: Optional[str] = typer.Option(None, "--metric", "-m", help="error (default), accuracy or loss."),
    extrapolate_to: Optional[List[float]] = typer.Option(None, "--extrapolate-to", "-x",
                                                         help="Predict at these sizes (repeatable)."),
    target: Optional[float] = typer.Option(None, "--target", "-t", help="Data needed to reach this metric value."),
    holdout_frac: Optional[float] = typer.Option(None, "--holdout-frac",
                                                 help="Fit the first fraction of the sizes, score the rest."),
    n_boot: Optional[int] = typer.Option(None, "--n-boot", help="Bootstrap refits for one-seed curves' CIs (default 200; 0: none); with >= 2 seeds one refit per left-out seed."),
    level: Optional[float] = typer.Option(None, "--level", help="Confidence level of the intervals (default 0.95)."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    engine: Optional[str] = typer.Option(None, "--engine", help="local (default) or ray (one curve per task)."),
    config: Optional[Path] = config_option(),
    resume: bool = resume_option("Continue the run in --out (finished curves are kept; a bare --resume uses its own "
                                 "settings)."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Fit a scaling law to every curve of a CSV; write fit.json and a log-log plot."""
    from practicum.scaling.cli_fit import FitSettings, run_fit  # lazy: CLI start-up

    settings = FitSettings.from_flags(config, out, resume, dict(
        curves=curves and str(curves), family=family, metric=metric, extrapolate_to=extrapolate_to or None,
        target=target, holdout_frac=holdout_frac, n_boot=n_boot, level=level, seed=seed, engine=engine))
    run_fit(settings, out, resume=resume, overwrite=overwrite)


def compare_command(
    curve_a: Optional[Path] = typer.Argument(None, help="CSV of strategy A (the baseline): curve,x,y[,seed]."),
    curve_b: Optional[Path] = typer.Argument(None, help="CSV of strategy B (with A: a bare --resume uses the run's)."),
    out: Path = run_folder_option(Path("runs/compare"), "Run directory (compare.json, figures/compare.png)."),
    family: Optional[str] = typer.Option(None, "--family", "-f", help="auto (default) or a family name."),
    metric: Optional[str] = typer.Option(None, "--metric", "-m", help="error (default), accuracy or loss."),
    target: Optional[float] = typer.Option(None, "--target", "-t", help="Common target (default: A's best)."),
    curve: Optional[str] = typer.Option(None, "--curve", help="Curve name to use in BOTH files when they hold several."),
    curve_a_name: Optional[str] = typer.Option(None, "--curve-a", help="Curve name to use in the A file."),
    curve_b_name: Optional[str] = typer.Option(None, "--curve-b", help="Curve name to use in the B file."),
    n_boot: Optional[int] = typer.Option(None, "--n-boot", help="Bootstrap refits for one-seed curves' CI (default 200; 0: none); with >= 2 seeds one refit per left-out seed."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    config: Optional[Path] = config_option(),
    resume: bool = resume_option("Reuse a finished comparison in --out (a bare --resume uses its own settings)."),
    overwrite: bool = overwrite_option(),
) -> None:
    """How much less (or more) data B needs than A to reach a target (the data multiplier), with one
    family for both curves, and where they cross."""
    from practicum.scaling.cli_fit import CompareSettings, run_compare  # lazy: CLI start-up

    settings = CompareSettings.from_flags(config, out, resume, dict(
        curve_a=curve_a and str(curve_a), curve_b=curve_b and str(curve_b), family=family, metric=metric, target=target,
        curve=curve, curve_a_name=curve_a_name, curve_b_name=curve_b_name, n_boot=n_boot, seed=seed))
    run_compare(settings, out, resume=resume, overwrite=overwrite)


def predict_command(
    law_file: Path = typer.Argument(..., help="fit.json of practicum fit (or one saved law as JSON)."),
    x: List[float] = typer.Argument(..., help="Data sizes to predict at."),
    curve: Optional[str] = typer.Option(None, "--curve", help="Curve name when fit.json holds several."),
    target: Optional[float] = typer.Option(None, "--target", "-t", help="Also report the data needed for this value."),
) -> None:
    """Predict with a saved law (no refit): the metric at each X, and the data needed for a target."""
    from practicum.scaling.cli_fit import run_predict  # lazy: CLI start-up

    run_predict(law_file, x, curve=curve, target=target)
