"""`practicum rate | score | select`: train the Alchemist rater, score a pool, pick a budget."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from practicum.cli_options import (RATER_DEVICE_HELP, RATER_DTYPE_HELP, config_option, defects_option, device_option,
                                   dtype_option, embeddings_option, overwrite_option, pool_data_option, resume_option,
                                   run_folder_option, seed_option, split_option)
from practicum.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("rate")(rate)
    app.command("score")(score)
    app.command("select")(select)


def rate(
    out: Path = run_folder_option(help="Run directory for the rater."),
    data: Optional[str] = pool_data_option(),
    embeddings: Optional[str] = embeddings_option("Pool embeddings parquet (id, label, embedding)."),
    val_embeddings: Optional[str] = typer.Option(None, "--val-embeddings", help="Clean validation embeddings parquet."),
    defects: Optional[bool] = defects_option("Inject seeded web-like defects into the train split (demo)."),
    update_rule: Optional[str] = typer.Option(None, "--update-rule", help="first_order (default), unrolled, two_model."),
    proxy: Optional[str] = typer.Option(None, "--proxy", help="diffusion (default: ε-MSE over draws shared by each batch) or classifier."),
    diffusion_model: Optional[str] = typer.Option(None, "--diffusion-model",
                                                  help="Diffusion proxy: tiny (default), builtin (fresh UNet) or a "
                                                       "denoiser spec to start from."),
    heads: Optional[str] = typer.Option(None, "--heads", help="multi (instance + group, default) or single."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (γ falls by 0.03 per epoch)."),
    iterations: Optional[int] = typer.Option(None, "--iterations-per-epoch",
                                             help="Iterations per epoch (default: one pass over validation)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Train and validation batch size (64)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Rater learning rate."),
    proxy_lr: Optional[float] = typer.Option(None, "--proxy-lr", help="Proxy learning rate."),
    proxy_warmup: Optional[int] = typer.Option(None, "--proxy-warmup",
                                               help="Proxy steps on the hold-out before the rater trains (500)."),
    seed_check: Optional[bool] = typer.Option(None, "--seed-check/--no-seed-check",
                                              help="Gate: train a second rater (seed + 1) and check they agree."),
    seed: Optional[int] = seed_option(),
    device: Optional[str] = device_option(RATER_DEVICE_HELP),
    dtype: Optional[str] = dtype_option(RATER_DTYPE_HELP),
    config: Optional[Path] = config_option(),
    resume: bool = resume_option(),
    overwrite: bool = overwrite_option(),
) -> None:
    """Train the meta-learned rater with a proxy on the clean validation split.

    Other settings (weighted_loss_reduction, entropy_reg, lookahead_lr, schedule, gamma_*,
    softmax_group, rater_eps, draws) go in a --config YAML under `rater:`; the run's config.yaml
    lists them all. After training, the run checks the rater's sanity gates (see summary.json).
    """
    from practicum.select.pipeline import RateSettings, print_summary, run_rate  # lazy: CLI start-up

    settings = RateSettings.from_flags(config, out, resume, dict(
        source=dict(data=data, embeddings=embeddings, val_embeddings=val_embeddings, defects=defects),
        rater=dict(update_rule=update_rule, proxy=proxy, diffusion_model=diffusion_model, heads=heads, epochs=epochs,
                   iterations_per_epoch=iterations, batch_size=batch_size, lr=lr, proxy_lr=proxy_lr,
                   proxy_warmup=proxy_warmup, seed=seed, device=device, dtype=dtype),
        gates=dict(seed_check=seed_check)))
    print_summary(run_rate(settings, out, resume=resume, overwrite=overwrite))
    typer.echo(f"rater: {out / 'rater.safetensors'}")


def score(
    out: Path = run_folder_option(help="Run directory for the scores."),
    rater: Optional[str] = typer.Option(None, "--rater", help="A `practicum rate` run folder or rater.safetensors."),
    scorer: Optional[str] = typer.Option(None, "--scorer",
                                         help="rater (default), entropy, margin, loss, el2n, grand, forgetting, aum, "
                                              "prototypicality, rho_loss, random."),
    epoch: Optional[int] = typer.Option(None, "--epoch", help="Use this epoch's rater checkpoint."),
    mode: Optional[str] = typer.Option(None, "--mode", help="instance (a, default: independent of batching) or group (p·g, the paper's; batch-relative)."),
    data: Optional[str] = pool_data_option(),
    embeddings: Optional[str] = embeddings_option("Pool embeddings parquet to stream."),
    defects: Optional[bool] = defects_option("Score the defect-injected pool."),
    split: Optional[str] = split_option(),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", help="Examples per shard (4096)."),
    seed: Optional[int] = seed_option(),
    engine: str = typer.Option("local", "--engine", help="local or ray: where shards are scored."),
    device: Optional[str] = device_option(RATER_DEVICE_HELP),
    dtype: Optional[str] = dtype_option(RATER_DTYPE_HELP),
    config: Optional[Path] = config_option(),
    resume: bool = resume_option("Continue the run in --out (finished shards are kept)."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Score every example of a pool → scores.parquet keyed by example id."""
    from practicum.select.pipeline import ScoreSettings, print_summary, run_score  # lazy: CLI start-up

    settings = ScoreSettings.from_flags(config, out, resume, dict(
        source=dict(data=data, embeddings=embeddings, defects=defects), rater=rater, scorer=scorer, epoch=epoch,
        mode=mode, split=split, shard_size=shard_size, seed=seed, device=device, dtype=dtype))
    print_summary(run_score(settings, out, engine=engine, resume=resume, overwrite=overwrite))


def select(
    scores: Optional[str] = typer.Option(None, "--scores", help="scores.parquet (or the `practicum score` run)."),
    out: Path = run_folder_option(help="Run directory for the manifest."),
    strategy: Optional[str] = typer.Option(None, "--strategy",
                                           help="shift-gsample (default), gsample, top-k, bottom-k, random, block, "
                                                "band, ccs, adaptive."),
    keep: Optional[float] = typer.Option(None, "--keep", help="Fraction (0.5) or count (1000) to keep."),
    balance: Optional[bool] = typer.Option(None, "--balance/--no-balance",
                                           help="Select within each class (default: yes when scores have labels)."),
    prune_top: Optional[float] = typer.Option(None, "--prune-top", help="Shift-Gsample δ (default: preset for keep)."),
    shape: Optional[str] = typer.Option(None, "--shape", help="Gaussian preset: figure (default), m2_std3, m3_std6."),
    direction: Optional[str] = typer.Option(None, "--direction",
                                            help="higher_is_better or higher_is_harder (default: what the scores' "
                                                 "summary.json says)."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="none (default) or class: rank within class."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Absolute threshold: keep score >= this."),
    max_score: Optional[float] = typer.Option(None, "--max-score", help="Absolute threshold: keep score <= this."),
    filters: Optional[list[str]] = typer.Option(None, "--filter",
                                                help="SCORES:LOW:HIGH on another scores file (by id); repeat to "
                                                     "intersect. --keep then applies to the survivors."),
    mu: Optional[float] = typer.Option(None, "--mu", help="Gaussian centre as a fraction of the kept ranking."),
    sigma: Optional[float] = typer.Option(None, "--sigma", help="Gaussian width as a fraction of the kept ranking."),
    start: Optional[float] = typer.Option(None, "--start", help="Block: first percentile (0.3)."),
    prune_hard: Optional[float] = typer.Option(None, "--prune-hard", help="CCS: hardest fraction dropped (0.1)."),
    budget_samples: Optional[float] = typer.Option(None, "--budget-samples",
                                                   help="adaptive: samples the training run will see."),
    pool_laws: Optional[str] = typer.Option(None, "--pool-laws",
                                            help="adaptive: JSON {buckets: [{b, tau}, ...]} from scaling fits."),
    seed: Optional[int] = seed_option(),
    config: Optional[Path] = config_option(),
    resume: bool = resume_option("Reuse a finished selection in --out (a bare --resume uses its own settings)."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Pick a budget from scores → manifest.parquet of ids + summary.json."""
    from practicum.select.pipeline import SelectSettings, print_summary, run_select  # lazy: CLI start-up

    flags = dict(scores=scores, strategy=strategy, keep=keep, balance=balance, prune_top=prune_top, shape=shape, mu=mu,
                 sigma=sigma, start=start, prune_hard=prune_hard, seed=seed, budget_samples=budget_samples,
                 direction=direction, normalize=normalize, min_score=min_score, max_score=max_score,
                 filters=filters or None, pool_laws=pool_laws)
    if scores is None and "scores" not in SelectSettings.base_values(config, out, resume):
        raise ConfigError("no scores to select from", "pass --scores PATH (the output of `practicum score`)")
    settings = SelectSettings.from_flags(config, out, resume, flags)
    print_summary(run_select(settings, out, resume=resume, overwrite=overwrite))
    typer.echo(f"manifest: {out / 'manifest.parquet'}")
