"""Typer options shared by the commands that run a model: device, dtype and the guidance memory switches.

Each function returns a fresh `typer.Option` for one command's signature, so the flag names,
defaults (None: "not given", the settings decide) and help texts are declared once. `help`
is a parameter only where commands describe the flag differently (whose device it is).
"""

from __future__ import annotations

from typing import Any

import typer

DEVICE_HELP = "cpu (default), cuda, cuda:N or auto."
LEARNER_AND_GENERATOR_DEVICE_HELP = "Learner and generator device: cpu, cuda, auto."
GENERATOR_DEVICE_HELP = "Generator device: cpu (default), cuda, auto."
RATER_DEVICE_HELP = "Rater (and proxy) device: cpu (default), cuda, cuda:N, mps or auto."
GENERATOR_DTYPE_HELP = "Generator dtype: fp32 (default), bf16 or fp16."
RATER_DTYPE_HELP = ("Dtype of the rater's (and proxy's) forward passes, under autocast: fp32 (default), bf16 or "
                    "fp16; weights, losses and ratings stay fp32.")


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


__all__ = ["device_option", "dtype_option", "gradient_checkpointing_option", "guidance_batch_option",
           "vae_slicing_option"]
