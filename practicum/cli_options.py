"""Typer options shared by the commands: the run folder (`--out/-o`, `--config`, `--resume`,
`--overwrite`), threads, and the device, dtype and guidance memory switches of a model.

Each function returns a fresh `typer.Option` for one command's signature, so the flag names,
defaults (None: "not given", the settings decide) and help texts are declared once. `help`
is a parameter only where commands describe the flag differently. The parsers turn a bad `--out`
or `--threads` into a one-line usage error (exit 2) before anything is loaded or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from practicum.errors import ConfigError, RunError
from practicum.limits import MAX_THREADS
from practicum.validate import check_out

DEVICE_HELP = "cpu (default), cuda, cuda:N or auto."
LEARNER_AND_GENERATOR_DEVICE_HELP = "Learner and generator device: cpu, cuda, auto."
GENERATOR_DEVICE_HELP = "Generator device: cpu (default), cuda, auto."
RATER_DEVICE_HELP = "Rater (and proxy) device: cpu (default), cuda, cuda:N, mps or auto."
GENERATOR_DTYPE_HELP = "Generator dtype: fp32 (default), bf16 or fp16."
RATER_DTYPE_HELP = ("Dtype of the rater's (and proxy's) forward passes, under autocast: fp32 (default), bf16 or "
                    "fp16; weights, losses and ratings stay fp32.")
RESUME_HELP = "Continue the run in --out (a bare --resume uses its own config.yaml)."


def out_option(value: str | Path) -> Path:
    """typer `parser=` for `--out`: the raw string, so an empty one is caught before it becomes '.'."""
    try:
        return check_out(str(value))
    except (ConfigError, RunError) as exc:
        raise typer.BadParameter(str(exc)) from None


def threads_option(value: str | int | None) -> int | None:
    """typer `parser=` for `--threads`: a positive count."""
    if value is None:
        return None
    try:
        count = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a whole number of threads") from None
    if not 1 <= count <= MAX_THREADS:
        raise typer.BadParameter(f"{count} threads: give 1 to {MAX_THREADS}") from None
    return count


def run_folder_option(default: Any = ..., help: str = "Run folder to write.") -> Any:  # noqa: A002
    return typer.Option(default, "--out", "-o", parser=out_option, help=help)


def config_option() -> Any:
    return typer.Option(None, "--config", help="YAML settings (flags override it).")


def resume_option(help: str = RESUME_HELP) -> Any:  # noqa: A002
    return typer.Option(False, "--resume", help=help)


def overwrite_option() -> Any:
    return typer.Option(False, "--overwrite", help="Start the run in --out again.")


def threads_flag(help: str = "torch CPU threads for this run.") -> Any:  # noqa: A002
    return typer.Option(None, "--threads", parser=threads_option, help=help)


def device_option(help: str = DEVICE_HELP) -> Any:  # noqa: A002 - typer's own word
    return typer.Option(None, "--device", help=help)


def dtype_option(help: str = GENERATOR_DTYPE_HELP) -> Any:  # noqa: A002
    return typer.Option(None, "--dtype", help=help)


def guidance_batch_option() -> Any:
    return typer.Option(None, "--guidance-batch", help="Rows per guidance backward pass (default: the shard).")


def gradient_checkpointing_option() -> Any:
    return typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                        help="Recompute activations in the guidance backward.")


def vae_slicing_option() -> Any:
    return typer.Option(None, "--vae-slicing/--no-vae-slicing", help="Decode one image at a time in the VAE.")


def seed_option(help: str | None = None) -> Any:  # noqa: A002
    return typer.Option(None, "--seed", help=help)


# The pool that rate, score, dedup, label-issues and cover read: images or their embeddings, with or
# without the seeded web-like defects, and one split of it.
def pool_data_option() -> Any:
    return typer.Option(None, "--data", help="fashion-web (default: the web-like Fashion pool), fashion, digits, "
                                             "folder:PATH or npz:PATH.")


def embeddings_option(help: str) -> Any:  # noqa: A002
    return typer.Option(None, "--embeddings", help=help)


def defects_option(help: str = "The defect-injected train split.") -> Any:  # noqa: A002
    return typer.Option(None, "--defects/--no-defects", help=help)


def split_option() -> Any:
    return typer.Option(None, "--split", help="train (default), val or test.")


__all__ = ["config_option", "defects_option", "device_option", "dtype_option", "embeddings_option",
           "gradient_checkpointing_option", "guidance_batch_option", "out_option", "overwrite_option",
           "pool_data_option", "resume_option", "run_folder_option", "seed_option",
           "split_option", "threads_flag", "threads_option", "vae_slicing_option"]
