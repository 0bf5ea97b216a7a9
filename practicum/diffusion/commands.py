"""CLI: `practicum generate` and `practicum diffusion train`.

Heavy imports (torch, diffusers) happen inside the command bodies so `practicum --help` is fast.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from practicum.cli_options import (config_option, device_option, dtype_option, gradient_checkpointing_option,
                                   guidance_batch_option, overwrite_option, resume_option, run_folder_option,
                                   threads_flag, vae_slicing_option)
from practicum.log import echo


def _command_line() -> str:
    return " ".join(["practicum", *(shlex.quote(a) for a in sys.argv[1:])])


def register(app: typer.Typer) -> None:
    diffusion = typer.Typer(help="Train and inspect diffusion models (the built-in generators, or your own).",
                            no_args_is_help=True)

    @diffusion.command("train")
    def train(
        out: Path = run_folder_option(help="Run directory; the weights land in OUT/denoiser.safetensors (+ denoiser.json); --model OUT opens it."),
        data: Optional[str] = typer.Option(None, help="Training data (its train split only): fashion (default), "
                                                       "digits, folder:PATH or npz:PATH."),
        steps: Optional[int] = typer.Option(None, help="Optimiser steps (default: 6000 for fashion, 3000 otherwise)."),
        batch_size: Optional[int] = typer.Option(None, help="Batch size (default 64)."),
        lr: Optional[float] = typer.Option(None, help="Peak learning rate (default 1e-3)."),
        seed: Optional[int] = typer.Option(None, help="Seed of the weights, batches and noise (default 0)."),
        threads: Optional[int] = threads_flag(),
        config: Optional[Path] = config_option(),
        resume: bool = resume_option("Continue the run in OUT from its last checkpoint."),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """Train the small class-conditional diffusion model on the train split (never val/test)."""
        from practicum.diffusion.train import DiffusionTrainSettings, train_diffusion  # lazy: CLI start-up
        from practicum.runtime import set_torch_threads  # lazy: CLI start-up

        set_torch_threads(threads)
        settings = DiffusionTrainSettings.from_flags(config, out, resume, dict(data=data, steps=steps,
                                                                              batch_size=batch_size, lr=lr, seed=seed))
        weights = train_diffusion(settings, out, resume=resume, overwrite=overwrite, command=_command_line())
        echo(f"weights: {weights}")
        echo(f"sidecar: {weights.with_suffix('.json')}")

    app.add_typer(diffusion, name="diffusion")

    @app.command("generate")
    def generate(
        n: Optional[int] = typer.Option(None, "--n", help="Examples to generate, class-balanced (default 1000)."),
        out: Path = run_folder_option(help="Run directory: OUT/pool (shards + index.parquet), OUT/summary.json."),
        omega: Optional[float] = typer.Option(None, help="Entropy guidance strength ω (default 0.05; 0 = vanilla)."),
        guidance_every: Optional[int] = typer.Option(None, "--guidance-every", help="Guide every K-th step (default 5)."),
        learner: Optional[str] = typer.Option(None, help="Saved learner folder to guide with (default: train a "
                                                         "small classifier on the train split, cached in OUT/guide)."),
        model: Optional[str] = typer.Option(None, help="'builtin' (default: the built-in generator of --data), a "
                                                       "`practicum diffusion train` folder or a local diffusers folder."),
        data: Optional[str] = typer.Option(None, help="Data the model must match; its train split trains the default "
                                                      "guide: fashion, digits, folder:PATH or npz:PATH (default: the "
                                                      "data a `diffusion train` --model recorded, else fashion)."),
        form: Optional[str] = typer.Option(None, help="Guidance form: latent (default) or score."),
        through: Optional[str] = typer.Option(None, help="Gradient path: full (default) or learner."),
        steps: Optional[int] = typer.Option(None, help="Sampling steps (default: the model's, 50)."),
        cfg_scale: Optional[float] = typer.Option(None, help="CFG scale s (diffusers convention; paper λ = s - 1)."),
        shard_size: Optional[int] = typer.Option(None, help="Examples per shard (default 100)."),
        seed: Optional[int] = typer.Option(None, help="Seed (default 0); shard seeds derive from it."),
        round_index: Optional[int] = typer.Option(None, "--round", help="Round number stored in the index."),
        engine: str = typer.Option("local", help="local or ray."),
        threads: Optional[int] = threads_flag("torch CPU threads (1 is fastest on a busy shared CPU)."),
        device: Optional[str] = device_option(),
        dtype: Optional[str] = dtype_option(),
        guidance_batch: Optional[int] = guidance_batch_option(),
        gradient_checkpointing: Optional[bool] = gradient_checkpointing_option(),
        vae_slicing: Optional[bool] = vae_slicing_option(),
        config: Optional[Path] = config_option(),
        resume: bool = resume_option("Continue OUT: shards already in the pool are kept."),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """Generate entropy-guided examples (Deliberate Practice's sampler) into a pool."""
        from practicum.diffusion.generate_run import GenerateSettings, run_generate  # lazy: CLI start-up
        from practicum.runtime import set_torch_threads  # lazy: CLI start-up

        set_torch_threads(threads)
        flags = dict(n=n, omega=omega, guidance_every=guidance_every, learner=learner, model=model, data=data, form=form,
                     through=through, steps=steps, cfg_scale=cfg_scale, shard_size=shard_size, seed=seed,
                     round=round_index, device=device, model_dtype=dtype, guidance_batch=guidance_batch,
                     gradient_checkpointing=gradient_checkpointing, vae_slicing=vae_slicing)
        settings = GenerateSettings.from_flags(config, out, resume, flags)
        run_generate(settings, out, engine=engine, resume=resume, overwrite=overwrite, command=_command_line())
