"""`practicum fit` and `practicum compare`: learning-curve laws from CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from practicum.validate import out_option


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
    app.command("compare")(compare_command)


def fit_command(
    curves: Path = typer.Argument(..., help="Long-format CSV: curve,x,y[,seed]."),
    out: Path = typer.Option(..., "--out", "-o", parser=out_option, help="Run directory (fit.json, figures/fit.png, metrics.jsonl)."),
    family: str = typer.Option("auto", "--family", "-f", help="auto (chosen by extrapolation on prefixes) or a family name."),
    metric: str = typer.Option("error", "--metric", "-m", help="error, accuracy or loss."),
    extrapolate_to: Optional[List[float]] = typer.Option(None, "--extrapolate-to", "-x",
                                                         help="Predict at these sizes (repeatable)."),
    target: Optional[float] = typer.Option(None, "--target", "-t", help="Data needed to reach this metric value."),
    holdout_frac: Optional[float] = typer.Option(None, "--holdout-frac",
                                                 help="Fit the first fraction of the sizes, score the rest."),
    n_boot: int = typer.Option(200, "--n-boot", help="Bootstrap refits for the CIs (0: none)."),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed"),
    engine: str = typer.Option("local", "--engine", help="local or ray (one curve per task)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (finished curves are kept)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the run in --out again."),
) -> None:
    """Fit a scaling law to every curve of a CSV; write fit.json and a log-log plot."""
    from practicum.scaling.cli_fit import FitSettings, run_fit

    settings = FitSettings.build(curves=str(curves), family=family, metric=metric,
                                 extrapolate_to=list(extrapolate_to or []), target=target,
                                 holdout_frac=holdout_frac, n_boot=n_boot, level=level, seed=seed, engine=engine)
    run_fit(settings, out, resume=resume, overwrite=overwrite)


def compare_command(
    curve_a: Path = typer.Argument(..., help="CSV of strategy A (the baseline): curve,x,y[,seed]."),
    curve_b: Path = typer.Argument(..., help="CSV of strategy B."),
    out: Path = typer.Option(Path("runs/compare"), "--out", "-o", parser=out_option, help="Run directory (compare.json, figures/compare.png)."),
    family: str = typer.Option("auto", "--family", "-f", help="auto or a family name."),
    metric: str = typer.Option("error", "--metric", "-m", help="error, accuracy or loss."),
    target: Optional[float] = typer.Option(None, "--target", "-t", help="Common target (default: A's best)."),
    curve: Optional[str] = typer.Option(None, "--curve", help="Curve name to use when a CSV holds several."),
    n_boot: int = typer.Option(200, "--n-boot", help="Bootstrap refits for the CI (0: none)."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Reuse a finished comparison in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the run in --out again."),
) -> None:
    """How much less data B needs than A to reach a target (the data multiplier), and where they cross."""
    from practicum.scaling.cli_fit import CompareSettings, run_compare

    settings = CompareSettings.build(curve_a=str(curve_a), curve_b=str(curve_b), family=family, metric=metric,
                                     target=target, curve=curve, n_boot=n_boot, seed=seed)
    run_compare(settings, out, resume=resume, overwrite=overwrite)
