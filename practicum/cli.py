"""The `practicum` command.

Each subsystem defines its commands in `practicum/<subsystem>/commands.py` with a
`register(app)` function; this file only wires them together, so subsystems stay apart.
Command modules import heavy libraries (torch, diffusers) inside the command bodies, which
keeps `practicum --help` fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from practicum import __version__
from practicum.errors import PracticumError
from practicum.log import console, setup_logging

COMMAND_MODULES = (
    "practicum.practice.commands",  # study, practice
    "practicum.diffusion.commands",  # generate, diffusion train
    "practicum.distill.commands",  # distill
    "practicum.select.commands",  # rate, score, select
    "practicum.scaling.commands",  # fit, compare
    "practicum.scaling.theory_commands",  # theory
)

app = typer.Typer(
    name="practicum",
    help="Make the data a model practises on: Deliberate Practice, MGD3 distillation, "
    "Alchemist selection and data scaling laws.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"practicum {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs."),
) -> None:
    setup_logging(verbose=verbose, quiet=quiet)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2, never a traceback.

    typer handles its own usage errors (exit 2) in standalone mode; a PracticumError raised
    by a command comes out of `app` and is reported here.
    """
    try:
        app(args=argv, prog_name="practicum")
    except PracticumError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted: the run directory keeps what was finished; rerun with --resume")
        sys.exit(130)
